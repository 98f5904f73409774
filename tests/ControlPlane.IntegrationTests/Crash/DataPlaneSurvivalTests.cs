using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;
using ControlPlane.IntegrationTests.Routing;

namespace ControlPlane.IntegrationTests.Crash;

/// <summary>
/// Traffic never depends on ControlPlane being up. Under continuous keep-alive load on an application's public URL (a
/// non-retrying client), ControlPlane is killed with SIGKILL ten times at different release states, stopped cleanly and
/// started three times, and its embedded PostgreSQL is shut down fast (ControlPlane starts it again). No request fails,
/// the URL never changes (its stored port 0 was resolved once and kept), the releases resume and finish, and the audit
/// chain verifies.
/// </summary>
public sealed class DataPlaneSurvivalTests
{
    private const string App = "survivor";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 900_000)]
    public async Task Kills_clean_restarts_and_a_database_fast_shutdown_fail_no_request_and_keep_the_url()
    {
        var ct = TestContext.Current.CancellationToken;
        // The embedded default (no connection string): ControlPlane owns its PostgreSQL; slots and routers outlive a clean stop.
        await using var cp = new ControlPlaneProcess(connectionString: null) { StopOnShutdown = false };
        await cp.StartAsync();
        string publicUrl;
        using (var admin = cp.Admin())
            publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, App,
                new { requiredApprovals = 1, allowSelfApproval = true, monitoringWindowSeconds = 4, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 },
                routerPort: 0);
        await AssertPortPinnedAsync(cp, publicUrl);
        var router = RouterPid(cp);
        var faults = new List<string>();

        var load = await KeepAliveLoad.StartAsync(new Uri(publicUrl), 4, ct, answer => answer.App == App);
        try
        {
            // Release 1, blue → green: a kill in every state it passes through.
            var first = await StartReleaseAsync(cp, "2.0.0-slow-start");
            faults.Add(await KillWhenInAsync(cp, first, "Deploying"));
            faults.Add(await KillWhenInAsync(cp, first, "AwaitingApproval"));
            await PostAsync(cp, $"/api/v1/deployments/{first}/approve");
            faults.Add(await KillWhenInAsync(cp, first, "ReadyToSwitch"));
            await PostAsync(cp, $"/api/v1/deployments/{first}/switch");
            faults.Add(await KillNowAsync(cp, first)); // Switching or just after
            faults.Add(await KillWhenInAsync(cp, first, "Monitoring", "Succeeded"));
            await WaitForAsync(cp, first, "Succeeded");
            faults.Add(await RestartCleanlyAsync(cp, "after Succeeded"));

            // Release 2, green → blue.
            var second = await StartReleaseAsync(cp, "3.0.0-slow-verify");
            faults.Add(await KillNowAsync(cp, second)); // Queued or Deploying
            faults.Add(await KillWhenInAsync(cp, second, "Verifying", "AwaitingApproval"));
            await WaitForAsync(cp, second, "AwaitingApproval");
            faults.Add(await RestartCleanlyAsync(cp, "in AwaitingApproval"));
            await PostAsync(cp, $"/api/v1/deployments/{second}/approve");
            await WaitForAsync(cp, second, "ReadyToSwitch");
            await PostAsync(cp, $"/api/v1/deployments/{second}/switch");
            faults.Add(await KillWhenInAsync(cp, second, "Monitoring", "Succeeded"));
            await WaitForAsync(cp, second, "Succeeded");

            // The database goes away under ControlPlane: it keeps running, says so on /healthz, starts its PostgreSQL again.
            var (stopped, output) = await ControlPlaneProcess.PgCtlAsync("stop", "-m", "fast", "-w", "-D", cp.EmbeddedPostgresDirectory);
            Assert.True(stopped == 0, $"pg_ctl stop failed: {output}");
            faults.Add("PostgreSQL fast shutdown");
            await WaitForHealthyAsync(cp);

            // Release 3, blue → green, after the database came back.
            var third = await StartReleaseAsync(cp, "4.0.0");
            faults.Add(await KillWhenInAsync(cp, third, "AwaitingApproval"));
            await PostAsync(cp, $"/api/v1/deployments/{third}/approve");
            await WaitForAsync(cp, third, "ReadyToSwitch");
            await PostAsync(cp, $"/api/v1/deployments/{third}/switch");
            faults.Add(await KillWhenInAsync(cp, third, "Monitoring", "Succeeded"));
            await WaitForAsync(cp, third, "Succeeded");
            faults.Add(await RestartCleanlyAsync(cp, "after the last release"));
        }
        finally
        {
            await load.StopAsync();
        }

        var report = $"{load}; faults: {string.Join(", ", faults)}";
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        Assert.Equal(10, faults.Count(f => f.StartsWith("kill -9", StringComparison.Ordinal)));
        Assert.Equal(3, faults.Count(f => f.StartsWith("clean restart", StringComparison.Ordinal)));
        load.AssertNoFailedRequest(report);

        using var client = cp.Admin();
        var application = await client.GetJsonAsync($"/api/v1/applications/{App}");
        Assert.Equal(publicUrl, application.GetProperty("publicUrl").GetString());
        Assert.Equal("green", application.GetProperty("liveSlot").GetString());
        Assert.Equal(("4.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));
        // The same router process served throughout: adopted by every restart, never started again.
        Assert.Equal(router, RouterPid(cp));
        var verify = await client.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("valid").GetBoolean(), verify.ToString());
    }

    private static async Task AssertPortPinnedAsync(ControlPlaneProcess cp, string publicUrl)
    {
        using var client = cp.Admin();
        var application = await client.GetJsonAsync($"/api/v1/applications/{App}");
        var settings = application.GetProperty("router").GetProperty("settings");
        Assert.Equal(new Uri(publicUrl).Port, settings.GetProperty("listenPort").GetInt32());
        var audit = await client.GetJsonAsync($"/api/v1/audit?application={App}&action=router.settings-pinned");
        Assert.Single(audit.GetProperty("items").EnumerateArray());
    }

    private static int RouterPid(ControlPlaneProcess cp)
    {
        using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(cp.DataDirectory, "routers", App, "router.json")));
        return record.RootElement.GetProperty("pid").GetInt32();
    }

    private static async Task<string> StartReleaseAsync(ControlPlaneProcess cp, string version)
    {
        using var admin = cp.Admin();
        return (await admin.StartReleaseAsync(App, version)).GetProperty("id").GetString()!;
    }

    private static async Task PostAsync(ControlPlaneProcess cp, string path)
    {
        using var admin = cp.Admin();
        var response = await admin.PostAsJsonAsync(path, new { }, Ct);
        Assert.True(response.IsSuccessStatusCode, $"POST {path} → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
    }

    private static async Task WaitForAsync(ControlPlaneProcess cp, string id, string state)
    {
        using var admin = cp.Admin();
        await admin.WaitForStateAsync(id, state, seconds: 90);
    }

    /// <summary>Waits until the release is in one of <paramref name="states"/>, then SIGKILLs ControlPlane and starts it again.</summary>
    private static async Task<string> KillWhenInAsync(ControlPlaneProcess cp, string id, params string[] states)
    {
        string state;
        using (var admin = cp.Admin())
        {
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (true)
            {
                state = (await admin.GetJsonAsync($"/api/v1/deployments/{id}")).GetProperty("state").GetString()!;
                if (states.Contains(state)) break;
                Assert.True(state is not ("Failed" or "Aborted" or "RolledBack"), $"the release ended {state}");
                Assert.True(DateTime.UtcNow < deadline, $"the release did not reach {string.Join(" or ", states)}; it is {state}");
                await Task.Delay(50, Ct);
            }
        }
        await cp.KillHardAsync();
        await cp.StartAsync();
        return $"kill -9 in {state}";
    }

    private static async Task<string> KillNowAsync(ControlPlaneProcess cp, string id)
    {
        await cp.KillHardAsync();
        await cp.StartAsync();
        using var admin = cp.Admin();
        return $"kill -9 (then {(await admin.GetJsonAsync($"/api/v1/deployments/{id}")).GetProperty("state").GetString()})";
    }

    private static async Task<string> RestartCleanlyAsync(ControlPlaneProcess cp, string when)
    {
        await cp.StopGracefullyAsync();
        await cp.StartAsync();
        return $"clean restart {when}";
    }

    private static async Task WaitForHealthyAsync(ControlPlaneProcess cp)
    {
        using var http = new HttpClient { BaseAddress = cp.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            using var response = await http.GetAsync("/healthz", Ct);
            if (response.IsSuccessStatusCode) return;
            Assert.True(DateTime.UtcNow < deadline, $"ControlPlane did not get its database back: {await response.Content.ReadAsStringAsync(Ct)}\n{cp.Output}");
            await Task.Delay(200, Ct);
        }
    }
}
