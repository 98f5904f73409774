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
    ControlPlaneDbContext db, ProviderRegistry providers, CheckRunner checks, TrafficSwitch trafficSwitch,
    RuntimeHost host, TimeProvider time, ILogger<DeploymentReconciler> logger, Hooks.LifecycleSteps? lifecycle = null)
{
    private static readonly TimeSpan DeployPollFloor = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan WrongHostRetry = TimeSpan.FromSeconds(30);

    public async Task ReconcileAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        // A breach records the rollback intent and saves it; the next pass carries it out (as it would after a crash). A step
        // that moved the release on and is due at once (queued → deploy → verify → approval) is also taken in this pass
        // instead of a later claim: each step is still saved on its own, so a crash between two resumes after the last one.
        var held = System.Diagnostics.Stopwatch.StartNew();
        for (var pass = 0; pass < MaxPasses && (pass == 0 || held.Elapsed < ChainBudget); pass++)
        {
            if (!await ReconcileOnceAsync(deploymentId, cancellationToken)) return;
        }
    }

    private const int MaxPasses = 5;
    /// <summary>Chained steps stop here, well inside the worker's lease (a step may take as long again).</summary>
    private static readonly TimeSpan ChainBudget = TimeSpan.FromSeconds(10);

    /// <summary>One step; returns whether another step is due at once: a rollback intent, or the next step of a release that moved on.</summary>
    private async Task<bool> ReconcileOnceAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        Application? app = null;
        Deployment? d = null;
        DeploymentState? before = null;
        try
        {
            // Hook steps (Hooks/LifecycleSteps.cs) run before the step of the state they precede, outside the locks.
            if (lifecycle is not null && await lifecycle.RunDueAsync(deploymentId, cancellationToken)) return false;
            db.ChangeTracker.Clear();
            await using (var tx = await db.Database.BeginTransactionAsync(cancellationToken))
            {
                (app, d) = await LockAsync(deploymentId, cancellationToken);
                if (app is null || d is null) return false;
                if (d.State == Switching || d.RollbackPending)
                {
                    using var timing = Telemetry.ControlPlaneTelemetry.StartStep(app.Name, d.Version, d.RollbackPending ? "RollingBack" : "Switching");
                    // Traffic moves run under the locks just taken (application, then deployment) and are saved in the
                    // same transaction: nothing else can change either record between the flip and its record.
                    await MoveTrafficAsync(app, d, cancellationToken);
                    await db.SaveChangesAsync(cancellationToken);
                    await tx.CommitAsync(cancellationToken);
                    if (d is { State: RolledBack, RollbackRequestedAt: { } asked })
                        Telemetry.ControlPlaneTelemetry.Restored(app.Name, d.RollbackAutomatic, asked, time.GetUtcNow());
                    return false;
                }
                if (d.CleanupPending && d.State.IsTerminal())
                {
                    // Stopping an abandoned slot is decided, done and saved under the same locks: a later release's insert (its
                    // foreign key) and the housekeeping wait for the application row, so neither takes the slot in between.
                    await StepAsync(app, d, time.GetUtcNow(), cancellationToken);
                    await db.SaveChangesAsync(cancellationToken);
                    await tx.CommitAsync(cancellationToken);
                    return false;
                }
                // Slow steps (deploying, checks) must not hold the application: other writers use optimistic concurrency.
                await tx.CommitAsync(cancellationToken);
            }
            before = d.State;
            using (Telemetry.ControlPlaneTelemetry.StartStep(app.Name, d.Version, d.State.ToString()))
                await StepAsync(app, d, time.GetUtcNow(), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not DbUpdateException and not DomainException && d is not null && app is not null)
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
        return d is { RollbackPending: true } || (d is not null && before is { } was && d.State != was && d.NextRunAt <= time.GetUtcNow());
    }

    private static readonly TimeSpan FaultRetry = TimeSpan.FromSeconds(5);

    /// <summary>One lock order for every traffic move: the application row, then the deployment row; both read under the locks.</summary>
    private async Task<(Application?, Deployment?)> LockAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        var applicationId = await db.Deployments.Where(x => x.Id == deploymentId).Select(x => (Guid?)x.ApplicationId).SingleOrDefaultAsync(cancellationToken);
        if (applicationId is null) return (null, null);
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM applications WHERE id = {applicationId} FOR UPDATE", cancellationToken);
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM deployments WHERE id = {deploymentId} FOR UPDATE", cancellationToken);
        var app = await db.Applications.SingleAsync(a => a.Id == applicationId, cancellationToken);
        var d = await db.Deployments.SingleAsync(x => x.Id == deploymentId, cancellationToken);
        return (app, d);
    }

    private async Task MoveTrafficAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        if (host.RefusalFor(app, providers) is { } elsewhere)
        {
            if (d.RollbackPending)
            {
                d.RollbackRefused(elsewhere, time.GetUtcNow());
                return;
            }
            WaitForHost(app, d, elsewhere);
            return;
        }
        if (d.RollbackPending)
        {
            // A release requested meanwhile deploys onto the standby — the slot a rollback would go back to.
            var releasing = await db.Deployments.AsNoTracking().FirstOrDefaultAsync(x => x.ApplicationId == app.Id && x.Id != d.Id &&
                (x.State == Queued || x.State == Deploying || x.State == Verifying || x.State == AwaitingApproval || x.State == ReadyToSwitch), cancellationToken);
            if (releasing is not null)
            {
                d.RollbackRefused(TrafficSwitch.NoWarmSlotMessage(app, releasing), time.GetUtcNow());
                return;
            }
            var freeze = await db.ActiveFreezeAsync(app.Id, time.GetUtcNow(), cancellationToken);
            await trafficSwitch.RollbackAsync(app, d, freeze?.Window.Name, cancellationToken);
        }
        else await trafficSwitch.CompleteSwitchAsync(app, d, cancellationToken);
    }

    private void WaitForHost(Application app, Deployment d, string why)
    {
        logger.LogWarning("Not acting on {Application} {Version} ({State}): {Reason}", app.Name, d.Version, d.State, why);
        var now = time.GetUtcNow();
        d.NoteProgress($"waiting: {why}", now);
        d.RunAgainAt(now + WrongHostRetry);
    }

    private async Task StepAsync(Application app, Deployment d, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Slot processes and embedded routers live on the host that runs the application's runtime; never start them elsewhere.
        if (d.State is Deploying or Verifying or Monitoring || d.CleanupPending)
        {
            if (host.RefusalFor(app, providers) is { } elsewhere)
            {
                WaitForHost(app, d, elsewhere);
                return;
            }
        }
        switch (d.State)
        {
            case Queued when d.TargetSlot == app.LiveSlot:
                // Traffic moved back (a rollback) after this release was requested: its target now serves production.
                d.Fail($"{d.TargetSlot.Name()} became the live slot (a rollback) after this release was requested; start the release again", now);
                break;
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
        var results = await checks.RunAllAsync(app.Checks, new CheckTarget(endpoint, app.Name, d.TargetSlot, d.Version), cancellationToken);
        var now = time.GetUtcNow();
        db.CheckMeasurements.AddRange(CheckMeasurement.From(d, StepNames.Verify, results, now));
        var failed = results.FirstOrDefault(r => r.Failed);
        if (failed is null)
        {
            // No evidence either way is not a pass: a person looks at the reason and approves (or aborts).
            var hold = results.Where(r => r.Inconclusive).Select(r => $"check '{r.Name}' inconclusive: {r.Message}").ToList();
            d.Verified(results.Count == 0 ? "no checks configured" : string.Join("; ", results.Select(r => $"{r.Name}: {r.Message}")), now,
                hold.Count == 0 ? null : string.Join("; ", hold));
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
        if (app.Policy.AutoPromoteAfterSeconds is not { } seconds || d.AwaitingApprovalSince is not { } since || d.HoldReason is not null)
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

    /// <summary>
    /// Runs the checks against the live slot. Only time actually watched counts towards the window: the stretch since the
    /// previous tick counts up to one interval plus what the checks took, so time while ControlPlane was down does not.
    /// </summary>
    private async Task MonitorAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        var window = TimeSpan.FromSeconds(app.Policy.MonitoringWindowSeconds);
        var interval = TimeSpan.FromSeconds(app.Policy.MonitoringIntervalSeconds);
        var started = time.GetUtcNow();
        if (window <= TimeSpan.Zero)
        {
            d.Succeed("no monitoring window configured", started);
            app.ExtendRollbackWindow(d.HoldUntil(started, app.Policy));
            return;
        }
        var endpoint = providers.DeployerFor(app).EndpointOf(providers.DeployerBindingFor(app), d.TargetSlot);
        var results = await checks.RunAllAsync(app.Checks, CheckTargets.Monitoring(providers, app, d, endpoint), cancellationToken);
        var breach = results.FirstOrDefault(r => r.Failed);
        // Inconclusive is no breach and no evidence: watching goes on, and the step says which check could not judge.
        var unsure = string.Join("; ", results.Where(r => r.Inconclusive).Select(r => $"check '{r.Name}' inconclusive: {r.Message}"));
        var now = time.GetUtcNow();
        db.CheckMeasurements.AddRange(CheckMeasurement.From(d, StepNames.Monitor, results, now));
        d.NoteMonitoringEvidence(unsure.Length == 0 ? null : unsure, now);
        if (breach is null)
        {
            var watched = d.Watched(now, interval + (now - started) + TimeSpan.FromSeconds(2), window);
            // A person asked to finish early (ReleaseManagerControls): this tick's checks passed, so it ends here.
            if (d.PromotePending && watched < window.TotalSeconds)
            {
                d.FinishMonitoringEarly(watched, window, now);
                app.ExtendRollbackWindow(d.HoldUntil(now, app.Policy));
                return;
            }
            if (watched >= window.TotalSeconds)
            {
                var elapsed = (now - (d.Step(StepNames.Monitor).StartedAt ?? now)).TotalSeconds;
                var unwatched = elapsed - watched;
                d.Succeed($"no breach during {watched:0} s of monitoring" +
                          (unwatched >= 1 ? $" ({unwatched:0} s while ControlPlane was not watching did not count)" : "") +
                          (unsure.Length > 0 ? $"; at the end {unsure}" : ""), now);
                app.ExtendRollbackWindow(d.HoldUntil(now, app.Policy));
                return;
            }
            var left = window.TotalSeconds - watched;
            d.NoteProgress(unsure.Length == 0 ? $"checks passing; {watched:0} s watched, {left:0} s of monitoring left"
                : $"no breach, but {unsure}; still watching, {watched:0} s watched, {left:0} s of monitoring left", now);
            var next = now + interval;
            d.RunAgainAt(next < d.MonitoringUntil ? next : d.MonitoringUntil);
            return;
        }

        var reason = $"check '{breach.Name}' failed on {d.TargetSlot.Name()} ({d.Version}) during monitoring: {breach.Message}";
        if (!app.IsRollbackAvailable(now) || app.SlotStatusOf(app.StandbySlot).Version is null)
        {
            // No warm slot to go back to: keep watching and say so on the step; a person must act.
            var why = TrafficSwitch.NoWarmSlotMessage(app, releasing: null, d.FromVersion);
            logger.LogError("Automatic rollback of {Application} impossible: {Reason}", app.Name, why);
            d.NoteProgress($"BREACH: {reason}. Automatic rollback impossible: {why}", now);
            d.RunAgainAt(now + interval);
            return;
        }
        logger.LogWarning("Breach on {Application}: {Reason}; rolling back automatically", app.Name, reason);
        // Recorded intent first; the traffic move runs under the locks like every other (and resumes after a crash).
        d.RequestRollback(Actor.System, reason, automatic: true, now);
    }

    private async Task CleanUpAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
        if (!d.CleanupPending)
        {
            d.RunAgainAt(null);
            return;
        }
        // Only ever stop the slot this deployment abandoned — never the one that serves traffic, nor one a later release has
        // taken since (a clean-up retried after a conflict or a fault would otherwise stop that release's process).
        var taken = await db.Deployments.AnyAsync(x => x.ApplicationId == app.Id && x.TargetSlot == d.TargetSlot && x.CreatedAt > d.CreatedAt, cancellationToken);
        if (d.TargetSlot != app.LiveSlot && !taken)
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
