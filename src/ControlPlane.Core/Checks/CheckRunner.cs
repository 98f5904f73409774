using Microsoft.Extensions.DependencyInjection;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Checks;

/// <summary>What a check is run against: the slot's own endpoint, and the names its url or query placeholders stand for.</summary>
public sealed record CheckTarget(Uri SlotEndpoint, string Application, Slot Slot, string Version);

/// <summary>Runs an application's checks of every kind against one slot.</summary>
public sealed class CheckRunner(HttpCheckRunner http, PrometheusCheckRunner prometheus)
{
    public async Task<IReadOnlyList<CheckResult>> RunAllAsync(IEnumerable<HttpCheck> checks, CheckTarget target, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        foreach (var check in checks)
        {
            results.Add(check.Kind switch
            {
                HttpCheck.PrometheusKind => await prometheus.RunAsync(check, target, cancellationToken),
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
        services.AddSingleton<CheckRunner>();
        return services;
    }
}
