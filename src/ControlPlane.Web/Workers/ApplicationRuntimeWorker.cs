using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Notifications;
using ControlPlane.Web.Hosting;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Workers;

/// <summary>
/// At start-up brings every application back up from its recorded state (before the deployment worker resumes anything);
/// brings newly registered applications up as soon as their registration is heard (from any replica, through NOTIFY);
/// and every few seconds stops slots nothing needs and watches slot health — applications in parallel (bounded), so one
/// slow deployer never delays another application.
/// </summary>
public sealed class ApplicationRuntimeWorker(
    IServiceScopeFactory scopes, RuntimeLeadership leadership, DatabaseSupervisor database, ChangeNotifier notifier,
    ILogger<ApplicationRuntimeWorker> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LeadershipWaitAtStart = TimeSpan.FromSeconds(3);
    private const int Parallelism = 4;
    private readonly TaskCompletionSource _attached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Completes when this replica leads and start-up attachment has run (successfully or not, for each application).</summary>
    public Task Attached => _attached.Task;

    /// <summary>
    /// On the leader, start-up attachment runs inside StartAsync, so the host reports "started" only once the applications
    /// serve again. A follower starts at once and attaches if it ever becomes the leader.
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (await Task.WhenAny(leadership.Acquired, Task.Delay(LeadershipWaitAtStart, cancellationToken)) == leadership.Acquired)
            await AttachAllAsync(cancellationToken);
        else
            logger.LogInformation("Another replica runs the release runtime; this one serves the dashboard and API and stands by");
        await base.StartAsync(cancellationToken);
    }

    private IReadOnlyList<Guid> _notAttached = [];
    private int _attachedTerm;

    private async Task AttachAllAsync(CancellationToken cancellationToken)
    {
        try
        {
            var term = leadership.Terms;
            await using var scope = scopes.CreateAsyncScope();
            _notAttached = await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().AttachAllAsync(null, cancellationToken);
            _attachedTerm = term;
        }
        finally
        {
            _attached.TrySetResult();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await leadership.Acquired.WaitAsync(stoppingToken);
        if (!Attached.IsCompleted) await AttachAllAsync(stoppingToken); // took over from a previous leader
        // A registration (through any replica) is heard here: the application is brought up at once, not at the next round.
        using var subscription = notifier.Subscribe(n =>
        {
            if (n.Kind == ChangeNotice.ApplicationKind && _wake.CurrentCount == 0) _wake.Release();
        });
        var nextRound = DateTimeOffset.UtcNow + Interval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var wait = nextRound - DateTimeOffset.UtcNow;
                var woken = wait > TimeSpan.Zero && await _wake.WaitAsync(wait, stoppingToken);
                if (!woken) nextRound = DateTimeOffset.UtcNow + Interval;
                // Without the database or the leadership nothing is decided; slots and routers keep serving meanwhile.
                if (!leadership.IsLeader || !database.IsAvailable) continue;
                // Leading again after a lost session: adopt what runs and reconcile it with the records, as at start-up.
                if (_attachedTerm != leadership.Terms) await AttachAllAsync(stoppingToken);
                await AttachNewAsync(stoppingToken);
                if (woken) continue;
                await HousekeepAllAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex) when (!database.IsAvailable)
            {
                logger.LogDebug("Housekeeping round stopped: the database went away ({Reason})", ex.Message);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Housekeeping round failed; trying again in {Interval}", Interval);
            }
        }
    }

    /// <summary>Applications never brought up (just registered) and those that could not be (port taken, deployer down).</summary>
    private async Task AttachNewAsync(CancellationToken stoppingToken)
    {
        List<Guid> pending;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
            pending = await db.Applications.Where(a => a.PublicUrl == null && a.ArchivedAt == null).Select(a => a.Id).ToListAsync(stoppingToken);
        }
        var retry = _notAttached.Concat(pending).Distinct().ToList();
        if (retry.Count == 0) return;
        var failed = new System.Collections.Concurrent.ConcurrentBag<Guid>();
        await Parallel.ForEachAsync(retry, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = stoppingToken }, async (id, ct) =>
        {
            await using var scope = scopes.CreateAsyncScope();
            var result = await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().AttachAllAsync([id], ct);
            foreach (var f in result) failed.Add(f);
        });
        _notAttached = [.. failed];
    }

    private async Task HousekeepAllAsync(CancellationToken stoppingToken)
    {
        List<Guid> ids;
        await using (var scope = scopes.CreateAsyncScope())
            ids = await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Applications.Select(a => a.Id).ToListAsync(stoppingToken);
        await Parallel.ForEachAsync(ids.Except(_notAttached), new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = stoppingToken }, async (id, ct) =>
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().HousekeepAsync(id, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Housekeeping of application {ApplicationId} failed; trying again next round", id);
            }
        });
    }
}
