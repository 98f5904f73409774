using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Checks;

/// <summary>
/// Prometheus checks against a real Prometheus on loopback (scraping a small exporter whose samples the test sets): a value
/// within bounds passes, one outside fails naming it, and no data holds the release for a person even when the policy
/// needs no approval.
/// </summary>
public sealed class PrometheusChecksTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const string App = "evidence-prom";
    private ControlPlaneAppFactory _factory = null!;
    private MetricsTarget _exporter = null!;
    private PrometheusServer _prometheus = null!;

    public async ValueTask InitializeAsync()
    {
        _exporter = await MetricsTarget.StartAsync(Ct);
        _exporter.Text = $"""
            # TYPE demo_cache_hit_ratio gauge
            demo_cache_hit_ratio{"{"}application="{App}",slot="green",version="2.0.0"{"}"} 0.92
            demo_cache_hit_ratio{"{"}application="{App}",slot="green",version="2.1.0"{"}"} 0.6

            """;
        _prometheus = await PrometheusServer.StartAsync([("exporter", _exporter.Url)], Ct);
        _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        await _prometheus.DisposeAsync();
        await _exporter.DisposeAsync();
    }

    private static string StepMessage(JsonElement deployment, string step) =>
        deployment.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == step).GetProperty("message").GetString()!;

    [Fact]
    public async Task Pass_fail_and_no_data_against_a_real_prometheus()
    {
        await _prometheus.WaitForSeriesAsync($"demo_cache_hit_ratio{{application=\"{App}\"}}", Ct);
        using var admin = _factory.Admin();
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, App,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 0 },
            checks: new object[]
            {
                new { name = "home", path = "/" },
                new
                {
                    kind = "prometheus", name = "cache-ratio", url = _prometheus.Url.ToString(), min = 0.85,
                    query = "demo_cache_hit_ratio{application=\"{application}\",slot=\"{slot}\",version=\"{version}\"}",
                },
            });

        var failed = await admin.WaitForStateAsync((await admin.StartReleaseAsync(App, "2.1.0")).GetProperty("id").GetString()!, "Failed");
        Assert.Contains("check 'cache-ratio'", StepMessage(failed, "verify"));
        Assert.Contains("the query returned 0.6", StepMessage(failed, "verify"));
        Assert.Contains("needs ≥ 0.85", StepMessage(failed, "verify"));
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));

        // No series for 3.0.0: not a pass. The policy needs no approval, yet the release waits for a person, saying why.
        var heldId = (await admin.StartReleaseAsync(App, "3.0.0")).GetProperty("id").GetString()!;
        var held = await admin.WaitForStateAsync(heldId, "AwaitingApproval");
        Assert.Equal(0, held.GetProperty("requiredApprovals").GetInt32());
        Assert.Contains("held for a person", StepMessage(held, "approval"));
        Assert.Contains("check 'cache-ratio' inconclusive: no data", StepMessage(held, "approval"));
        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={App}&action=deployment.awaiting-approval");
        Assert.Contains("inconclusive", audit.GetProperty("items")[0].GetProperty("reason").GetString());
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var aborted = await admin.PostJsonAsync($"/api/v1/deployments/{heldId}/abort", new { reason = "no metrics for 3.0.0" });
        Assert.Equal(HttpStatusCode.OK, aborted.StatusCode);
        await admin.WaitForStateAsync(heldId, "Aborted");

        var passed = await admin.WaitForStateAsync((await admin.StartReleaseAsync(App, "2.0.0")).GetProperty("id").GetString()!, "Succeeded");
        Assert.Contains("the query returned 0.92", StepMessage(passed, "verify"));
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));
    }

    [Fact]
    public async Task A_prometheus_error_or_an_unreachable_server_is_inconclusive_never_a_pass()
    {
        using var admin = _factory.Admin();
        var unreachable = $"http://127.0.0.1:{Core.Deployers.LoopbackPorts.PickForLater()}";
        await TestApplications.RegisterDemoCopyAsync(admin, App, new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 0 },
            checks: new object[]
            {
                new { kind = "prometheus", name = "bad-query", url = _prometheus.Url.ToString(), query = "sum(", max = 1 },
                new { kind = "prometheus", name = "down", url = unreachable, query = "up", min = 1, timeoutSeconds = 2 },
            });
        var held = await admin.WaitForStateAsync((await admin.StartReleaseAsync(App, "2.0.0")).GetProperty("id").GetString()!, "AwaitingApproval");
        var message = StepMessage(held, "approval");
        Assert.Contains("check 'bad-query' inconclusive: Prometheus refused the query", message);
        Assert.Contains("check 'down' inconclusive: Prometheus could not be asked", message);

        // A person looks, decides, and the release goes on.
        using var approver = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var approved = await approver.PostJsonAsync($"/api/v1/deployments/{held.GetProperty("id").GetString()}/approve", new { comment = "checked the dashboard" });
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        await admin.WaitForStateAsync(held.GetProperty("id").GetString()!, "Succeeded");
    }
}
