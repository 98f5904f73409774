using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Hooks;
using static ControlPlane.Core.Deployments.DeploymentState;

namespace ControlPlane.Core.Deployments;

/// <summary>The hook steps of a release (lifecycle hooks and expand/contract): planned at request, each run recorded.</summary>
public sealed partial class Deployment
{
    /// <summary>The hooks and schema scripts this release runs, fixed when it was requested (null = none).</summary>
    public ReleaseLifecycle? Lifecycle { get; private set; }

    /// <summary>A hook step that was interrupted (ControlPlane stopped while it ran) and waits for a person; null when none.</summary>
    public string? HeldHook { get; private set; }

    /// <summary>Adds one step per hook into the timeline, each before the step it precedes (after-hold steps at the end).</summary>
    public void PlanLifecycle(ReleaseLifecycle lifecycle)
    {
        if (State != Queued) throw DomainException.Conflict("Hooks are planned when a release is requested.");
        var planned = lifecycle.Steps;
        if (planned.Count == 0) return;
        Lifecycle = lifecycle;
        var ordered = new List<DeploymentStep>();
        foreach (var step in Steps.OrderBy(s => s.Order))
        {
            ordered.AddRange(planned.Where(h => HookSteps.Before(h) == step.Name).Select(h => new DeploymentStep(h, 0)));
            ordered.Add(step);
        }
        ordered.AddRange(planned.Where(h => HookSteps.Before(h) == "").Select(h => new DeploymentStep(h, 0)));
        for (var i = 0; i < ordered.Count; i++) ordered[i].PlaceAt(i);
        Steps = ordered;
    }

    /// <summary>"Started" is recorded (and saved by the caller) before the hook runs, so a crash mid-hook is known afterwards.</summary>
    public void StartHook(string name, string what, DateTimeOffset now)
    {
        var step = Step(name);
        step.Attempts++;
        step.State = StepState.Running;
        step.StartedAt = now;
        step.FinishedAt = null;
        step.Output = null;
        step.ExitStatus = null;
        step.Message = $"running {what} (attempt {step.Attempts})";
        UpdatedAt = now;
        Record(Actor.System, "hook.started", now, State, State, null, Json(new { step = name, attempt = step.Attempts, hook = what }));
    }

    public void FinishHook(string name, HookResult result, DateTimeOffset now)
    {
        var step = Step(name);
        var output = HookRunner.Truncate(result.Output);
        if (step.State == StepState.Running)
        {
            step.State = result.Succeeded ? StepState.Succeeded : StepState.Failed;
            step.FinishedAt = now;
            step.Message = result.Message;
            step.Output = output;
            step.ExitStatus = result.ExitStatus;
        }
        else if (State.IsTerminal() && State != Succeeded && step.Output is null && step.Attempts > 0)
        {
            // The release ended (aborted) while the hook ran: the step already says so; what the hook did and how it was stopped joins it.
            step.Message = $"{step.Message} — {result.Message}";
            step.Output = output;
            step.ExitStatus = result.ExitStatus;
            UpdatedAt = now;
            Record(Actor.System, "hook.stopped", now, State, State, result.Message,
                Json(new { step = name, attempt = step.Attempts, exitStatus = result.ExitStatus, message = result.Message, output = output.Length > 2000 ? output[..2000] + "…" : output }));
            return;
        }
        UpdatedAt = now;
        // The audit event keeps the head of the output; the step keeps up to HookRunner.MaxOutput characters.
        Record(Actor.System, result.Succeeded ? "hook.succeeded" : "hook.failed", now, State, State, result.Succeeded ? null : result.Message,
            Json(new { step = name, attempt = step.Attempts, exitStatus = result.ExitStatus, message = result.Message, output = output.Length > 2000 ? output[..2000] + "…" : output }));
    }

    /// <summary>
    /// The step was started and never finished: ControlPlane stopped while it ran, so it may or may not have done its work.
    /// An idempotent hook runs again; any other waits for a person (<see cref="ResolveHeldHook"/>, abort, or rollback).
    /// </summary>
    /// <param name="found">What was found of the interrupted run (a leftover process killed, a Job waited for); null when nothing.</param>
    public void HookInterrupted(string name, bool idempotent, DateTimeOffset now, string? found = null)
    {
        var step = Step(name);
        var what = $"ControlPlane stopped while attempt {step.Attempts} (started {step.StartedAt:u}) ran; it may or may not have completed" +
                   (found is null ? "" : $"; {found}");
        Record(Actor.System, "hook.interrupted", now, State, State, what,
            Json(new { step = name, attempt = step.Attempts, rerun = idempotent, found }));
        if (idempotent) return;
        HeldHook = name;
        step.State = StepState.Failed;
        step.FinishedAt = now;
        step.Message = $"interrupted: {what}. Not run again because the hook is not declared idempotent — " +
                       "check what it did, then mark it done or run it again (or abort / roll back the release)";
        UpdatedAt = now;
        NextRunAt = null;
    }

    /// <summary>A person looked at an interrupted hook: run it again, or count it as done.</summary>
    public void ResolveHeldHook(Actor by, bool runAgain, string reason, DateTimeOffset now)
    {
        if (HeldHook is not { } name || State.IsTerminal() && State != Succeeded)
            throw DomainException.Conflict($"Deployment {Id} has no interrupted hook waiting for a decision.");
        var step = Step(name);
        if (runAgain) step.State = StepState.Pending;
        else
        {
            step.State = StepState.Succeeded;
            step.Message = $"marked done by {by.Name}: {reason}";
        }
        HeldHook = null;
        UpdatedAt = now;
        NextRunAt = now;
        Record(by, "hook.resolved", now, State, State, reason, Json(new { step = name, decision = runAgain ? "run-again" : "done", attempt = step.Attempts }));
    }

    /// <summary>A hook before the switch failed (or an expand broke the live version): the release ends before traffic moves.</summary>
    public void FailBeforeTraffic(string reason, DateTimeOffset now)
    {
        if (State.IsBeforeSwitch())
        {
            Fail(reason, now);
            return;
        }
        Expect(Switching);
        var running = Steps.FirstOrDefault(s => s.State == StepState.Running);
        if (running is not null) FinishStep(running.Name, StepState.Failed, reason, now);
        FinishStep(StepNames.Switch, StepState.Failed, "not attempted: " + reason, now);
        SkipRemainingSteps(now);
        CleanupPending = true;
        Finish(Failed, Actor.System, now, "deployment.failed", reason, reason + " — traffic never moved.");
    }

    /// <summary>Hook steps that never ran because the release ended otherwise (rolled back, failed, aborted).</summary>
    public bool SkipHookSteps(string why, DateTimeOffset now)
    {
        var pending = Steps.Where(s => HookSteps.IsHookStep(s.Name) && s.State == StepState.Pending).ToList();
        foreach (var step in pending)
        {
            step.State = StepState.Skipped;
            step.FinishedAt = now;
            step.Message = why;
        }
        return pending.Count > 0;
    }

    /// <summary>Note on a hook step that waits (for the hold window, for the runtime host); returns whether it changed.</summary>
    public bool NoteOnStep(string name, string message, DateTimeOffset now)
    {
        var step = Step(name);
        if (step.Message == message) return false;
        step.Message = message;
        UpdatedAt = now;
        return true;
    }

    /// <summary>An Admin let an expand script the guard refused run anyway; the reason and the refused statements go on the record.</summary>
    public void RecordDdlOverride(Actor by, string reason, IReadOnlyList<DdlFinding> findings, DateTimeOffset now) =>
        _pendingAuditEvents.Add(AuditEvent.Create(by, "schema.guard-overridden", now, ApplicationName, Id, State.ToString(), State.ToString(), reason,
            Json(new { version = Version, refused = findings.Select(f => f.ToString()) })));

    private void WakeForStepsAfterHold(DateTimeOffset now)
    {
        if (Steps.Any(s => HookSteps.AfterHold.Contains(s.Name) && s.State == StepState.Pending)) NextRunAt = now;
    }
}
