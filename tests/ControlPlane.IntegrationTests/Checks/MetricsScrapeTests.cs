using System.Net;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Checks;

/// <summary>
/// /metrics is OpenTelemetry's Prometheus exporter: a real Prometheus scrapes a real ControlPlane (with a token, as the
/// endpoint requires one) and finds the routers' per-slot traffic labelled by application, slot and version, ControlPlane's
/// own meters and the ASP.NET Core instrumentation.
/// </summary>
public sealed class MetricsScrapeTests(PostgresFixture postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_real_prometheus_scrapes_per_slot_traffic_and_own_meters_and_anonymous_scrapes_are_refused()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("metrics"));
        cp.Environment["ControlPlane__Demo__Enabled"] = "true";
        cp.Environment["ControlPlane__Demo__RouterPort"] = "0";
        await cp.StartAsync();

        using (var anonymous = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = cp.BaseAddress })
        {
            var refused = await anonymous.GetAsync("/metrics", Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            anonymous.DefaultRequestHeaders.Authorization = new("Bearer", "not-a-token");
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/metrics", Ct)).StatusCode);
            Assert.DoesNotContain("demo-shop", await refused.Content.ReadAsStringAsync(Ct));
        }

        await using var prometheus = await PrometheusServer.StartAsync([("controlplane", new Uri(cp.BaseAddress, "/metrics"))], Ct,
            bearerToken: ControlPlaneProcess.AdminToken);
        // The demo sends its own traffic through the router; the blue slot (1.0.0) is live.
        var series = await prometheus.WaitForSeriesAsync(
            "controlplane_router_requests_total{application=\"demo-shop\",slot=\"blue\",version=\"1.0.0\"} > 0", Ct, seconds: 60);
        Assert.Equal("demo-shop", series.GetProperty("data").GetProperty("result")[0].GetProperty("metric").GetProperty("application").GetString());
        await prometheus.WaitForSeriesAsync("controlplane_router_errors_total{application=\"demo-shop\",slot=\"green\"}", Ct);
        await prometheus.WaitForSeriesAsync("controlplane_audit_events_total", Ct);
        await prometheus.WaitForSeriesAsync("http_server_request_duration_seconds_count", Ct);
        await prometheus.WaitForSeriesAsync("up{job=\"controlplane\"} == 1", Ct);

        // Time to restore and worker lag: a release of a copy of the demo, rolled back by a person while it is monitored.
        using var admin = cp.Admin();
        await TestApplications.RegisterDemoCopyAsync(admin, "metrics-restore",
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 600 });
        var id = (await admin.StartReleaseAsync("metrics-restore", "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Monitoring");
        var rollback = await admin.PostJsonAsync("/api/v1/applications/metrics-restore/rollback", new { reason = "metrics test" });
        Assert.True(rollback.IsSuccessStatusCode, await rollback.Content.ReadAsStringAsync(Ct));
        await admin.WaitForStateAsync(id, "RolledBack");
        await prometheus.WaitForSeriesAsync(
            "controlplane_time_to_restore_seconds_count{application=\"metrics-restore\",automatic=\"false\"} == 1", Ct);
        await prometheus.WaitForSeriesAsync("controlplane_worker_lag_seconds_count > 0", Ct);
        await prometheus.WaitForSeriesAsync("controlplane_worker_lag_seconds_bucket{le=\"+Inf\"} > 0", Ct);
    }
}
