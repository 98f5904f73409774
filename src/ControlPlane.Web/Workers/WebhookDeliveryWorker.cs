using System.Diagnostics;
using ControlPlane.Core.Notifications;
using ControlPlane.Core.Notifications.Webhooks;
using ControlPlane.Web.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Workers;

/// <summary>
/// Sends webhooks from the durable outbox. Runs on every replica: fan-out locks outbox rows FOR UPDATE SKIP LOCKED and
/// deliveries are claimed under a lease, so two replicas never send one attempt twice, and a replica that dies mid-send
/// leaves a lease that expires into the next claim (after a restart on the same host, at once). Wakes on every audit
/// NOTIFY (outbox rows commit with their audit events), otherwise when the next retry is due.
/// </summary>
public sealed class WebhookDeliveryWorker(
    IServiceScopeFactory scopes, ChangeNotifier notifier, DatabaseSupervisor database, IOptions<WebhookOptions> options,
    IServer server, ILogger<WebhookDeliveryWorker> logger) : BackgroundService
{
    private static readonly TimeSpan MaxIdle = TimeSpan.FromSeconds(5);
    private const int Parallelism = 8;
    private readonly string _owner = $"{Environment.MachineName}/{Environment.ProcessId}/{Process.GetCurrentProcess().StartTime.Ticks}";
    private readonly SemaphoreSlim _wake = new(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.DeliveryEnabled)
        {
            logger.LogInformation("Webhook delivery is off on this replica (ControlPlane:Webhooks:DeliveryEnabled=false)");
            return;
        }
        using var subscription = notifier.Subscribe(n =>
        {
            if (n.Kind == ChangeNotice.AuditKind && _wake.CurrentCount == 0) _wake.Release();
        });
        var releasedDeadLeases = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!database.IsAvailable)
                {
                    await _wake.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
                    continue;
                }
                if (!releasedDeadLeases) releasedDeadLeases = await ReleaseDeadLocalLeasesAsync(stoppingToken);
                while (await InScopeAsync(d => d.FanOutAsync(ReleaseUrl, stoppingToken)) > 0) { }
                var claimed = await InScopeAsync(d => d.ClaimAsync(_owner, Parallelism, stoppingToken));
                if (claimed.Count > 0)
                {
                    await Task.WhenAll(claimed.Select(id => DeliverAsync(id, stoppingToken)));
                    continue;
                }
                var next = await InScopeAsync(d => d.NextDueAsync(stoppingToken));
                var wait = next is null ? MaxIdle : next.Value - DateTimeOffset.UtcNow;
                wait = wait < TimeSpan.FromMilliseconds(20) ? TimeSpan.FromMilliseconds(20) : wait > MaxIdle ? MaxIdle : wait;
                await _wake.WaitAsync(wait, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex) when (!database.IsAvailable)
            {
                logger.LogDebug("Webhook delivery paused: the database went away ({Reason})", ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Webhook delivery loop failed; retrying in 1 s");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task DeliverAsync(Guid id, CancellationToken cancellationToken)
    {
        try { await InScopeAsync(async d => { await d.DeliverAsync(id, _owner, cancellationToken); return 0; }); }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogError(ex, "Recording webhook delivery {Delivery} failed; its lease expires and it is tried again", id);
        }
    }

    private async Task<T> InScopeAsync<T>(Func<WebhookDispatcher, Task<T>> work)
    {
        await using var scope = scopes.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<WebhookDispatcher>());
    }

    /// <summary>The release page link in messages: ControlPlane:PublicUrl, else the address this server listens on.</summary>
    private string? ReleaseUrl(Guid deployment)
    {
        var root = options.Value.PublicUrl ?? server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return root is null ? null : $"{root.TrimEnd('/')}/deployments/{deployment}";
    }

    /// <summary>After a kill -9 and restart on this host, the dead process's leases would hold its deliveries back until they end.</summary>
    private async Task<bool> ReleaseDeadLocalLeasesAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Core.Data.ControlPlaneDbContext>();
        var owners = await db.Set<WebhookDelivery>().Where(d => d.LeaseOwner != null).Select(d => d.LeaseOwner!).Distinct().ToListAsync(cancellationToken);
        foreach (var owner in owners.Where(IsDeadLocalOwner))
        {
            logger.LogInformation("Releasing webhook delivery leases of {Owner}, a ControlPlane process on this host that is no longer running", owner);
            await db.Database.ExecuteSqlAsync($"UPDATE webhook_deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = {owner}", cancellationToken);
        }
        return true;
    }

    private bool IsDeadLocalOwner(string owner)
    {
        var parts = owner.Split('/');
        if (parts.Length != 3 || parts[0] != Environment.MachineName || owner == _owner || !int.TryParse(parts[1], out var pid)) return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            return p.StartTime.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture) != parts[2];
        }
        catch (ArgumentException) { return true; }
        catch (InvalidOperationException) { return true; }
    }
}
