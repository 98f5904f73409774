using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Crash;

/// <summary>
/// kill -9 of ControlPlane in the middle of a release: after a restart the deployment continues (or ends in a clearly
/// recorded state), the router and the recorded live slot agree, no slot process is orphaned or doubled, and the audit
/// chain is intact.
/// </summary>
public sealed class CrashRecoveryTests(PostgresFixture postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Killed_while_Deploying_the_release_continues_after_restart()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("crash"));
        await cp.StartAsync();
        const string app = "crash-deploying";
        var publicUrl = await RegisterAsync(cp, app);

        // "-slow-start" keeps the new slot starting for 5 s, so the kill lands in Deploying for sure.
        var id = await StartReleaseAsync(cp, app, "2.0.0-slow-start");
        using (var admin = cp.Admin()) await admin.WaitForStateAsync(id, "Deploying");
        await cp.KillHardAsync();

        await cp.StartAsync();
        using var client = cp.Admin();
        await client.WaitForStateAsync(id, "AwaitingApproval");
        await AssertConsistentAsync(client, app, publicUrl, "blue", "1.0.0");
        AssertOneProcessPerSlot(app, "blue", "green");
    }

    [Fact]
    public async Task Killed_while_AwaitingApproval_the_release_waits_and_can_still_be_switched()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("crash"));
        await cp.StartAsync();
        const string app = "crash-approval";
        var publicUrl = await RegisterAsync(cp, app);
        var id = await StartReleaseAsync(cp, app, "2.0.0");
        using (var admin = cp.Admin()) await admin.WaitForStateAsync(id, "AwaitingApproval");
        await cp.KillHardAsync();

        await cp.StartAsync();
        using var client = cp.Admin();
        var waiting = await client.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal("AwaitingApproval", waiting.GetProperty("state").GetString());
        await AssertConsistentAsync(client, app, publicUrl, "blue", "1.0.0");
        AssertOneProcessPerSlot(app, "blue", "green");

        (await client.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "after restart" }, Ct)).EnsureSuccessStatusCode();
        await client.WaitForStateAsync(id, "ReadyToSwitch");
        (await client.PostAsJsonAsync($"/api/v1/deployments/{id}/switch", new { }, Ct)).EnsureSuccessStatusCode();
        await client.WaitForStateAsync(id, "Monitoring");
        await AssertConsistentAsync(client, app, publicUrl, "green", "2.0.0");
    }

    [Fact]
    public async Task Killed_while_Monitoring_the_router_comes_back_on_the_recorded_live_slot_and_the_release_succeeds()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("crash"));
        await cp.StartAsync();
        const string app = "crash-monitoring";
        var publicUrl = await RegisterAsync(cp, app);
        var id = await StartReleaseAsync(cp, app, "2.0.0");
        using (var admin = cp.Admin())
        {
            await admin.WaitForStateAsync(id, "AwaitingApproval");
            (await admin.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { }, Ct)).EnsureSuccessStatusCode();
            await admin.WaitForStateAsync(id, "ReadyToSwitch");
            (await admin.PostAsJsonAsync($"/api/v1/deployments/{id}/switch", new { }, Ct)).EnsureSuccessStatusCode();
            await admin.WaitForStateAsync(id, "Monitoring");
        }
        var slotsBefore = ControlPlaneProcess.SlotProcesses(app).Select(p => p.Pid).Order().ToList();
        await cp.KillHardAsync();

        await cp.StartAsync();
        using var client = cp.Admin();
        await AssertConsistentAsync(client, app, publicUrl, "green", "2.0.0");
        var done = await client.WaitForStateAsync(id, "Succeeded");
        Assert.Contains("no breach", done.GetProperty("outcome").GetString());
        await AssertConsistentAsync(client, app, publicUrl, "green", "2.0.0");
        // The slot processes survived the crash and were adopted, not restarted or duplicated.
        Assert.Equal(slotsBefore, ControlPlaneProcess.SlotProcesses(app).Select(p => p.Pid).Order().ToList());
        AssertOneProcessPerSlot(app, "blue", "green");
        var application = await client.GetJsonAsync($"/api/v1/applications/{app}");
        Assert.Equal(JsonValueKind.String, application.GetProperty("rollbackAvailableUntil").ValueKind);
    }

    private static async Task<string> RegisterAsync(ControlPlaneProcess cp, string app)
    {
        using var admin = cp.Admin();
        return await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 1, allowSelfApproval = true, monitoringWindowSeconds = 6, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });
    }

    private static async Task<string> StartReleaseAsync(ControlPlaneProcess cp, string app, string version)
    {
        using var admin = cp.Admin();
        return (await admin.StartReleaseAsync(app, version)).GetProperty("id").GetString()!;
    }

    /// <summary>The recorded live slot, what the router serves, and the audit chain all agree.</summary>
    private static async Task AssertConsistentAsync(HttpClient client, string app, string publicUrl, string slot, string version)
    {
        var application = await client.GetJsonAsync($"/api/v1/applications/{app}");
        Assert.Equal(slot, application.GetProperty("liveSlot").GetString());
        Assert.Equal(publicUrl, application.GetProperty("publicUrl").GetString());
        Assert.Equal((version, slot), await ApiCalls.PublicAnswerAsync(publicUrl));
        var verify = await client.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("valid").GetBoolean(), verify.ToString());
    }

    private static void AssertOneProcessPerSlot(string app, params string[] slots)
    {
        var processes = ControlPlaneProcess.SlotProcesses(app);
        foreach (var slot in slots)
            Assert.True(processes.Count(p => p.Slot == slot) == 1,
                $"expected exactly one {slot} process for {app}, found: {string.Join(", ", processes.Select(p => $"{p.Slot}:{p.Pid}"))}");
        Assert.Equal(slots.Length, processes.Count);
    }
}
