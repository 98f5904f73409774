using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using ControlPlane.Web.Hosting;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Workers;

/// <summary>
/// At start-up brings every application back up from its recorded state (before the deployment worker resumes anything);
/// then every few seconds stops slots nothing needs and refreshes slot health.
/// </summary>
public sealed class ApplicationRuntimeWorker(
    IServiceScopeFactory scopes, RuntimeLeadership leadership, DatabaseSupervisor database, ILogger<ApplicationRuntimeWorker> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private readonly TaskCompletionSource _attached = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static readonly TimeSpan LeadershipWaitAtStart = TimeSpan.FromSeconds(3);

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

    /// <summary>Registration asks for a new application to be brought up without waiting for the next round.</summary>
    public async Task AttachAsync(Guid applicationId, CancellationToken cancellationToken)
    {
        if (!Attached.IsCompleted) return; // not the leader: the leader's next round picks it up
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().AttachAsync(applicationId, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogError(ex, "Could not bring application {ApplicationId} up", applicationId);
        }
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

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try { return await timer.WaitForNextTickAsync(stoppingToken); }
        catch (OperationCanceledException) { return false; }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await leadership.Acquired.WaitAsync(stoppingToken);
        if (!Attached.IsCompleted) await AttachAllAsync(stoppingToken); // took over from a previous leader
        using var timer = new PeriodicTimer(Interval);
        while (!stoppingToken.IsCancellationRequested && await WaitAsync(timer, stoppingToken))
        {
            // Without the database or the leadership nothing is decided; slots and routers keep serving meanwhile.
            if (!leadership.IsLeader || !database.IsAvailable) continue;
            try
            {
                // Leading again after a lost session: adopt what runs and reconcile it with the records, as at start-up.
                if (_attachedTerm != leadership.Terms) await AttachAllAsync(stoppingToken);
                await using var scope = scopes.CreateAsyncScope();
                var ids = await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Applications.Select(a => a.Id).ToListAsync(stoppingToken);
                var runtime = scope.ServiceProvider.GetRequiredService<ApplicationRuntime>();
                // Applications that could not be brought up (port taken, deployer down) are retried every round.
                if (_notAttached.Count > 0) _notAttached = await runtime.AttachAllAsync(_notAttached, stoppingToken);
                foreach (var id in ids.Except(_notAttached)) await runtime.HousekeepAsync(id, stoppingToken);
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
}
