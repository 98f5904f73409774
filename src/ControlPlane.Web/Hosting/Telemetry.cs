using ControlPlane.Core.Security;
using ControlPlane.Core.Telemetry;
using Microsoft.AspNetCore.Authorization;
using ControlPlane.Web.Security;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// OpenTelemetry: ControlPlane's meters (releases by outcome, step and switch/rollback durations, audit events, the routers'
/// per-slot traffic), ASP.NET Core and runtime instrumentation, exported at <c>/metrics</c> for Prometheus; a span per release
/// step over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or <c>ControlPlane:Telemetry:OtlpEndpoint</c>) is set.
/// </summary>
public static class Telemetry
{
    public const string MetricsPath = "/metrics";

    public static WebApplicationBuilder AddControlPlaneTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<TrafficHistory>();
        builder.Services.AddHostedService<RouterTrafficPoller>();
        var otlp = builder.Configuration["ControlPlane:Telemetry:OtlpEndpoint"] is { Length: > 0 } configured ? configured
            : builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("controlplane", serviceInstanceId: Environment.MachineName))
            .WithMetrics(m => m
                .AddMeter(ControlPlaneTelemetry.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter());
        if (!string.IsNullOrWhiteSpace(otlp))
            otel.WithTracing(t => t.AddSource(ControlPlaneTelemetry.ActivitySourceName).AddOtlpExporter(o => o.Endpoint = new Uri(otlp)));
        return builder;
    }

    /// <summary>
    /// /metrics names applications, their versions and traffic: it answers to an API token allowed to view
    /// applications, as the API does — Prometheus sends it with <c>authorization: {credentials: …}</c>. Setting
    /// <c>ControlPlane:Telemetry:AnonymousMetrics</c> to true opens it, for a port only the monitoring network reaches.
    /// </summary>
    public static WebApplication MapControlPlaneMetrics(this WebApplication app)
    {
        var endpoint = app.MapPrometheusScrapingEndpoint(MetricsPath);
        if (app.Configuration.GetValue("ControlPlane:Telemetry:AnonymousMetrics", false)) endpoint.AllowAnonymous();
        // Bearer only: a scraper is a program (401, not a redirect to the sign-in page), and a browser's session cookie is not read.
        else endpoint.RequireAuthorization(new AuthorizeAttribute(Permissions.PolicyName(Permission.ViewApplications))
        {
            AuthenticationSchemes = BearerTokenAuthenticationHandler.SchemeName,
        });
        return app;
    }
}
