using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

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
