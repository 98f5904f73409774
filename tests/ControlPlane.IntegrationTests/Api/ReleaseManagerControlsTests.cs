using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>
/// Issue 14: the controls a release manager expects during monitoring and hold — extend the hold window, decommission the
/// previous slot, finish monitoring early, retry a failed release. Each permissioned (403), refused in the wrong state (409 in
/// words), bad input named (400), audited, and carried out by the runtime leader from the recorded intent.
/// </summary>
public sealed class ReleaseManagerControlsTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Hold_window_is_extended_then_the_previous_slot_is_decommissioned_by_the_runtime()
    {
        using var admin = _factory.Admin();
        using var viewer = await _factory.ClientWithRoleAsync("vera", "Viewer");
        using var onCall = await _factory.ClientWithRoleAsync("carol", "OnCall");
        using var manager = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        const string app = "hold-controls";
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });
        var id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Succeeded");
        var before = await HoldUntilAsync(admin, app);

        // Extend: on-call may (it keeps the rollback open), a viewer may not; bad input is named and changes nothing.
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 30, reason = "x" })).StatusCode);
        await AssertFieldAsync(await onCall.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 0, reason = "x" }), "minutes");
        await AssertFieldAsync(await onCall.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 1441, reason = "x" }), "minutes");
        await AssertFieldAsync(await onCall.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 30 }), "reason");
        Assert.Equal(before, await HoldUntilAsync(admin, app));
        var extended = await onCall.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 30, reason = "watching the nightly batch" });
        Assert.Equal(HttpStatusCode.OK, extended.StatusCode);
        Assert.Equal(before + TimeSpan.FromMinutes(30), await HoldUntilAsync(admin, app));
        var evt = await SingleEventAsync(admin, app, "deployment.hold-extended");
        Assert.Equal(("carol", "watching the nightly batch"), (evt.GetProperty("actor").GetString(), evt.GetProperty("reason").GetString()));
        Assert.Equal(30, JsonDocument.Parse(evt.GetProperty("details").GetString()!).RootElement.GetProperty("minutes").GetInt32());

        // Decommission ends the warm rollback: not on-call's call (it removes their safety net); a release manager's.
        Assert.Equal(HttpStatusCode.Forbidden, (await onCall.PostJsonAsync($"/api/v1/deployments/{id}/decommission-previous", new { reason = "x" })).StatusCode);
        await AssertFieldAsync(await manager.PostJsonAsync($"/api/v1/deployments/{id}/decommission-previous", new { }), "reason");
        var decommissioned = await manager.PostJsonAsync($"/api/v1/deployments/{id}/decommission-previous", new { reason = "2.0.0 is fine; free the host" });
        Assert.Equal(HttpStatusCode.Accepted, decommissioned.StatusCode);
        Assert.Equal("deployment.previous-slot-decommissioned", (await SingleEventAsync(admin, app, "deployment.previous-slot-decommissioned")).GetProperty("action").GetString());

        // The runtime leader's housekeeping stops the slot (not the request).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement current;
        do
        {
            await Task.Delay(250, Ct);
            current = await admin.GetJsonAsync($"/api/v1/applications/{app}");
        } while (current.GetProperty("slots").GetProperty("blue").GetProperty("state").GetString() != "Stopped" && DateTime.UtcNow < deadline);
        Assert.Equal("Stopped", current.GetProperty("slots").GetProperty("blue").GetProperty("state").GetString());
        Assert.DoesNotContain(ControlPlaneProcess.SlotProcesses(app), p => p.Slot == "blue");
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));

        // Now there is nothing warm: both controls refuse with words, and the rollback says why.
        var again = await manager.PostJsonAsync($"/api/v1/deployments/{id}/decommission-previous", new { reason = "again" });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("Nothing to decommission", (await again.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await onCall.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 30, reason = "late" })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await onCall.PostJsonAsync($"/api/v1/applications/{app}/rollback", new { reason = "too late" })).StatusCode);
    }

    [Fact]
    public async Task Monitoring_is_finished_early_by_the_loop_and_the_hold_counts_an_extension_made_during_monitoring()
    {
        using var admin = _factory.Admin();
        using var onCall = await _factory.ClientWithRoleAsync("carol", "OnCall");
        using var manager = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        const string app = "finish-early";
        await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 3600, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });
        var id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Monitoring");

        // Before monitoring ends the previous slot is the automatic rollback's target: no decommission.
        var early = await manager.PostJsonAsync($"/api/v1/deployments/{id}/decommission-previous", new { reason = "now" });
        Assert.Equal(HttpStatusCode.Conflict, early.StatusCode);
        Assert.Contains("still being monitored", (await early.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.OK, (await onCall.PostJsonAsync($"/api/v1/deployments/{id}/extend-hold", new { minutes = 60, reason = "long night" })).StatusCode);

        var refused = await onCall.PostJsonAsync($"/api/v1/deployments/{id}/finish-monitoring", new { reason = "x" });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("may not take a forward release decision (switch traffic, finish monitoring early", (await refused.JsonAsync()).GetProperty("detail").GetString());
        await AssertFieldAsync(await manager.PostJsonAsync($"/api/v1/deployments/{id}/finish-monitoring", new { reason = " " }), "reason");
        var finish = await manager.PostJsonAsync($"/api/v1/deployments/{id}/finish-monitoring", new { reason = "dashboards are clean; customer waiting" });
        Assert.Equal(HttpStatusCode.Accepted, finish.StatusCode);
        var done = await admin.WaitForStateAsync(id, "Succeeded", 30);
        Assert.StartsWith("Monitoring ended early by alice after", done.GetProperty("outcome").GetString());
        var monitor = done.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "monitor");
        Assert.Equal("Succeeded", monitor.GetProperty("state").GetString());

        // The hold starts when monitoring ended: the policy's 10 minutes plus the hour asked for during monitoring.
        var holdUntil = await HoldUntilAsync(admin, app);
        var finishedAt = done.GetProperty("finishedAt").GetDateTimeOffset();
        Assert.Equal(finishedAt + TimeSpan.FromMinutes(70), holdUntil, TimeSpan.FromSeconds(1));

        Assert.Equal("alice", (await SingleEventAsync(admin, app, "deployment.finish-monitoring-requested")).GetProperty("actor").GetString());
        var succeeded = await SingleEventAsync(admin, app, "deployment.succeeded");
        Assert.Equal(("alice", "dashboards are clean; customer waiting"), (succeeded.GetProperty("actor").GetString(), succeeded.GetProperty("reason").GetString()));
        var twice = await manager.PostJsonAsync($"/api/v1/deployments/{id}/finish-monitoring", new { reason = "again" });
        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);
        Assert.Contains("already finished monitoring", (await twice.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_failed_release_is_retried_as_a_new_release_of_the_same_version_and_only_the_latest_one()
    {
        using var admin = _factory.Admin();
        using var viewer = await _factory.ClientWithRoleAsync("vera", "Viewer");
        using var onCall = await _factory.ClientWithRoleAsync("carol", "OnCall");
        using var manager = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        const string app = "retry-me";
        await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 1 });
        var failed = (await admin.StartReleaseAsync(app, "2.1.0-fail-verify")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(failed, "Failed");

        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostJsonAsync($"/api/v1/deployments/{failed}/retry", new { })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await onCall.PostJsonAsync($"/api/v1/deployments/{failed}/retry", new { })).StatusCode);
        var retry = await manager.PostJsonAsync($"/api/v1/deployments/{failed}/retry", new { });
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        var retried = await retry.JsonAsync();
        var retriedId = retried.GetProperty("id").GetString()!;
        Assert.NotEqual(failed, retriedId);
        Assert.Equal($"/api/v1/deployments/{retriedId}", retry.Headers.Location?.OriginalString);
        Assert.Equal(("2.1.0-fail-verify", "alice"), (retried.GetProperty("version").GetString(), retried.GetProperty("requestedBy").GetString()));
        var link = await SingleEventAsync(admin, app, "deployment.retried");
        Assert.Equal(failed, JsonDocument.Parse(link.GetProperty("details").GetString()!).RootElement.GetProperty("retryOf").GetString());
        Assert.Equal(retriedId, link.GetProperty("deploymentId").GetString());

        // The retry runs every step again (and fails the same way here); the first attempt is no longer the latest.
        await admin.WaitForStateAsync(retriedId, "Failed");
        var stale = await manager.PostJsonAsync($"/api/v1/deployments/{failed}/retry", new { });
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Contains("only the latest release can be retried", (await stale.JsonAsync()).GetProperty("detail").GetString());

        // A succeeded release is not retried.
        var good = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(good, "AwaitingApproval");
        var inFlight = await manager.PostJsonAsync($"/api/v1/deployments/{good}/retry", new { });
        Assert.Equal(HttpStatusCode.Conflict, inFlight.StatusCode);
        Assert.Contains("only a failed release can be retried", (await inFlight.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await manager.PostJsonAsync($"/api/v1/deployments/{Guid.NewGuid()}/retry", new { })).StatusCode);
    }

    private static async Task<DateTimeOffset> HoldUntilAsync(HttpClient admin, string app) =>
        (await admin.GetJsonAsync($"/api/v1/applications/{app}")).GetProperty("rollbackAvailableUntil").GetDateTimeOffset();

    private static async Task<JsonElement> SingleEventAsync(HttpClient admin, string app, string action) =>
        Assert.Single((await admin.GetJsonAsync($"/api/v1/audit?application={app}&action={action}")).GetProperty("items").EnumerateArray());

    private static async Task AssertFieldAsync(HttpResponseMessage response, string field)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True((await response.JsonAsync()).GetProperty("errors").TryGetProperty(field, out _), $"no error for {field}");
    }
}
