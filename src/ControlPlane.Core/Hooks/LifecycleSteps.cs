using ControlPlane.Core.Checks;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using static ControlPlane.Core.Deployments.DeploymentState;

namespace ControlPlane.Core.Hooks;

/// <summary>
/// Runs a release's hook steps at their points of the flow, as a reconcile step of its own (called first by
/// <see cref="DeploymentReconciler"/>, outside its locks: a hook may run for minutes):
/// preDeploy and expand while Queued (expand followed by the live version's checks), preSwitch in Switching before the
/// router is touched, postSwitch at the start of Monitoring, and contract then postHold once the release Succeeded, its
/// hold window ended and the previous slot was stopped. "Started" is saved before a hook runs; a step found started and
/// not finished was interrupted and runs again only when its hook says it is idempotent.
/// </summary>
public sealed class LifecycleSteps(
    ControlPlaneDbContext db, ProviderRegistry providers, CheckRunner checks, HookRunner runner, RuntimeHost host, TimeProvider time,
    KubernetesJobHook jobs, HookProcessRecords processes, ILogger<LifecycleSteps> logger)
{
    private static readonly TimeSpan HoldPoll = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan WrongHostRetry = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan LeaseRenewal = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan AbortPoll = TimeSpan.FromSeconds(1);

    /// <summary>Runs or waits on the release's due hook step; returns whether it did (the rest of this pass is then skipped).</summary>
    public async Task<bool> RunDueAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        // Most releases have no hooks: one cheap look before loading anything.
        if (!await db.Deployments.AnyAsync(x => x.Id == deploymentId && x.Lifecycle != null, cancellationToken)) return false;
        var d = await db.Deployments.SingleOrDefaultAsync(x => x.Id == deploymentId, cancellationToken);
        if (d?.Lifecycle is null || d.RollbackPending) return false;
        var app = await db.Applications.SingleAsync(a => a.Id == d.ApplicationId, cancellationToken);
        var now = time.GetUtcNow();

        if (d.State is Failed or Aborted or DeploymentState.RolledBack)
        {
            if (d.SkipHookSteps($"not run: the release {d.State.ToString().ToLowerInvariant()}", now)) await db.SaveChangesAsync(cancellationToken);
            return false;
        }
        if (d.HeldHook is not null)
        {
            if (d.NextRunAt is not null)
            {
                d.RunAgainAt(null);
                await db.SaveChangesAsync(cancellationToken);
            }
            return true; // a person decides (resolve, abort, roll back)
        }
        var due = DueStep(d, app);
        if (due is null) return false;
        var hook = d.Lifecycle.HookFor(due)!;

        if (d.State == Succeeded && await WaitForHoldEndAsync(app, d, due, now, cancellationToken)) return true;
        if (hook.Kind is HookKinds.Command or HookKinds.Sql && host.RefusalFor(app, providers) is { } elsewhere)
        {
            logger.LogWarning("Not running the {Step} hook of {Application} {Version}: {Reason}", due, app.Name, d.Version, elsewhere);
            d.NoteOnStep(due, $"waiting: {elsewhere}", now);
            d.RunAgainAt(now + WrongHostRetry);
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        var step = d.Step(due);
        if (step.State == StepState.Failed && RetryAt(step, now) is { } retryAt)
        {
            if (d.NextRunAt != retryAt)
            {
                d.RunAgainAt(retryAt);
                await db.SaveChangesAsync(cancellationToken);
            }
            return true;
        }
        HookContext Context() => new(d.Id, app.Name, d.Version, d.FromVersion, d.TargetSlot.Name(), due, step.Attempts, d.Lifecycle.Hooks?.SchemaDatabase,
            hook.Kind == HookKinds.KubernetesJob ? KubernetesJobTarget.Of(app.DeployerKind, app.DeployerSettingsJson) : null);
        var resumed = false;
        if (step.State == StepState.Running)
        {
            // A Job is found again by its name: the same attempt is waited for, never started a second time.
            var found = hook.Kind == HookKinds.KubernetesJob ? await jobs.ExistsAsync(Context(), cancellationToken) : false;
            if (found is null)
            {
                d.NoteOnStep(due, "interrupted; waiting for the Kubernetes API to tell whether its Job exists", now);
                d.RunAgainAt(now + WrongHostRetry);
                await db.SaveChangesAsync(cancellationToken);
                return true;
            }
            // A command's process group may have outlived the ControlPlane that started it: it ends before anything is decided.
            var leftover = hook.Kind == HookKinds.Command ? processes.KillLeftover(d.Id, due) : null;
            logger.LogWarning("The {Step} hook of {Application} {Version} was interrupted (attempt {Attempt}); idempotent: {Idempotent}; its Job found: {Found}",
                due, app.Name, d.Version, step.Attempts, hook.Idempotent, found);
            resumed = found == true;
            d.HookInterrupted(due, hook.Idempotent || resumed, now, resumed ? $"its Job {KubernetesJobHook.JobName(d.Id, due)} exists and is waited for" : leftover);
            if (!hook.Idempotent && !resumed)
            {
                await db.SaveChangesAsync(cancellationToken);
                return true;
            }
        }
        if (!resumed) d.StartHook(due, hook.Describe(), now);
        await db.SaveChangesAsync(cancellationToken); // on record before anything runs

        var context = Context();
        var result = await RunKeepingLeaseAsync(d.Id, d.State, hook, context, cancellationToken);
        if (due == HookSteps.Expand && result.Succeeded) result = await RecheckLiveAsync(app, result, cancellationToken);
        await RecordAsync(deploymentId, due, result, cancellationToken);
        return true;
    }

    /// <summary>The first hook step of the current state that has not succeeded yet (or null).</summary>
    private static string? DueStep(Deployment d, Application app)
    {
        IReadOnlyList<string> candidates = d.State switch
        {
            Queued when d.TargetSlot != app.LiveSlot => HookSteps.BeforeDeploy,
            Switching => [HookSteps.PreSwitch],
            Monitoring => [HookSteps.PostSwitch],
            Succeeded => HookSteps.AfterHold,
            _ => [],
        };
        // A failed step is retried only after the hold (contract, postHold); before, a failure already ended or rolled back the release.
        return candidates.FirstOrDefault(name => d.Steps.Any(s => s.Name == name &&
            (s.State is StepState.Pending or StepState.Running || s.State == StepState.Failed && d.State == Succeeded)));
    }

    /// <summary>
    /// Contract and postHold wait until no slot with the previous version is warm: the hold window is over and the runtime
    /// stopped the previous slot. Returns whether the step must keep waiting.
    /// </summary>
    private async Task<bool> WaitForHoldEndAsync(Application app, Deployment d, string due, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var gate = AfterHold(app, d, now);
        if (gate.Skip) d.SkipHookSteps(gate.Message!, now);
        else if (gate.Next is { } next)
        {
            d.NoteOnStep(due, gate.Message!, now);
            d.RunAgainAt(next);
        }
        else return false;
        await db.SaveChangesAsync(cancellationToken);
        return true;
    }

    /// <summary>When a succeeded release's contract/postHold may run: skipped, not yet (message, when to look again), or now.</summary>
    internal static (bool Skip, string? Message, DateTimeOffset? Next) AfterHold(Application app, Deployment d, DateTimeOffset now)
    {
        if (app.LiveSlot != d.TargetSlot || app.LiveVersion != d.Version)
            return (true, $"not run: {app.Name} no longer serves {d.Version}", null);
        var previous = app.SlotStatusOf(app.StandbySlot);
        if (app.RollbackAvailableUntil is { } until && until > now)
            return (false, $"waits for the end of the hold window ({until:u}): {d.FromVersion} is still warm on {app.StandbySlot.Name()} for instant rollback", until);
        if (previous.State != SlotRunState.Stopped)
            return (false, $"hold window over; waits for {app.StandbySlot.Name()} ({previous.Version}) to be stopped", now + HoldPoll);
        return (false, null, null);
    }

    internal static DateTimeOffset? RetryAt(DeploymentStep step, DateTimeOffset now)
    {
        var pause = TimeSpan.FromSeconds(Math.Min(900, 5 * Math.Pow(2, Math.Max(0, step.Attempts - 1))));
        var at = (step.FinishedAt ?? now) + pause;
        return now >= at ? null : at;
    }

    private async Task<HookResult> RunKeepingLeaseAsync(Guid deploymentId, DeploymentState startedIn, LifecycleHook hook, HookContext context,
        CancellationToken cancellationToken)
    {
        using var abort = new CancellationTokenSource();
        var run = runner.RunAsync(hook, context, cancellationToken, abort.Token);
        var renewed = time.GetUtcNow();
        // The worker's lease lasts 60 s; a longer hook keeps it, so no other replica takes the release and runs the hook twice.
        // Meanwhile a person (on any replica) may end the release: then the hook is stopped rather than left to finish.
        while (await Task.WhenAny(run, Task.Delay(AbortPoll, cancellationToken)) != run)
        {
            var state = await db.Deployments.AsNoTracking().Where(x => x.Id == deploymentId).Select(x => x.State).SingleAsync(cancellationToken);
            if (state != startedIn && state is Aborted or Failed or DeploymentState.RolledBack && !abort.IsCancellationRequested)
            {
                logger.LogWarning("Stopping the {Step} hook of {Application} {Version}: the release is now {State}", context.Step, context.Application, context.Version, state);
                await abort.CancelAsync();
            }
            if (time.GetUtcNow() - renewed < LeaseRenewal) continue;
            renewed = time.GetUtcNow();
            await db.Database.ExecuteSqlAsync(
                $"UPDATE deployments SET lease_expires_at = now() + interval '60 seconds' WHERE id = {deploymentId} AND lease_expires_at IS NOT NULL",
                cancellationToken);
        }
        return await run;
    }

    /// <summary>After an expand, the live version must still pass its own checks; otherwise the expand was not backward compatible.</summary>
    private async Task<HookResult> RecheckLiveAsync(Application app, HookResult expand, CancellationToken cancellationToken)
    {
        if (app.Checks.Count == 0) return expand with { Message = expand.Message + "; the live version has no checks to re-run" };
        var endpoint = providers.DeployerFor(app).EndpointOf(providers.DeployerBindingFor(app), app.LiveSlot);
        var results = await checks.RunAllAsync(app.Checks, new CheckTarget(endpoint, app.Name, app.LiveSlot, app.LiveVersion ?? ""), cancellationToken);
        // Only a definite failure proves the expand broke the live version; no evidence (inconclusive) is not proof.
        var failed = results.FirstOrDefault(r => r.Outcome == CheckOutcome.Failed);
        if (failed is null)
            return expand with { Message = $"{expand.Message}; live {app.LiveVersion} on {app.LiveSlot.Name()} still passes its checks" };
        logger.LogError("Expand of {Application} broke the live version {Version}: {Check}: {Reason}", app.Name, app.LiveVersion, failed.Name, failed.Message);
        return expand with
        {
            Succeeded = false,
            Message = $"the expand step was not backward compatible: after it ran, the live version {app.LiveVersion} failed its check " +
                      $"'{failed.Name}' ({failed.Message}). The expand is applied; the live version needs a fix or a contract-style repair now",
        };
    }

    /// <summary>Saves the result and its consequence; another writer (a person) may have saved meanwhile, so reload and re-apply.</summary>
    private async Task RecordAsync(Guid deploymentId, string name, HookResult result, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var d = await db.Deployments.SingleAsync(x => x.Id == deploymentId, cancellationToken);
            var app = await db.Applications.SingleAsync(a => a.Id == d.ApplicationId, cancellationToken);
            var now = time.GetUtcNow();
            var wasRunning = d.Step(name).State == StepState.Running;
            d.FinishHook(name, result, now);
            if (wasRunning) Consequence(app, d, name, result, now);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return;
            }
            catch (DbUpdateConcurrencyException) when (attempt < 5) { }
        }
    }

    private void Consequence(Application app, Deployment d, string name, HookResult result, DateTimeOffset now)
    {
        if (result.Succeeded)
        {
            d.RunAgainAt(now);
            return;
        }
        var reason = $"{name} hook failed: {result.Message}";
        switch (name)
        {
            case HookSteps.PreDeploy or HookSteps.Expand or HookSteps.PreSwitch when d.State is Queued or Switching:
                logger.LogWarning("Stopping {Application} {Version} before traffic moves: {Reason}", app.Name, d.Version, reason);
                d.FailBeforeTraffic(name == HookSteps.Expand && result.Message.StartsWith("the expand step", StringComparison.Ordinal) ? result.Message : reason, now);
                break;
            case HookSteps.PostSwitch when d.State == Monitoring:
                if (app.IsRollbackAvailable(now))
                {
                    logger.LogWarning("Rolling {Application} back: {Reason}", app.Name, reason);
                    d.RequestRollback(Actor.System, reason, automatic: true, now);
                }
                else
                {
                    d.NoteProgress($"{reason}. Automatic rollback impossible: {Execution.TrafficSwitch.NoWarmSlotMessage(app, releasing: null)}", now);
                    d.RunAgainAt(now);
                }
                break;
            default:
                // contract / postHold: shown, retried later; traffic untouched.
                logger.LogWarning("{Step} hook of {Application} {Version} failed; it will be retried: {Reason}", name, app.Name, d.Version, result.Message);
                d.RunAgainAt(now);
                break;
        }
    }
}
