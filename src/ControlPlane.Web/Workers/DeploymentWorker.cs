using System.Diagnostics;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Notifications;
using ControlPlane.Web.Hosting;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Workers;

/// <summary>
/// The loop that drives deployments: claim one that is due (FOR UPDATE SKIP LOCKED, with a lease so two replicas never
/// run the same one), reconcile it in a fresh scope, release the lease. Up to <see cref="Parallelism"/> deployments of
/// different applications run at once — never two of one application — so a slow deployer or check on one application
/// never delays another application's switch or rollback. Wakes at once on any deployment NOTIFY, otherwise at the
/// earliest due time.
/// </summary>
public sealed class DeploymentWorker(
    IServiceScopeFactory scopes, ChangeNotifier notifier, ApplicationRuntimeWorker runtime, RuntimeLeadership leadership,
    DatabaseSupervisor database, ILogger<DeploymentWorker> logger) : BackgroundService
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan MaxIdle = TimeSpan.FromSeconds(5);
    private const int Parallelism = 4;
    private readonly SemaphoreSlim _slots = new(Parallelism);

    /// <summary>host/pid/start: lets a restarted process on the same host recognise leases of its dead predecessor.</summary>
    private readonly string _owner = $"{Environment.MachineName}/{Environment.ProcessId}/{Process.GetCurrentProcess().StartTime.Ticks}";
    private readonly SemaphoreSlim _wake = new(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var subscription = notifier.Subscribe(n =>
        {
            if (n.Kind == ChangeNotice.DeploymentKind && _wake.CurrentCount == 0) _wake.Release();
        });
        await runtime.Attached.WaitAsync(stoppingToken);
        await ReleaseDeadLocalLeasesAsync(stoppingToken);

        var running = new List<Task>();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Only the leader moves releases, and not while the database is away: slots and routers keep serving meanwhile
                // and the leases of the releases in flight expire into whichever replica leads next.
                if (!leadership.IsLeader || !database.IsAvailable)
                {
                    await _wake.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
                    continue;
                }
                await _slots.WaitAsync(stoppingToken);
                Guid? claimed;
                try { claimed = await ClaimAsync(stoppingToken); }
                catch { _slots.Release(); throw; }
                if (claimed is { } id)
                {
                    running.RemoveAll(t => t.IsCompleted);
                    running.Add(Task.Run(async () =>
                    {
                        try { await RunAsync(id, stoppingToken); }
                        finally
                        {
                            _slots.Release();
                            if (_wake.CurrentCount == 0) _wake.Release(); // its application may have more due work
                        }
                    }, CancellationToken.None));
                    continue; // there may be more due work
                }
                _slots.Release();
                await _wake.WaitAsync(await IdleDelayAsync(stoppingToken), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex) when (!database.IsAvailable)
            {
                // The database supervisor already said so, once; a stack trace per second would bury it.
                logger.LogDebug("Deployment worker paused: the database went away ({Reason})", ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Deployment worker loop failed; retrying in 1 s");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        await Task.WhenAll(running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task<Guid?> ClaimAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        // RETURNING sees the row as updated; next_run_at is untouched, so now() - next_run_at is how late the step is picked up.
        var claimed = await db.Database.SqlQuery<Claimed>($"""
            UPDATE deployments SET lease_owner = {_owner}, lease_expires_at = now() + {Lease}
            WHERE id = (SELECT d.id FROM deployments d
                        WHERE d.next_run_at <= now() AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
                          -- one deployment of an application at a time (a release and its predecessor's clean-up)
                          AND NOT EXISTS (SELECT 1 FROM deployments o WHERE o.application_id = d.application_id
                                          AND o.id <> d.id AND o.lease_expires_at >= now())
                        ORDER BY d.next_run_at LIMIT 1 FOR UPDATE OF d SKIP LOCKED)
            RETURNING id AS "Id", EXTRACT(EPOCH FROM now() - next_run_at)::float8 AS "LateSeconds"
            """).ToListAsync(cancellationToken);
        if (claimed.Count == 0) return null;
        Core.Telemetry.ControlPlaneTelemetry.PickedUp(claimed[0].LateSeconds);
        return claimed[0].Id;
    }

    private sealed record Claimed(Guid Id, double LateSeconds);

    private async Task RunAsync(Guid id, CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<DeploymentReconciler>().ReconcileAsync(id, cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            // A person acted on it while we worked: look again straight away with fresh state.
            await ExecuteAsync($"UPDATE deployments SET next_run_at = now() WHERE id = {id}", cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogError(ex, "Step of deployment {DeploymentId} failed unexpectedly; retrying in 5 s", id);
            await ExecuteAsync($"UPDATE deployments SET next_run_at = now() + interval '5 seconds' WHERE id = {id}", cancellationToken);
        }
        finally
        {
            await ExecuteAsync($"UPDATE deployments SET lease_owner = NULL, lease_expires_at = NULL WHERE id = {id} AND lease_owner = {_owner}", CancellationToken.None);
        }
    }

    private async Task<TimeSpan> IdleDelayAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var now = DateTimeOffset.UtcNow;
        // Deployments running right now (leased) are not waited for: their end wakes the loop.
        var next = await db.Deployments.Where(d => d.NextRunAt != null && (d.LeaseExpiresAt == null || d.LeaseExpiresAt < now))
            .MinAsync(d => d.NextRunAt, cancellationToken);
        if (next is null) return MaxIdle;
        var wait = next.Value - DateTimeOffset.UtcNow;
        return wait <= TimeSpan.Zero ? TimeSpan.FromMilliseconds(50) : wait < MaxIdle ? wait : MaxIdle;
    }

    /// <summary>After a kill -9 and restart, our predecessor's leases would block its deployments for a whole lease period.</summary>
    private async Task ReleaseDeadLocalLeasesAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var owners = await db.Deployments.Where(d => d.LeaseOwner != null).Select(d => d.LeaseOwner!).Distinct().ToListAsync(cancellationToken);
        foreach (var owner in owners.Where(IsDeadLocalOwner))
        {
            logger.LogInformation("Releasing leases of {Owner}, a ControlPlane process on this host that is no longer running", owner);
            await ExecuteAsync($"UPDATE deployments SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = {owner}", cancellationToken);
        }
    }

    private bool IsDeadLocalOwner(string owner)
    {
        var parts = owner.Split('/');
        if (parts.Length != 3 || parts[0] != Environment.MachineName || owner == _owner) return false;
        if (!int.TryParse(parts[1], out var pid)) return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            return p.StartTime.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture) != parts[2];
        }
        catch (ArgumentException) { return true; }
        catch (InvalidOperationException) { return true; }
    }

    private async Task ExecuteAsync(FormattableString sql, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Database.ExecuteSqlAsync(sql, cancellationToken);
    }
}
