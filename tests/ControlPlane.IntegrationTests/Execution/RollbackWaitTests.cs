using System.Net;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Execution;

/// <summary>When the runtime leader does not report within the bounded wait, a rollback answers 202 with where to poll.</summary>
public sealed class RollbackWaitTests(PostgresFixture postgres) : IAsyncLifetime
{
    private RecordingAppFactory _factory = null!;

    // A wait of zero: the request never waits for the leader, so the answer is always "accepted, poll here".
    public async ValueTask InitializeAsync() => _factory = await RecordingAppFactory.StartAsync(postgres, rollbackWaitSeconds: 0);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task A_rollback_the_leader_has_not_reported_yet_answers_202_with_the_deployment_to_follow()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-accepted",
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });
        var id = (await admin.StartReleaseAsync("r-accepted", "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Monitoring");

        var response = await admin.PostJsonAsync("/api/v1/applications/r-accepted/rollback", new { reason = "poll me" });

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal($"/api/v1/deployments/{id}", response.Headers.Location?.OriginalString);
        var body = await response.JsonAsync();
        Assert.True(body.GetProperty("pending").GetBoolean());
        var done = await admin.WaitForStateAsync(id, "RolledBack");
        Assert.Equal("done", done.GetProperty("rollback").GetProperty("state").GetString());
        Assert.Equal("poll me", done.GetProperty("rollback").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_rollback_with_nothing_warm_is_refused_at_request_time_with_the_reason()
    {
        using var admin = _factory.Admin();
        await _factory.RegisterAsync(admin, "r-nothing",
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });

        var response = await admin.PostJsonAsync("/api/v1/applications/r-nothing/rollback", new { reason = "nothing to go back to" });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("No warm previous slot to roll back to", (await response.JsonAsync()).GetProperty("detail").GetString());
        var requested = (await admin.GetJsonAsync("/api/v1/audit?application=r-nothing&action=rollback.requested")).GetProperty("items");
        Assert.Equal(0, requested.GetArrayLength());
    }
}
