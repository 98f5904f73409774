using ControlPlane.Core.Deployers;
using ControlPlane.Core.Routing;
using ControlPlane.Web.Workers;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Hosting;

/// <summary>Bound from <c>ControlPlane:Runtime</c>.</summary>
public sealed class RuntimeOptions
{
    public const string Section = "ControlPlane:Runtime";

    /// <summary>
    /// Stop every slot process and router process when ControlPlane stops cleanly (Ctrl+C, SIGTERM). Off by default:
    /// stopping a slot is always an explicit act, so stopping or upgrading the control plane never takes an application down.
    /// </summary>
    public bool StopOnShutdown { get; set; }
}

/// <summary>
/// On a clean shutdown leaves slot processes and router processes serving (the next start adopts them), unless
/// <see cref="RuntimeOptions.StopOnShutdown"/> asks to stop them. After a kill -9 they keep running in any case.
/// </summary>
public sealed class SlotProcessesLifetime(
    EmbeddedRouter router, ProcessDeployer processes, RuntimeLeadership leadership, IOptions<RuntimeOptions> options,
    ILogger<SlotProcessesLifetime> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await router.DisposeAsync();
        // Only the leader started them; a standby replica sharing the data directory must not stop the leader's slots.
        if (!leadership.HasLed) return;
        if (!options.Value.StopOnShutdown)
        {
            logger.LogInformation("Slot processes and routers keep serving; the next start adopts them ({Setting}=true stops them on shutdown)",
                $"{RuntimeOptions.Section}:{nameof(RuntimeOptions.StopOnShutdown)}");
            return;
        }
        await router.StopAllAsync(cancellationToken);
        await processes.StopAllAsync(cancellationToken);
    }
}
