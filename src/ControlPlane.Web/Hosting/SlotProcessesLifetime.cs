using ControlPlane.Core.Deployers;
using ControlPlane.Core.Routing;
using ControlPlane.Web.Workers;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// On a clean shutdown, closes the embedded router listeners and stops the slot processes, so Ctrl+C leaves nothing
/// behind. (After a kill -9 they keep running and the next start finds and adopts them.)
/// </summary>
public sealed class SlotProcessesLifetime(EmbeddedRouter router, ProcessDeployer processes, RuntimeLeadership leadership) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await router.DisposeAsync();
        // Only the leader started them; a standby replica sharing the data directory must not stop the leader's slots.
        if (leadership.Acquired.IsCompletedSuccessfully) await processes.StopAllAsync(cancellationToken);
    }
}
