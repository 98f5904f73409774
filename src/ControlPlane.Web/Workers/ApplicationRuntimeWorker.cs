using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Workers;

/// <summary>
/// At start-up brings every application back up from its recorded state (before the deployment worker resumes anything);
/// then every few seconds stops slots nothing needs and refreshes slot health.
/// </summary>
public sealed class ApplicationRuntimeWorker(IServiceScopeFactory scopes, ILogger<ApplicationRuntimeWorker> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private readonly TaskCompletionSource _attached = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when start-up attachment has run (successfully or not, for each application).</summary>
    public Task Attached => _attached.Task;

    /// <summary>Start-up attachment runs inside StartAsync, so the host reports "started" only once the demo serves.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().AttachAllAsync(cancellationToken);
        }
        finally
        {
            _attached.TrySetResult();
        }
        await base.StartAsync(cancellationToken);
    }

    /// <summary>Registration asks for a new application to be brought up without waiting for the next round.</summary>
    public async Task AttachAsync(Guid applicationId, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<ApplicationRuntime>().AttachAsync(applicationId, cancellationToken);
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try { return await timer.WaitForNextTickAsync(stoppingToken); }
        catch (OperationCanceledException) { return false; }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        while (!stoppingToken.IsCancellationRequested && await WaitAsync(timer, stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var ids = await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Applications.Select(a => a.Id).ToListAsync(stoppingToken);
                var runtime = scope.ServiceProvider.GetRequiredService<ApplicationRuntime>();
                foreach (var id in ids) await runtime.HousekeepAsync(id, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex)
            {
                logger.LogError(ex, "Housekeeping round failed; trying again in {Interval}", Interval);
            }
        }
    }
}
