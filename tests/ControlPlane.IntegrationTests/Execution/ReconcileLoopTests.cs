using System.Net;
using System.Text.Json;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Execution;

/// <summary>
/// The reconcile loop on a real database, driving a recording router and deployer: every traffic move (attach, switch,
/// rollback by a person, automatic rollback) goes through it, and the tests assert on the calls it made, in order.
/// </summary>
public sealed class ReconcileLoopTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly object Watched = new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 };
    private RecordingAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await RecordingAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private IReadOnlyList<string> RouterCalls(string app) => [.. _factory.Log.Of(app).Where(c => c.StartsWith("router ", StringComparison.Ordinal))];

    private async Task<string> ReleaseToMonitoringAsync(HttpClient admin, string app, string version = "2.0.0")
    {
        var id = (await admin.StartReleaseAsync(app, version)).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Monitoring");
        return id;
    }

    [Fact]
    public async Task Registration_is_picked_up_by_the_loop_which_starts_the_live_slot_then_attaches_the_router()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-attach", Watched);

        var calls = _factory.Log.Of("r-attach");
        var deploy = calls.ToList().IndexOf("deployer deploy r-attach blue 1.0.0");
        var attach = calls.ToList().IndexOf("router attach r-attach blue");
        Assert.True(deploy >= 0 && attach > deploy, string.Join("\n", calls));
        Assert.Equal(["router attach r-attach blue"], RouterCalls("r-attach"));
    }

    [Fact]
    public async Task Switch_and_a_persons_rollback_are_both_carried_out_by_the_loop()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-switch", Watched);
        var id = await ReleaseToMonitoringAsync(admin, "r-switch");
        Assert.Equal(["router attach r-switch blue", "router switch r-switch green", "router verify r-switch green 2.0.0"], RouterCalls("r-switch"));

        var response = await admin.PostJsonAsync("/api/v1/applications/r-switch/rollback", new { reason = "error rate up" });
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("blue", (await response.JsonAsync()).GetProperty("liveSlot").GetString());
        // Answered only once the router was flipped and verified — the leader reported before the call returned.
        Assert.Equal(["router attach r-switch blue", "router switch r-switch green", "router verify r-switch green 2.0.0",
            "router switch r-switch blue", "router verify r-switch blue 1.0.0"], RouterCalls("r-switch"));
        Assert.Equal(Slot.Blue, _factory.Router.LiveOf("r-switch"));
        var d = await admin.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal("RolledBack", d.GetProperty("state").GetString());
        Assert.Equal("done", d.GetProperty("rollback").GetProperty("state").GetString());
        var requested = (await admin.GetJsonAsync("/api/v1/audit?application=r-switch&action=rollback.requested")).GetProperty("items");
        Assert.Equal("bootstrap", Assert.Single(requested.EnumerateArray()).GetProperty("actor").GetString());
    }

    [Fact]
    public async Task A_switch_the_data_plane_does_not_confirm_is_reverted_by_the_loop()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-revert", Watched);
        _factory.Router.VerifyOverride = (app, slot) => app == "r-revert" && slot == Slot.Green ? DataPlaneVerification.Fail("answered 1.0.0 from blue") : null;
        var id = (await admin.StartReleaseAsync("r-revert", "2.0.0")).GetProperty("id").GetString()!;

        var failed = await admin.WaitForStateAsync(id, "Failed");

        Assert.Equal(["router attach r-revert blue", "router switch r-revert green", "router verify r-revert green 2.0.0", "router switch r-revert blue"],
            RouterCalls("r-revert"));
        Assert.Contains("Router reverted to blue", failed.GetProperty("outcome").GetString());
        Assert.Equal("blue", (await admin.GetJsonAsync("/api/v1/applications/r-revert")).GetProperty("liveSlot").GetString());
    }

    [Fact]
    public async Task A_fault_between_the_persisted_rollback_intent_and_the_flip_is_resumed_by_the_loop()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-resume", Watched);
        var id = await ReleaseToMonitoringAsync(admin, "r-resume");
        // The first attempt dies in the middle of the flip (not a router answer: the step itself fails and is retried).
        _factory.Router.FailNextSwitch["r-resume"] = new InvalidOperationException("ControlPlane went away mid-flip");

        var response = await admin.PostJsonAsync("/api/v1/applications/r-resume/rollback", new { reason = "resume me" });

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(["router attach r-resume blue", "router switch r-resume green", "router verify r-resume green 2.0.0",
            "router switch-failed r-resume blue", "router switch r-resume blue", "router verify r-resume blue 1.0.0"], RouterCalls("r-resume"));
        Assert.Equal("RolledBack", (await admin.GetJsonAsync($"/api/v1/deployments/{id}")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_refused_rollback_answers_409_with_the_reason_and_moves_nothing()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-refuse", Watched);
        await ReleaseToMonitoringAsync(admin, "r-refuse");
        // The previous slot died after the dashboard last saw it healthy: only the leader's look at request time finds out.
        _factory.Deployer.Observe("r-refuse", Slot.Blue, new SlotObservation(false, null, false, "process exited"));

        var response = await admin.PostJsonAsync("/api/v1/applications/r-refuse/rollback", new { reason = "try" });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("is not healthy", (await response.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(["router attach r-refuse blue", "router switch r-refuse green", "router verify r-refuse green 2.0.0"], RouterCalls("r-refuse"));
    }

    [Fact]
    public async Task A_slow_deployer_on_one_application_does_not_hold_up_the_rollback_of_another()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-slow", Watched);
        await _factory.RegisterAsync(admin, "r-fast", Watched);
        await ReleaseToMonitoringAsync(admin, "r-fast");
        var gate = _factory.Deployer.Hold("r-slow");
        await admin.StartReleaseAsync("r-slow", "2.0.0");
        while (!_factory.Log.Calls.Contains("deployer deploy r-slow green 2.0.0")) await Task.Delay(50, TestContext.Current.CancellationToken);

        var response = await admin.PostJsonAsync("/api/v1/applications/r-fast/rollback", new { reason = "while r-slow deploys" });
        gate.SetResult();

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var calls = _factory.Log.Calls.ToList();
        var rolledBack = calls.IndexOf("router verify r-fast blue 1.0.0");
        while (!_factory.Log.Calls.Contains("deployer deploy-released r-slow green 2.0.0")) await Task.Delay(50, TestContext.Current.CancellationToken);
        var released = _factory.Log.Calls.ToList().IndexOf("deployer deploy-released r-slow green 2.0.0");
        Assert.True(rolledBack >= 0 && rolledBack < released, string.Join("\n", _factory.Log.Calls));
    }

    [Fact]
    public async Task A_live_slot_that_dies_after_Succeeded_is_audited_once_shown_and_rolled_back_only_when_the_policy_asks()
    {
        using var admin = _factory.Admin();
        var quick = new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 };
        var automatic = new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 600, rollbackWhenLiveSlotFails = true };
        await _factory.RegisterAsync(admin, "r-watch", quick);
        await _factory.RegisterAsync(admin, "r-auto", automatic);
        var watchId = (await admin.StartReleaseAsync("r-watch", "2.0.0")).GetProperty("id").GetString()!;
        var autoId = (await admin.StartReleaseAsync("r-auto", "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(watchId, "Succeeded");
        await admin.WaitForStateAsync(autoId, "Succeeded");

        _factory.Deployer.Observe("r-watch", Slot.Green, new SlotObservation(false, null, false, "process exited with 137"));
        _factory.Deployer.Observe("r-auto", Slot.Green, new SlotObservation(false, null, false, "process exited with 137"));

        var events = await WaitForAuditAsync(admin, "r-watch", "slot.live-unhealthy");
        var app = await admin.GetJsonAsync("/api/v1/applications/r-watch");
        Assert.Equal(("Failed", false), (app.GetProperty("slots").GetProperty("green").GetProperty("state").GetString(),
            app.GetProperty("slots").GetProperty("green").GetProperty("healthy").GetBoolean()));
        Assert.Equal(JsonValueKind.String, app.GetProperty("rollbackAvailableUntil").ValueKind); // rollback offered
        Assert.Equal("green", app.GetProperty("liveSlot").GetString()); // not automatic by default
        Assert.Contains("process exited with 137", Assert.Single(events).GetProperty("reason").GetString());

        // The policy that asks for it: the loop rolls back on its own.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await admin.GetJsonAsync($"/api/v1/deployments/{autoId}")).GetProperty("state").GetString() != "RolledBack")
        {
            Assert.True(DateTime.UtcNow < deadline, "r-auto was not rolled back after its live slot died");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.Single(await WaitForAuditAsync(admin, "r-auto", "application.rolled-back"));
        Assert.Equal(Slot.Blue, _factory.Router.LiveOf("r-auto"));

        // Still down a few rounds later: still one event, not one per look.
        await Task.Delay(TimeSpan.FromSeconds(6), TestContext.Current.CancellationToken);
        Assert.Single(await WaitForAuditAsync(admin, "r-watch", "slot.live-unhealthy"));
        Assert.Equal("Succeeded", (await admin.GetJsonAsync($"/api/v1/deployments/{watchId}")).GetProperty("state").GetString());
    }

    private static async Task<List<JsonElement>> WaitForAuditAsync(HttpClient admin, string app, string action)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var items = (await admin.GetJsonAsync($"/api/v1/audit?application={app}&action={action}")).GetProperty("items").EnumerateArray().ToList();
            if (items.Count > 0) return items;
            if (DateTime.UtcNow > deadline) Assert.Fail($"no {action} event for {app}");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }
}
