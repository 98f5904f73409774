using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Routing;
using ControlPlane.Core.Telemetry;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Hosting;

/// <summary>One reading of an application's router: per slot the cumulative counters and the version it ran.</summary>
public sealed record TrafficSample(DateTimeOffset At, RouterTraffic Traffic, string? BlueVersion, string? GreenVersion, Slot Live);

/// <summary>
/// The routers' per-slot traffic as read every few seconds on this host (kept in memory for the last minutes): what /metrics
/// exports labelled application/slot/version, and what the release page charts.
/// </summary>
public sealed class TrafficHistory
{
    public static readonly TimeSpan Kept = TimeSpan.FromMinutes(20);
    private readonly ConcurrentDictionary<string, List<TrafficSample>> _samples = new(StringComparer.Ordinal);

    public TrafficHistory()
    {
        ControlPlaneTelemetry.Meter.CreateObservableCounter("controlplane.router.requests", () => Observe((s, t) => t.Requests), "{request}",
            "Real requests the router forwarded to the slot since it last became live");
        ControlPlaneTelemetry.Meter.CreateObservableCounter("controlplane.router.errors", () => Observe((s, t) => t.Errors), "{request}",
            "Of those, answered 5xx");
        ControlPlaneTelemetry.Meter.CreateObservableGauge("controlplane.router.latency.p99", () => Observe((s, t) => s.Traffic.Quantile(t, 0.99) is { } p && double.IsFinite(p) ? p : 0), "ms",
            "p99 latency since the slot last became live (upper bound of its histogram bucket)");
    }

    public event Action<string>? Changed;

    public void Add(string application, TrafficSample sample)
    {
        var list = _samples.GetOrAdd(application, _ => []);
        lock (list)
        {
            list.Add(sample);
            list.RemoveAll(x => x.At < sample.At - Kept);
        }
        Changed?.Invoke(application);
    }

    public IReadOnlyList<TrafficSample> Of(string application)
    {
        if (!_samples.TryGetValue(application, out var list)) return [];
        lock (list) return [.. list];
    }

    private IEnumerable<Measurement<T>> Observe<T>(Func<TrafficSample, SlotTraffic, T> value) where T : struct
    {
        foreach (var (application, list) in _samples)
        {
            TrafficSample? last;
            lock (list) last = list.Count > 0 ? list[^1] : null;
            if (last is null || !last.Traffic.Measuring) continue;
            foreach (var (slot, traffic, version) in new[] { ("blue", last.Traffic.Blue, last.BlueVersion), ("green", last.Traffic.Green, last.GreenVersion) })
                yield return new(value(last, traffic), new("application", application), new("slot", slot), new("version", version ?? ""));
        }
    }
}

/// <summary>Reads the traffic measurement of every measuring router (embedded on this host; nginx in lua mode) every few seconds.</summary>
public sealed class RouterTrafficPoller(IServiceScopeFactory scopes, TrafficHistory history, ILogger<RouterTrafficPoller> logger) : BackgroundService
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Every);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
                    var providers = scope.ServiceProvider.GetRequiredService<ProviderRegistry>();
                    var apps = await db.Applications.AsNoTracking()
                        .Where(a => a.ArchivedAt == null && (a.RouterKind == EmbeddedRouter.KindName || a.RouterKind == NginxRouter.KindName)).ToListAsync(stoppingToken);
                    foreach (var app in apps)
                    {
                        if (providers.RouterFor(app) is not ITrafficMeasuringRouter router) continue;
                        try
                        {
                            if (await router.ReadTrafficAsync(providers.RouterBindingFor(app), stoppingToken) is { } traffic)
                                history.Add(app.Name, new TrafficSample(DateTimeOffset.UtcNow, traffic, app.SlotStatusOf(Slot.Blue).Version, app.SlotStatusOf(Slot.Green).Version, app.LiveSlot));
                        }
                        catch (RouterException ex)
                        {
                            logger.LogDebug("No traffic reading for {Application}: {Reason}", app.Name, ex.Message);
                        }
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogDebug("Traffic readings paused: {Reason}", ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}
