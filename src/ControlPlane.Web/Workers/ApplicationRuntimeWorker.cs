using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Workers;

/// <summary>
/// At start-up brings every application back up from its recorded state (before the deployment worker resumes anything);
/// then every few seconds stops slots nothing needs and refreshes slot health.
/// </summary>
public sealed class ApplicationRuntimeWorker(IServiceScopeFactory scopes, RuntimeLeadership leadership, ILogger<ApplicationRuntimeWorker> logger) : BackgroundService
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

    private async Task AttachAllAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            _notAttached = await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().AttachAllAsync(null, cancellationToken);
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
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var ids = await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Applications.Select(a => a.Id).ToListAsync(stoppingToken);
                var runtime = scope.ServiceProvider.GetRequiredService<ApplicationRuntime>();
                // Applications that could not be brought up (port taken, deployer down) are retried every round.
                if (_notAttached.Count > 0) _notAttached = await runtime.AttachAllAsync(_notAttached, stoppingToken);
                foreach (var id in ids.Except(_notAttached)) await runtime.HousekeepAsync(id, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex)
            {
                logger.LogError(ex, "Housekeeping round failed; trying again in {Interval}", Interval);
            }
        }
    }
}
