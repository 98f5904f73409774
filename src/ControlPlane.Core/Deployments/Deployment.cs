using System.Text.Json;
using ControlPlane.Core.Audit;
using static ControlPlane.Core.Deployments.DeploymentState;

namespace ControlPlane.Core.Deployments;

/// <summary>
/// One release attempt: moving an application from its live version to a new one on the standby slot.
/// The deployment owns its transitions (PRODUCT.md §3); each one checks the state, records an audit event, and
/// sets when the worker should look at it next. Callers never set <see cref="State"/>.
/// </summary>
public sealed partial class Deployment : IRecordsAuditEvents
{
    private readonly List<AuditEvent> _pendingAuditEvents = [];

    private Deployment() { }

    public Guid Id { get; private set; }
    public Guid ApplicationId { get; private set; }
    public string ApplicationName { get; private set; } = "";
    public string Version { get; private set; } = "";
    public string? FromVersion { get; private set; }
    public Slot FromSlot { get; private set; }
    public Slot TargetSlot { get; private set; }
    public DeploymentState State { get; private set; }
    public string RequestedBy { get; private set; } = "";
    public string? Reason { get; private set; }
    public int RequiredApprovals { get; private set; }
    public bool AllowSelfApproval { get; private set; }

    /// <summary>How long an approval counts (null = until the release ends); fixed when the release is requested.</summary>
    public int? ApprovalValidForSeconds { get; private set; }

    /// <summary>Reached ReadyToSwitch by the policy's auto-promotion, so no approval is relied on.</summary>
    public bool AutoPromoted { get; private set; }

    /// <summary>Why the checks before the switch were inconclusive; the release waits for a person (no auto-promotion) while set.</summary>
    public string? HoldReason { get; private set; }

    /// <summary>A person rolled this release back past something that would otherwise stop a traffic move (a freeze in force).</summary>
    public bool BreakGlassRollback { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset UpdatedAt { get; private set; }
    public DateTimeOffset? FinishedAt { get; private set; }
    public DateTimeOffset? AwaitingApprovalSince { get; private set; }
    public DateTimeOffset? MonitoringUntil { get; private set; }

    /// <summary>Monitoring time actually watched (checks ran and passed); time while ControlPlane was down is not in it.</summary>
    public double MonitoredSeconds { get; private set; }

    /// <summary>When monitoring last ran its checks (the start of the next watched stretch).</summary>
    public DateTimeOffset? MonitoredAt { get; private set; }

    /// <summary>
    /// Recorded intent to roll this release back (Argo's <c>status.abort</c>): written by whoever asks, carried out by the
    /// runtime leader's reconcile loop. Null when none was asked for.
    /// </summary>
    public Guid? RollbackRequestId { get; private set; }
    public string? RollbackRequestedBy { get; private set; }
    public ActorKind RollbackRequestedByKind { get; private set; }
    public string? RollbackReason { get; private set; }
    public DateTimeOffset? RollbackRequestedAt { get; private set; }
    public bool RollbackAutomatic { get; private set; }

    /// <summary>Why the last requested rollback was not carried out (null while pending or after it happened).</summary>
    public string? RollbackRefusal { get; private set; }

    /// <summary>A rollback was asked for and the reconcile loop has not yet carried it out or refused it.</summary>
    public bool RollbackPending => RollbackRequestId is not null && RollbackRefusal is null && State is Monitoring or Succeeded;

    /// <summary>Why the deployment ended the way it did, in words for the operator.</summary>
    public string? Outcome { get; private set; }

    /// <summary>The standby slot still runs the abandoned version and should be stopped by the worker.</summary>
    public bool CleanupPending { get; private set; }

    /// <summary>When the worker should run this deployment's next step; null while it waits for a person.</summary>
    public DateTimeOffset? NextRunAt { get; private set; }
    public string? LeaseOwner { get; private set; }
    public DateTimeOffset? LeaseExpiresAt { get; private set; }

    public uint RowVersion { get; private set; }

    public List<DeploymentStep> Steps { get; private set; } = [];
    public List<Approval> Approvals { get; private set; } = [];

    public IReadOnlyList<AuditEvent> PendingAuditEvents => _pendingAuditEvents;
    public void ClearPendingAuditEvents() => _pendingAuditEvents.Clear();

    public DeploymentStep Step(string name) => Steps.Single(s => s.Name == name);

    public static Deployment Request(Application app, string version, Actor by, string? reason, DateTimeOffset now)
    {
        var d = new Deployment
        {
            Id = Guid.CreateVersion7(now),
            ApplicationId = app.Id,
            ApplicationName = app.Name,
            Version = version,
            FromVersion = app.LiveVersion,
            FromSlot = app.LiveSlot,
            TargetSlot = app.StandbySlot,
            State = Queued,
            RequestedBy = by.Name,
            Reason = reason,
            RequiredApprovals = app.Policy.RequiredApprovals,
            AllowSelfApproval = app.Policy.AllowSelfApproval,
            ApprovalValidForSeconds = app.Policy.ApprovalValidForSeconds,
            CreatedAt = now,
            UpdatedAt = now,
            NextRunAt = now,
            Steps = [.. StepNames.All.Select((n, i) => new DeploymentStep(n, i))],
        };
        d.Record(by, "deployment.requested", now, null, Queued, reason,
            JsonSerializer.Serialize(new { version, fromVersion = d.FromVersion, targetSlot = d.TargetSlot.Name() }));
        return d;
    }

    // ---- Worker-driven transitions -------------------------------------------------------------------

    public void StartDeploying(DateTimeOffset now)
    {
        Expect(Queued);
        StartStep(StepNames.Deploy, now, $"deploying {Version} to {TargetSlot.Name()}");
        MoveTo(Deploying, Actor.System, now, "deployment.deploying");
    }

    /// <summary>Progress note on the running step (not audited: it is not a state change). Returns whether it changed.</summary>
    public bool NoteProgress(string message, DateTimeOffset now)
    {
        var step = Steps.FirstOrDefault(s => s.State == StepState.Running);
        if (step is null || step.Message == message) return false;
        step.Message = message;
        UpdatedAt = now;
        return true;
    }

    public void Deployed(string message, DateTimeOffset now)
    {
        Expect(Deploying);
        FinishStep(StepNames.Deploy, StepState.Succeeded, message, now);
        StartStep(StepNames.Verify, now, "running checks against the standby slot");
        MoveTo(Verifying, Actor.System, now, "deployment.verifying", details: Json(new { step = StepNames.Deploy, message }));
    }

    /// <param name="hold">Why the evidence was inconclusive: the release then waits for a person even when the policy needs no approval.</param>
    public void Verified(string message, DateTimeOffset now, string? hold = null)
    {
        Expect(Verifying);
        FinishStep(StepNames.Verify, StepState.Succeeded, message, now);
        if (hold is not null)
        {
            HoldReason = hold;
            StartStep(StepNames.Approval, now, $"held for a person: {hold}");
            AwaitingApprovalSince = now;
            MoveTo(AwaitingApproval, Actor.System, now, "deployment.awaiting-approval", $"checks inconclusive: {hold}", Json(new { step = StepNames.Verify, message, inconclusive = hold }));
            NextRunAt = null;
            return;
        }
        if (RequiredApprovals == 0)
        {
            FinishStep(StepNames.Approval, StepState.Skipped, "the policy requires no approval", now);
            MoveTo(ReadyToSwitch, Actor.System, now, "deployment.ready-to-switch", details: Json(new { step = StepNames.Verify, message }));
            return;
        }
        StartStep(StepNames.Approval, now, $"waiting for {RequiredApprovals} approval(s)");
        AwaitingApprovalSince = now;
        MoveTo(AwaitingApproval, Actor.System, now, "deployment.awaiting-approval", details: Json(new { step = StepNames.Verify, message }));
        NextRunAt = null;
    }

    /// <summary>A step failed before the router moved: traffic never left the live slot.</summary>
    public void Fail(string reason, DateTimeOffset now)
    {
        if (!State.IsBeforeSwitch()) throw DomainException.Conflict($"Cannot fail a deployment in state {State} this way.");
        var running = Steps.FirstOrDefault(s => s.State == StepState.Running);
        if (running is not null) FinishStep(running.Name, StepState.Failed, reason, now);
        SkipRemainingSteps(now);
        CleanupPending = true;
        Finish(Failed, Actor.System, now, "deployment.failed", reason, reason + " — traffic never moved.");
    }

    // ---- Person-driven transitions ------------------------------------------------------------------

    public void Approve(Actor by, string? comment, DateTimeOffset now)
    {
        if (State != AwaitingApproval)
            throw DomainException.Conflict($"Deployment {Id} is {State}; approvals are only accepted while it is AwaitingApproval.");
        // Names compare case-insensitively: "Alice" and "alice" are one person for the two-person rule.
        if (!AllowSelfApproval && SamePerson(by.Name, RequestedBy))
            throw DomainException.Forbidden($"{by.Name} requested this release and the policy forbids approving one's own release; another person must approve.");
        var existing = Approvals.FirstOrDefault(a => SamePerson(a.By, by.Name));
        if (existing is not null && existing.IsValidAt(now))
            throw DomainException.Conflict($"{by.Name} has already approved this release; approvals must come from distinct people.");

        var expiresAt = ApprovalValidForSeconds is { } seconds ? now + TimeSpan.FromSeconds(seconds) : (DateTimeOffset?)null;
        // An expired approval is renewed in place: it is still one person.
        if (existing is not null) existing.Renew(now, expiresAt, comment);
        else Approvals.Add(new Approval(by.Name, now, comment, expiresAt));
        var valid = ValidApprovals(now).Count;
        Record(by, "deployment.approved", now, State, State, comment,
            Json(expiresAt is null
                ? new { approvals = valid, required = RequiredApprovals }
                : (object)new { approvals = valid, required = RequiredApprovals, expiresAt, renewed = existing is not null }));
        if (valid < RequiredApprovals)
        {
            NoteProgress($"{valid} of {RequiredApprovals} approvals", now);
            // With expiring approvals the worker looks again when the first one lapses, to keep the count honest.
            if (NextApprovalExpiry(now) is { } lapse && (NextRunAt is null || lapse < NextRunAt)) NextRunAt = lapse;
            return;
        }
        FinishStep(StepNames.Approval, StepState.Succeeded, $"approved by {string.Join(", ", ValidApprovals(now).Select(a => a.By))}", now);
        MoveTo(ReadyToSwitch, by, now, "deployment.ready-to-switch");
    }

    /// <summary>Approvals that still count at <paramref name="now"/> (expired ones stay on record but no longer count).</summary>
    public IReadOnlyList<Approval> ValidApprovals(DateTimeOffset now) => [.. Approvals.Where(a => a.IsValidAt(now)).OrderBy(a => a.At)];

    /// <summary>When the next still-valid approval lapses (null when none expires).</summary>
    public DateTimeOffset? NextApprovalExpiry(DateTimeOffset now) =>
        Approvals.Where(a => a.IsValidAt(now) && a.ExpiresAt is not null).Select(a => a.ExpiresAt).Min();

    /// <summary>Whether the switch may rely on the approvals at <paramref name="now"/>.</summary>
    public bool HasEnoughValidApprovals(DateTimeOffset now) =>
        RequiredApprovals == 0 || AutoPromoted || ValidApprovals(now).Count >= RequiredApprovals;

    /// <summary>
    /// Takes stock of approvals that lapsed. A release that is ReadyToSwitch on approvals it no longer has goes back to
    /// AwaitingApproval (audited <c>deployment.approval-expired</c>). Returns whether anything changed.
    /// </summary>
    public bool ExpireApprovals(DateTimeOffset now)
    {
        if (State is not (AwaitingApproval or ReadyToSwitch) || ApprovalValidForSeconds is null) return false;
        var valid = ValidApprovals(now).Count;
        if (State == AwaitingApproval)
            return NoteProgress($"{valid} of {RequiredApprovals} approvals", now);
        if (HasEnoughValidApprovals(now)) return false;

        var expired = Approvals.Where(a => !a.IsValidAt(now)).OrderBy(a => a.At).ToList();
        var names = string.Join(", ", expired.Select(a => $"{a.By} (expired {a.ExpiresAt:u})"));
        StartStep(StepNames.Approval, now, $"approval of {names} expired; {valid} of {RequiredApprovals} valid approvals");
        Step(StepNames.Switch).Message = null;
        AwaitingApprovalSince = now;
        MoveTo(AwaitingApproval, Actor.System, now, "deployment.approval-expired",
            $"approval of {string.Join(", ", expired.Select(a => a.By))} expired before the switch",
            Json(new { expired = expired.Select(a => new { by = a.By, at = a.At, expiresAt = a.ExpiresAt }), valid, required = RequiredApprovals }));
        return true;
    }

    /// <summary>The policy's auto-promotion delay elapsed without enough approvals.</summary>
    public void AutoPromote(DateTimeOffset now)
    {
        Expect(AwaitingApproval);
        FinishStep(StepNames.Approval, StepState.Succeeded, "auto-promoted by policy", now);
        AutoPromoted = true;
        MoveTo(ReadyToSwitch, Actor.System, now, "deployment.auto-promoted");
    }

    /// <summary>
    /// Commits the intent to switch. Persisted before the router is touched, so a crash mid-switch resumes the
    /// (idempotent) switch and its verification instead of forgetting it.
    /// </summary>
    public void BeginSwitch(Actor by, DateTimeOffset now)
    {
        if (State != ReadyToSwitch)
            throw DomainException.Conflict($"Deployment {Id} is {State}; the switch is only possible from ReadyToSwitch.");
        // Checked again at the moment of the switch: an approval may have lapsed since the release became ready.
        if (!HasEnoughValidApprovals(now))
            throw DomainException.Conflict($"Deployment {Id} no longer has {RequiredApprovals} valid approval(s); it must be approved again before the switch.");
        StartStep(StepNames.Switch, now, $"switching traffic {FromSlot.Name()} → {TargetSlot.Name()}");
        MoveTo(Switching, by, now, "deployment.switching");
    }

    public void Abort(Actor by, string reason, DateTimeOffset now)
    {
        if (!State.IsBeforeSwitch())
            throw DomainException.Conflict(State switch
            {
                Switching => "The switch is in progress and cannot be aborted; wait for it to finish, then roll back.",
                Monitoring => "Traffic has already moved to the new version; use rollback instead of abort.",
                _ => $"Deployment {Id} has already ended ({State}).",
            });
        var running = Steps.FirstOrDefault(s => s.State == StepState.Running);
        if (running is not null) FinishStep(running.Name, StepState.Failed, $"aborted by {by.Name}: {reason}", now);
        SkipRemainingSteps(now);
        CleanupPending = true;
        Finish(Aborted, by, now, "deployment.aborted", reason, $"Aborted by {by.Name}: {reason}");
    }

    /// <summary>An Admin acted despite a freeze (starting this release or switching it); the reason goes on the record.</summary>
    public void RecordFreezeOverride(Actor by, string reason, string action, string window, Guid windowId, DateTimeOffset until, DateTimeOffset now) =>
        _pendingAuditEvents.Add(AuditEvent.Create(by, "freeze.overridden", now, ApplicationName, Id, State.ToString(), State.ToString(), reason,
            Json(new { action, window, windowId, until, version = Version })));

    /// <summary>The worker may not switch yet because of a freeze: say so on the switch step. Returns whether it changed.</summary>
    public bool WaitForFreeze(string message, DateTimeOffset now)
    {
        var step = Step(StepNames.Switch);
        if (State != ReadyToSwitch || step.Message == message) return false;
        step.Message = message;
        UpdatedAt = now;
        return true;
    }

    // ---- After the router moved ---------------------------------------------------------------------

    public void Switched(string message, DateTimeOffset now, TimeSpan monitoringWindow)
    {
        Expect(Switching);
        FinishStep(StepNames.Switch, StepState.Succeeded, message, now);
        StartStep(StepNames.Monitor, now, $"watching {TargetSlot.Name()} for {monitoringWindow.TotalSeconds:0} s");
        MonitoringUntil = now + monitoringWindow;
        MonitoredSeconds = 0;
        MonitoredAt = now;
        MoveTo(Monitoring, Actor.System, now, "deployment.monitoring", details: Json(new { step = StepNames.Switch, message }));
    }

    /// <summary>The switch or its data-plane verification failed; the router has been put back on the old slot.</summary>
    public void SwitchFailed(string reason, DateTimeOffset now)
    {
        Expect(Switching);
        FinishStep(StepNames.Switch, StepState.Failed, reason, now);
        SkipRemainingSteps(now);
        CleanupPending = true;
        Finish(Failed, Actor.System, now, "deployment.switch-failed", reason, $"Switch failed, router reverted to {FromSlot.Name()}: {reason}");
    }

    public void Succeed(string message, DateTimeOffset now)
    {
        Expect(Monitoring);
        FinishStep(StepNames.Monitor, StepState.Succeeded, message, now);
        Finish(Succeeded, Actor.System, now, "deployment.succeeded", null, message);
        WakeForStepsAfterHold(now); // contract / postHold hooks (Hooks/Deployment.Hooks.cs)
    }

    /// <summary>Traffic went back to the previous slot (automatic breach or a person's rollback).</summary>
    /// <param name="bypassed">What a person's rollback went past (a freeze in force): only then is it break-glass.</param>
    public void RolledBack(Actor by, string reason, bool automatic, DateTimeOffset now, string? bypassed = null)
    {
        if (State is not (Monitoring or Succeeded))
            throw DomainException.Conflict($"Deployment {Id} is {State}; only a live release can be rolled back.");
        // A person ending monitoring is not a failed check: the step says who ended it, not "Failed".
        if (State == Monitoring)
            FinishStep(StepNames.Monitor, automatic ? StepState.Failed : StepState.Skipped, automatic ? reason : $"ended by {by.Name}'s rollback: {reason}", now);
        CleanupPending = true;
        BreakGlassRollback = !automatic && bypassed is not null;
        Finish(DeploymentState.RolledBack, by, now, automatic ? "deployment.auto-rolled-back" : "deployment.rolled-back", reason,
            $"{(automatic ? "Automatically rolled back" : $"Rolled back by {by.Name}{(BreakGlassRollback ? $" (break-glass: {bypassed})" : "")}")}: {reason}",
            Json(new { version = Version, targetSlot = TargetSlot.Name(), automatic, breakGlass = BreakGlassRollback, bypassed }));
    }

    /// <summary>
    /// Records the intent to roll back; the reconcile loop carries it out (or refuses it with a reason). Saved — and audited —
    /// in the same transaction as the request, so any replica may accept it and a crash before the flip only delays it.
    /// </summary>
    public Guid RequestRollback(Actor by, string reason, bool automatic, DateTimeOffset now)
    {
        if (State is not (Monitoring or Succeeded))
            throw DomainException.Conflict($"Deployment {Id} is {State}; only a live release can be rolled back.");
        if (RollbackPending)
            throw DomainException.Conflict($"A rollback of {ApplicationName} requested by {RollbackRequestedBy} at {RollbackRequestedAt:u} is already under way.");
        RollbackRequestId = Guid.CreateVersion7(now);
        RollbackRequestedBy = by.Name;
        RollbackRequestedByKind = by.Kind;
        RollbackReason = reason;
        RollbackRequestedAt = now;
        RollbackAutomatic = automatic;
        RollbackRefusal = null;
        NextRunAt = now;
        Record(by, "rollback.requested", now, State, State, reason,
            Json(new { requestId = RollbackRequestId, version = Version, targetSlot = TargetSlot.Name(), automatic }));
        return RollbackRequestId.Value;
    }

    /// <summary>Who asked for the pending rollback (the person is recorded on what it does, not the leader that did it).</summary>
    public Actor RollbackRequester => new(RollbackRequestedBy ?? "system", RollbackRequestedBy is null ? ActorKind.System : RollbackRequestedByKind);

    /// <summary>The reconcile loop could not carry the rollback out; traffic stayed where it was.</summary>
    public void RollbackRefused(string why, DateTimeOffset now)
    {
        if (!RollbackPending) return;
        RollbackRefusal = why;
        UpdatedAt = now;
        NextRunAt = State == Monitoring ? now : NextRunAt;
        Record(Actor.System, "rollback.refused", now, State, State, why, Json(new { requestId = RollbackRequestId, requestedBy = RollbackRequestedBy }));
    }

    /// <summary>
    /// A monitoring tick whose checks passed: the time since the previous tick counts as watched, at most
    /// <paramref name="maxStretch"/> (a longer gap means ControlPlane was not watching). Returns the watched seconds.
    /// </summary>
    public double Watched(DateTimeOffset now, TimeSpan maxStretch, TimeSpan window)
    {
        Expect(Monitoring);
        if (MonitoredAt is { } last && now > last)
            MonitoredSeconds += Math.Min((now - last).TotalSeconds, maxStretch.TotalSeconds);
        MonitoredAt = now;
        // The end moves later by whatever was not watched.
        MonitoringUntil = now + TimeSpan.FromSeconds(Math.Max(0, window.TotalSeconds - MonitoredSeconds));
        return MonitoredSeconds;
    }

    public void CleanedUp() => CleanupPending = false;

    /// <summary>Sets when the worker should look again (null = wait for a person or nothing left to do).</summary>
    public void RunAgainAt(DateTimeOffset? at) => NextRunAt = at;

    // ---- helpers -------------------------------------------------------------------------------------

    private void Expect(DeploymentState expected)
    {
        if (State != expected)
            throw DomainException.Conflict($"Deployment {Id} is {State}, expected {expected}.");
    }

    private void MoveTo(DeploymentState next, Actor by, DateTimeOffset now, string action, string? reason = null, string? details = null)
    {
        var before = State;
        State = next;
        UpdatedAt = now;
        NextRunAt = now;
        Record(by, action, now, before, next, reason, details);
    }

    private void Finish(DeploymentState end, Actor by, DateTimeOffset now, string action, string? reason, string outcome, string? details = null)
    {
        Outcome = outcome;
        FinishedAt = now;
        MoveTo(end, by, now, action, reason, details);
        NextRunAt = CleanupPending ? now : null;
    }

    private void StartStep(string name, DateTimeOffset now, string message)
    {
        var step = Step(name);
        step.State = StepState.Running;
        step.StartedAt = now;
        step.FinishedAt = null; // an approval step reopened after an approval lapsed
        step.Message = message;
    }

    private void FinishStep(string name, StepState state, string message, DateTimeOffset now)
    {
        var step = Step(name);
        step.StartedAt ??= now;
        step.State = state;
        step.FinishedAt = now;
        step.Message = message;
    }

    private void SkipRemainingSteps(DateTimeOffset now)
    {
        foreach (var step in Steps.Where(s => s.State == StepState.Pending))
        {
            step.State = StepState.Skipped;
            step.FinishedAt = now;
        }
    }

    private void Record(Actor by, string action, DateTimeOffset now, DeploymentState? before, DeploymentState? after,
        string? reason, string? details = null) =>
        _pendingAuditEvents.Add(AuditEvent.Create(by, action, now, ApplicationName, Id, before?.ToString(), after?.ToString(), reason,
            details ?? Json(new { version = Version, targetSlot = TargetSlot.Name() })));

    private static string Json(object value) => JsonSerializer.Serialize(value);

    private static bool SamePerson(string a, string b) => string.Equals(a.Trim(), b.Trim(), StringComparison.OrdinalIgnoreCase);
}
