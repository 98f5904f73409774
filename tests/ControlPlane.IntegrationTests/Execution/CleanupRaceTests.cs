using System.Net;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;

namespace ControlPlane.IntegrationTests.Execution;

/// <summary>
/// A finished release's clean-up stops the slot it abandoned — but only while that slot is still its own. Found by the
/// release-flow benchmark under load: a rolled-back release's clean-up failed once (a concurrent save of the application),
/// was retried after the next release had been deployed onto the same slot, and stopped that release's process; its switch
/// then failed its data-plane proof (502 from the router) and was reverted.
/// </summary>
public sealed class CleanupRaceTests(PostgresFixture postgres) : IAsyncLifetime
{
    private RecordingAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await RecordingAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task A_clean_up_retried_after_the_next_release_took_the_slot_does_not_stop_that_release()
    {
        const string app = "cl-race";
        using var admin = _factory.Admin();
        // The two waits below poll for what the worker does; bounded, so a regression fails the test instead of hanging it.
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(TimeSpan.FromSeconds(90));
        var ct = bound.Token;
        await _factory.RegisterAsync(admin, app,
            new { requiredApprovals = 1, allowSelfApproval = true, switchOnApproval = false, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 60, holdWindowSeconds = 600 });
        var first = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(first, "AwaitingApproval");
        Assert.True((await admin.PostJsonAsync($"/api/v1/deployments/{first}/approve", new { comment = "ok" })).IsSuccessStatusCode);
        await admin.WaitForStateAsync(first, "ReadyToSwitch");
        Assert.Equal("Monitoring", (await (await admin.PostJsonAsync($"/api/v1/deployments/{first}/switch", null)).JsonAsync()).GetProperty("state").GetString());

        // The rolled-back release's clean-up (stop green) fails once and is retried a few seconds later...
        _factory.Deployer.FailNextStop[app] = new IOException("the process did not stop in time");
        var rollback = await admin.PostJsonAsync($"/api/v1/applications/{app}/rollback", new { reason = "back" });
        Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        while (!_factory.Log.Of(app).Contains($"deployer stop-failed {app} green")) await Task.Delay(20, ct);

        // ...by which time the next release has been deployed onto green and waits for its approval there.
        var second = (await admin.StartReleaseAsync(app, "3.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(second, "AwaitingApproval");
        var deployed = _factory.Log.Of(app).ToList().LastIndexOf($"deployer deploy {app} green 3.0.0");
        await using (var db = new NpgsqlConnection(_factory.ConnectionString))
        {
            await db.OpenAsync(ct);
            await using var pending = new NpgsqlCommand("SELECT cleanup_pending FROM deployments WHERE id = @id", db);
            pending.Parameters.AddWithValue("id", Guid.Parse(first));
            while ((bool)(await pending.ExecuteScalarAsync(ct))!) await Task.Delay(100, ct); // the retry ran
        }

        var after = _factory.Log.Of(app).Skip(deployed + 1).ToList();
        Assert.True(deployed >= 0, string.Join("\n", _factory.Log.Of(app)));
        Assert.DoesNotContain($"deployer stop {app} green", after);
        var slot = (await admin.GetJsonAsync($"/api/v1/applications/{app}")).GetProperty("slots").GetProperty("green");
        Assert.Equal("3.0.0", slot.GetProperty("version").GetString());
        Assert.NotEqual("Stopped", slot.GetProperty("state").GetString());
    }
}
