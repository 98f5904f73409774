using ControlPlane.Core.Checks;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using static ControlPlane.Core.Deployments.DeploymentState;

namespace ControlPlane.Core.Execution;

/// <summary>
/// Moves one deployment one step along the release flow (Argo-style reconcile over stored state). Each step looks at what is
/// already done before acting, persists the result, and sets when to come back — so every step is safe to re-run after a
/// crash. Called by the worker with a lease on the deployment.
/// </summary>
public sealed class DeploymentReconciler(
    ControlPlaneDbContext db, ProviderRegistry providers, HttpCheckRunner checks, TrafficSwitch trafficSwitch,
    TimeProvider time, ILogger<DeploymentReconciler> logger)
{
    private static readonly TimeSpan DeployPollFloor = TimeSpan.FromMilliseconds(200);

    public async Task ReconcileAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        var d = await db.Deployments.SingleOrDefaultAsync(x => x.Id == deploymentId, cancellationToken);
        if (d is null) return;
        var app = await db.Applications.SingleAsync(a => a.Id == d.ApplicationId, cancellationToken);
        var now = time.GetUtcNow();
        try
        {
            await StepAsync(app, d, now, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not DbUpdateException and not DomainException)
        {
            // A router or deployer fault (API down, credentials) must show on the release, not only in the server log.
            logger.LogWarning(ex, "Step {State} of {Application} {Version} failed; retrying in {Delay}", d.State, app.Name, d.Version, FaultRetry);
            // Whatever the step changed but did not save is dropped; steps are idempotent, so the retry redoes it.
            db.ChangeTracker.Clear();
            d = await db.Deployments.SingleAsync(x => x.Id == deploymentId, cancellationToken);
            d.NoteProgress($"{d.State}: {ex.Message} — retrying in {FaultRetry.TotalSeconds:0} s", time.GetUtcNow());
            d.RunAgainAt(time.GetUtcNow() + FaultRetry);
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    private static readonly TimeSpan FaultRetry = TimeSpan.FromSeconds(5);

    private async Task StepAsync(Application app, Deployment d, DateTimeOffset now, CancellationToken cancellationToken)
    {
        switch (d.State)
        {
            case Queued:
                d.StartDeploying(now);
                // The standby is about to be replaced, so it can no longer serve as the rollback target.
                app.ExtendRollbackWindow(null);
                app.ObserveSlot(d.TargetSlot, SlotRunState.Starting, d.Version, false, $"deploying {d.Version}", now);
                break;
            case Deploying:
                await DeployAsync(app, d, cancellationToken);
                break;
            case Verifying:
                await VerifyAsync(app, d, cancellationToken);
                break;
            case AwaitingApproval:
                d.ExpireApprovals(now);
                WaitForApproval(app, d, now);
                break;
            case ReadyToSwitch:
                await ReadyToSwitchAsync(app, d, now, cancellationToken);
                break;
            case Switching:
                await db.SaveChangesAsync(cancellationToken);
                await trafficSwitch.CompleteSwitchAsync(d.Id, cancellationToken);
                break;
            case Monitoring:
                await MonitorAsync(app, d, cancellationToken);
                break;
            default:
                await CleanUpAsync(app, d, cancellationToken);
                break;
        }
    }

    private async Task DeployAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        var result = await providers.DeployerFor(app).DeployAsync(providers.DeployerBindingFor(app), d.TargetSlot, d.Version, cancellationToken);
        var now = time.GetUtcNow();
        switch (result.Status)
        {
            case Deployers.SlotDeployStatus.Pending:
                d.NoteProgress(result.Message, now);
                d.RunAgainAt(now + (result.RetryAfter < DeployPollFloor ? DeployPollFloor : result.RetryAfter));
                break;
            case Deployers.SlotDeployStatus.Ready:
                app.ObserveSlot(d.TargetSlot, SlotRunState.Running, d.Version, true, result.Message, now);
                d.Deployed(result.Message, now);
                break;
            default:
                logger.LogWarning("Deploying {Version} of {Application} to {Slot} failed: {Reason}", d.Version, app.Name, d.TargetSlot.Name(), result.Message);
                app.ObserveSlot(d.TargetSlot, SlotRunState.Failed, d.Version, false, result.Message, now);
                d.Fail($"Deploying {d.Version} to {d.TargetSlot.Name()} failed: {result.Message}", now);
                break;
        }
    }

    private async Task VerifyAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        var endpoint = providers.DeployerFor(app).EndpointOf(providers.DeployerBindingFor(app), d.TargetSlot);
        var results = await checks.RunAllAsync(app.Checks, endpoint, cancellationToken);
        var now = time.GetUtcNow();
        var failed = results.FirstOrDefault(r => !r.Passed);
        if (failed is null)
        {
            d.Verified(results.Count == 0 ? "no checks configured" : string.Join("; ", results.Select(r => $"{r.Name}: {r.Message}")), now);
            return;
        }
        logger.LogWarning("Verification of {Application} {Version} on {Slot} failed: {Check}: {Reason}", app.Name, d.Version, d.TargetSlot.Name(), failed.Name, failed.Message);
        app.ObserveSlot(d.TargetSlot, SlotRunState.Running, d.Version, false, $"check {failed.Name} failed: {failed.Message}", now);
        d.Fail($"Verification failed: check '{failed.Name}' on {d.TargetSlot.Name()}: {failed.Message}", now);
    }

    private static void WaitForApproval(Application app, Deployment d, DateTimeOffset now)
    {
        // Looked at again when an approval lapses, so the shown count stays true.
        var lapse = d.NextApprovalExpiry(now);
        if (app.Policy.AutoPromoteAfterSeconds is not { } seconds || d.AwaitingApprovalSince is not { } since)
        {
            d.RunAgainAt(lapse); // otherwise an approval (or abort) wakes it
            return;
        }
        var due = since + TimeSpan.FromSeconds(seconds);
        if (now >= due) d.AutoPromote(now);
        else d.RunAgainAt(lapse < due ? lapse : due);
    }

    /// <summary>Back to AwaitingApproval when an approval lapsed; with switch-on-approval, switch unless a freeze holds it.</summary>
    private async Task ReadyToSwitchAsync(Application app, Deployment d, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (d.ExpireApprovals(now))
        {
            logger.LogInformation("Not switching {Application} {Version}: an approval expired; back to AwaitingApproval", app.Name, d.Version);
            return;
        }
        if (!app.Policy.SwitchOnApproval)
        {
            d.RunAgainAt(d.NextApprovalExpiry(now)); // a person switches; until then watch for lapsing approvals
            return;
        }
        var freeze = await db.ActiveFreezeAsync(app.Id, now, cancellationToken);
        if (freeze is null)
        {
            d.BeginSwitch(Actor.System, now);
            return;
        }
        logger.LogInformation("Not switching {Application} {Version}: frozen by {Window} until {End}", app.Name, d.Version, freeze.Window.Name, freeze.End);
        d.WaitForFreeze($"waiting for the freeze '{freeze.Window.Name}' to end ({freeze.EndText}) before switching", now);
        // Looked at again at the end, and at least every 30 s in case the window is deleted or an approval lapses.
        var next = now + TimeSpan.FromSeconds(30);
        if (freeze.End < next) next = freeze.End;
        if (d.NextApprovalExpiry(now) is { } lapse && lapse < next) next = lapse;
        d.RunAgainAt(next);
    }

    private async Task MonitorAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (now >= d.MonitoringUntil)
        {
            d.Succeed($"no breach during {app.Policy.MonitoringWindowSeconds} s of monitoring", now);
            app.ExtendRollbackWindow(now + TimeSpan.FromSeconds(app.Policy.HoldWindowSeconds));
            return;
        }
        var endpoint = providers.DeployerFor(app).EndpointOf(providers.DeployerBindingFor(app), d.TargetSlot);
        var results = await checks.RunAllAsync(app.Checks, endpoint, cancellationToken);
        var breach = results.FirstOrDefault(r => !r.Passed);
        now = time.GetUtcNow();
        if (breach is null)
        {
            var left = d.MonitoringUntil!.Value - now;
            d.NoteProgress($"checks passing; {Math.Max(0, left.TotalSeconds):0} s of monitoring left", now);
            var next = now + TimeSpan.FromSeconds(app.Policy.MonitoringIntervalSeconds);
            d.RunAgainAt(next < d.MonitoringUntil ? next : d.MonitoringUntil);
            return;
        }

        var reason = $"check '{breach.Name}' failed on {d.TargetSlot.Name()} ({d.Version}) during monitoring: {breach.Message}";
        logger.LogWarning("Breach on {Application}: {Reason}; rolling back automatically", app.Name, reason);
        await db.SaveChangesAsync(cancellationToken);
        try
        {
            await trafficSwitch.RollbackAsync(app.Name, Actor.System, reason, d.Id, cancellationToken);
        }
        catch (DomainException ex)
        {
            // No warm slot to go back to: keep watching and say so on the step; a person must act.
            logger.LogError("Automatic rollback of {Application} impossible: {Reason}", app.Name, ex.Message);
            await db.Entry(d).ReloadAsync(cancellationToken);
            d.NoteProgress($"BREACH: {reason}. Automatic rollback impossible: {ex.Message}", time.GetUtcNow());
            d.RunAgainAt(time.GetUtcNow() + TimeSpan.FromSeconds(app.Policy.MonitoringIntervalSeconds));
        }
    }

    private async Task CleanUpAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        if (!d.CleanupPending)
        {
            d.RunAgainAt(null);
            return;
        }
        // Only ever stop the slot this deployment abandoned — never the one that serves traffic.
        if (d.TargetSlot != app.LiveSlot)
        {
            await providers.DeployerFor(app).StopAsync(providers.DeployerBindingFor(app), d.TargetSlot, cancellationToken);
            var now = time.GetUtcNow();
            var why = $"{d.Version} {d.State.ToString().ToLowerInvariant()}";
            app.ObserveSlot(d.TargetSlot, SlotRunState.Stopped, app.SlotStatusOf(d.TargetSlot).Version, false, $"stopped: {why}", now);
            app.Record(Actor.System, "slot.stopped", now, d.Id, $"{d.TargetSlot.Name()} {d.Version}", $"{d.TargetSlot.Name()} stopped", why);
        }
        d.CleanedUp();
        d.RunAgainAt(null);
    }
}
