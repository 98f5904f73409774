using System.Net;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>
/// A person's rollback while the worker is saving monitoring ticks on the same deployment every second: the two must
/// serialize, the rollback must succeed, and the recorded live slot must match what the router serves — every time.
/// </summary>
public sealed class RollbackDuringMonitoringTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task A_rollback_waits_for_a_concurrent_write_to_the_deployment_and_still_lands()
    {
        var ct = TestContext.Current.CancellationToken;
        using var admin = _factory.Admin();
        const string app = "held-row";
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 60, holdWindowSeconds = 600 });
        var id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Monitoring");

        // What a monitoring tick does, held open: an uncommitted write to the deployment row.
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(ct);
        await using var tick = await connection.BeginTransactionAsync(ct);
        await using (var update = new NpgsqlCommand("UPDATE deployments SET updated_at = now() WHERE id = @id", connection, tick))
        {
            update.Parameters.AddWithValue("id", Guid.Parse(id));
            Assert.Equal(1, await update.ExecuteNonQueryAsync(ct));
        }

        var rollback = admin.PostJsonAsync($"/api/v1/applications/{app}/rollback", new { reason = "while the worker writes" });
        await Task.Delay(700, ct);
        Assert.False(rollback.IsCompleted, "the rollback must wait for the deployment row, not overwrite it");
        await tick.CommitAsync(ct);

        var response = await rollback;
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        Assert.Equal("blue", (await admin.GetJsonAsync($"/api/v1/applications/{app}")).GetProperty("liveSlot").GetString());
        await admin.WaitForStateAsync(id, "RolledBack");
    }

    [Fact]
    public async Task Rollback_races_the_monitoring_worker_and_always_lands()
    {
        using var admin = _factory.Admin();
        const string app = "busy-monitor";
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 120, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });

        for (var round = 1; round <= 4; round++)
        {
            var version = $"2.0.{round}";
            var id = (await admin.StartReleaseAsync(app, version)).GetProperty("id").GetString()!;
            await admin.WaitForStateAsync(id, "Monitoring");
            // Let a few monitoring ticks land on the row, then roll back in the middle of them.
            await Task.Delay(1500 + 200 * round, TestContext.Current.CancellationToken);

            var rollback = await admin.PostJsonAsync($"/api/v1/applications/{app}/rollback", new { reason = $"round {round}" });
            Assert.True(rollback.StatusCode == HttpStatusCode.OK, $"round {round}: {(int)rollback.StatusCode} {await rollback.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
            Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
            var application = await admin.GetJsonAsync($"/api/v1/applications/{app}");
            Assert.Equal("blue", application.GetProperty("liveSlot").GetString());
            await admin.WaitForStateAsync(id, "RolledBack");
        }
        Assert.True((await admin.GetJsonAsync("/api/v1/audit/verify")).GetProperty("valid").GetBoolean());
    }
}
