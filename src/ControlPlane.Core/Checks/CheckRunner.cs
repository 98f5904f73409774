using Microsoft.Extensions.DependencyInjection;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;

namespace ControlPlane.Core.Checks;

/// <summary>What a check is run against: the slot's own endpoint, and the names its url or query placeholders stand for.</summary>
public sealed record CheckTarget(Uri SlotEndpoint, string Application, Slot Slot, string Version)
{
    /// <summary>After the switch: traffic checks judge only then (before it, the new slot has no real traffic).</summary>
    public bool Monitoring { get; init; }

    /// <summary>Reads the router's traffic measurement; null when the application's router kind does not measure.</summary>
    public Func<CancellationToken, Task<RouterTraffic?>>? Traffic { get; init; }

    /// <summary>The router kind, for saying why there is no measurement.</summary>
    public string RouterKind { get; init; } = "";
}

/// <summary>Runs an application's checks of every kind against one slot.</summary>
public sealed class CheckRunner(HttpCheckRunner http, PrometheusCheckRunner prometheus, TrafficCheckRunner traffic)
{
    public async Task<IReadOnlyList<CheckResult>> RunAllAsync(IEnumerable<HttpCheck> checks, CheckTarget target, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        foreach (var check in checks)
        {
            if (check.Kind == HttpCheck.TrafficKind && !target.Monitoring) continue;
            results.Add(check.Kind switch
            {
                HttpCheck.PrometheusKind => await prometheus.RunAsync(check, target, cancellationToken),
                HttpCheck.TrafficKind => await traffic.RunAsync(check, target, cancellationToken),
                _ => await http.RunAsync(check, target, cancellationToken),
            });
        }
        return results;
    }
}

public static class CheckRunnerRegistration
{
    public static IServiceCollection AddCheckRunners(this IServiceCollection services)
    {
        services.AddOptions<PrometheusOptions>().BindConfiguration(PrometheusOptions.Section);
        services.AddSingleton<PrometheusCheckRunner>();
        services.AddSingleton<TrafficCheckRunner>();
        services.AddSingleton<CheckRunner>();
        return services;
    }
}

public static class CheckTargets
{
    /// <summary>The new live slot after the switch, with the router's traffic measurement when its kind measures (embedded; nginx in lua mode).</summary>
    public static CheckTarget Monitoring(Execution.ProviderRegistry providers, Application app, Deployment d, Uri endpoint) =>
        new(endpoint, app.Name, d.TargetSlot, d.Version)
        {
            Monitoring = true,
            RouterKind = app.RouterKind,
            Traffic = providers.RouterFor(app) is ITrafficMeasuringRouter measuring ? ct => measuring.ReadTrafficAsync(providers.RouterBindingFor(app), ct) : null,
        };
}
