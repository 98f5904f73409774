using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;

namespace ControlPlane.IntegrationTests.Checks;

/// <summary>
/// Real-traffic analysis: the embedded router measures the demo's own traffic per slot, and the seeded traffic check rolls a
/// version back that answers every probe but fails 5% of real requests.
/// </summary>
public sealed class TrafficChecksTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string App = "demo-shop";
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private static JsonElement Step(JsonElement deployment, string name) =>
        deployment.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);

    [Fact]
    public async Task Errors_5pct_passes_every_probe_and_is_rolled_back_by_the_measured_error_rate()
    {
        using var rita = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var publicUrl = await rita.PublicUrlAsync(App);
        var id = (await rita.StartReleaseAsync(App, "2.0.0-errors-5pct")).GetProperty("id").GetString()!;
        var awaiting = await rita.WaitForStateAsync(id, "AwaitingApproval");
        Assert.Equal("Succeeded", Step(awaiting, "verify").GetProperty("state").GetString()); // every check before the switch passed
        Assert.Equal(HttpStatusCode.OK, (await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" })).StatusCode);
        await rita.WaitForStateAsync(id, "ReadyToSwitch");
        Assert.Equal(HttpStatusCode.Accepted, (await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", null)).StatusCode);

        var rolledBack = await rita.WaitForStateAsync(id, "RolledBack", seconds: 90);
        var outcome = rolledBack.GetProperty("outcome").GetString()!;
        Assert.Contains("Automatically rolled back", outcome);
        Assert.Contains("check 'real-traffic'", outcome);
        Assert.Matches(@"error rate [0-9.]+% \([0-9]+ of [0-9]+ requests answered 5xx since the switch\), needs ≤ 1%", outcome);
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));

        using var admin = _factory.Admin();
        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={App}&action=deployment.auto-rolled-back");
        Assert.Contains("requests answered 5xx since the switch", Assert.Single(audit.GetProperty("items").EnumerateArray()).GetProperty("reason").GetString());

        // The measured error rate that tripped the breach is kept with the release for its chart.
        Assert.Equal(1L, await ScalarAsync($"SELECT count(*) FROM check_measurements WHERE deployment_id = '{id}' AND step = 'monitor' " +
                                           "AND check_name = 'real-traffic' AND name = 'error rate' AND outcome = 'Failed' AND value > 0.01"));
    }

    [Fact]
    public async Task Monitoring_that_cannot_judge_keeps_watching_and_says_which_check_as_a_recorded_flag()
    {
        const string watched = "evidence-watch";
        using var admin = _factory.Admin();
        // Nobody sends traffic to this copy of the demo, so the traffic check has no evidence after the switch.
        await TestApplications.RegisterDemoCopyAsync(admin, watched,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 600, monitoringIntervalSeconds = 1 },
            checks: new object[] { new { name = "home", path = "/" }, new { kind = "traffic", name = "real-traffic", maxErrorRate = 0.01, minRequests = 1000 } });
        var id = (await admin.StartReleaseAsync(watched, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Monitoring");

        JsonElement d = default;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            d = await admin.GetJsonAsync($"/api/v1/deployments/{id}");
            if (d.TryGetProperty("monitoringInconclusive", out var flag) && flag.ValueKind == JsonValueKind.String) break;
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.Equal("Monitoring", d.GetProperty("state").GetString());
        Assert.StartsWith("check 'real-traffic' inconclusive: only ", d.GetProperty("monitoringInconclusive").GetString());
        Assert.EndsWith("1000 needed to judge", d.GetProperty("monitoringInconclusive").GetString());
        Assert.Equal(1L, await ScalarAsync($"SELECT count(*) FROM deployments WHERE id = '{id}' AND monitoring_inconclusive LIKE 'check ''real-traffic'' inconclusive%'"));

        // The overview (and GET /applications) reads the flag, not the step's wording.
        var apps = await admin.GetJsonAsync("/api/v1/applications");
        var row = apps.EnumerateArray().Single(a => a.GetProperty("name").GetString() == watched);
        Assert.Contains(row.GetProperty("needsAttention").EnumerateArray().Select(x => x.GetString()),
            r => r!.StartsWith("2.0.0 still watching: check 'real-traffic' inconclusive", StringComparison.Ordinal));

        // The HTTP check's response time was still measured on every look.
        Assert.True(await ScalarAsync($"SELECT count(*) FROM check_measurements WHERE deployment_id = '{id}' AND step = 'monitor' AND check_name = 'home' AND name = 'response ms'") >= 1);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    [Fact]
    public async Task A_good_version_passes_the_traffic_check_on_measured_traffic()
    {
        using var rita = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var id = (await rita.StartReleaseAsync(App, "2.0.0")).GetProperty("id").GetString()!;
        await rita.WaitForStateAsync(id, "AwaitingApproval");
        await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" });
        await rita.WaitForStateAsync(id, "ReadyToSwitch");
        await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", null);
        var monitoring = await rita.WaitForStateAsync(id, "Monitoring");
        // Watch the monitor step until the traffic check has judged real requests (the demo sends a few per second).
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string message = "";
        while (DateTime.UtcNow < deadline)
        {
            var d = await rita.GetJsonAsync($"/api/v1/deployments/{id}");
            Assert.NotEqual("RolledBack", d.GetProperty("state").GetString());
            message = Step(d, "monitor").GetProperty("message").GetString() ?? "";
            if (d.GetProperty("state").GetString() == "Succeeded" || message.StartsWith("checks passing", StringComparison.Ordinal)) break;
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.True(message.StartsWith("checks passing", StringComparison.Ordinal) || message.StartsWith("no breach", StringComparison.Ordinal), message);
        Assert.DoesNotContain("inconclusive", message);
    }
}
