using System.Net;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Execution;

/// <summary>
/// The switch records intent for the reconcile loop and then waits (bounded by the rollback's limit) for the runtime leader
/// to report the traffic moved: the 202 carries the deployment as it is after the flip, or as recorded when the wait ran out.
/// </summary>
public sealed class SwitchWaitTests(PostgresFixture postgres) : IAsyncLifetime
{
    private RecordingAppFactory _factory = null!;

    // A short limit, so the test of a wait that runs out takes about a second.
    public async ValueTask InitializeAsync() => _factory = await RecordingAppFactory.StartAsync(postgres, rollbackWaitSeconds: 1);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private async Task<string> ReadyToSwitchAsync(HttpClient admin, string app)
    {
        await _factory.RegisterAsync(admin, app,
            new { requiredApprovals = 0, switchOnApproval = false, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 60, holdWindowSeconds = 600 });
        var id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "ReadyToSwitch");
        return id;
    }

    [Fact]
    public async Task The_switch_answers_once_the_leader_moved_the_traffic_with_the_release_in_Monitoring()
    {
        using var admin = _factory.Admin();
        var id = await ReadyToSwitchAsync(admin, "sw-moved");

        var response = await admin.PostJsonAsync($"/api/v1/deployments/{id}/switch", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal($"/api/v1/deployments/{id}", response.Headers.Location?.OriginalString);
        var body = await response.JsonAsync();
        Assert.Equal("Monitoring", body.GetProperty("state").GetString());
        Assert.Equal("green", _factory.Router.LiveOf("sw-moved")?.ToString().ToLowerInvariant());
    }

    [Fact]
    public async Task When_the_leader_has_not_reported_within_the_wait_the_switch_answers_as_recorded_and_the_loop_finishes_it()
    {
        using var admin = _factory.Admin();
        var id = await ReadyToSwitchAsync(admin, "sw-slow");
        using var gate = new ManualResetEventSlim();
        // The leader's proof through the data plane hangs until the answer is in: the flip cannot be reported within the wait.
        _factory.Router.VerifyOverride = (app, _) =>
        {
            if (app == "sw-slow") gate.Wait(TimeSpan.FromSeconds(30));
            return null;
        };
        try
        {
            var response = await admin.PostJsonAsync($"/api/v1/deployments/{id}/switch", null);
            gate.Set();

            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.Equal($"/api/v1/deployments/{id}", response.Headers.Location?.OriginalString);
            Assert.Equal("Switching", (await response.JsonAsync()).GetProperty("state").GetString());
            await admin.WaitForStateAsync(id, "Monitoring");
        }
        finally
        {
            gate.Set();
            _factory.Router.VerifyOverride = null;
        }
    }
}
