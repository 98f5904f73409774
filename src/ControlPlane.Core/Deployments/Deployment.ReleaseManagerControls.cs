using static ControlPlane.Core.Deployments.DeploymentState;

namespace ControlPlane.Core.Deployments;

/// <summary>
/// What a release manager does to a live release besides rolling it back: extend the hold window, decommission the previous
/// slot early, finish monitoring early. Each is recorded (and audited) here; the runtime leader's loops carry it out.
/// </summary>
public sealed partial class Deployment
{
    /// <summary>The most one request may add to the hold window (a day); the hold never ends more than a week from now.</summary>
    public const int MaxHoldExtensionMinutes = 1440;

    public static readonly TimeSpan MaxHoldAhead = TimeSpan.FromDays(7);

    /// <summary>Minutes people added to the hold window; counted on top of the policy's hold when monitoring ends.</summary>
    public int HoldExtensionSeconds { get; private set; }

    /// <summary>Recorded intent to end monitoring early (promote): the reconcile loop's next monitoring tick carries it out.</summary>
    public string? PromoteRequestedBy { get; private set; }
    public ActorKind PromoteRequestedByKind { get; private set; }
    public string? PromoteReason { get; private set; }
    public DateTimeOffset? PromoteRequestedAt { get; private set; }

    /// <summary>An early end of monitoring was asked for and the loop has not carried it out yet.</summary>
    public bool PromotePending => PromoteRequestedBy is not null && State == Monitoring;

    /// <summary>When the hold window ends for a release whose monitoring ends at <paramref name="now"/>.</summary>
    public DateTimeOffset HoldUntil(DateTimeOffset now, ReleasePolicy policy) =>
        now + TimeSpan.FromSeconds(policy.HoldWindowSeconds + HoldExtensionSeconds);

    public void RequestFinishMonitoring(Actor by, string reason, DateTimeOffset now)
    {
        if (State != Monitoring)
            throw DomainException.Conflict(State switch
            {
                Succeeded => $"{ApplicationName} {Version} has already finished monitoring (Succeeded).",
                _ when State.IsBeforeSwitch() || State == Switching => $"{ApplicationName} {Version} is {State}; monitoring starts only after the switch.",
                _ => $"{ApplicationName} {Version} has ended ({State}); there is no monitoring to finish.",
            });
        if (RollbackPending)
            throw DomainException.Conflict($"A rollback of {ApplicationName} requested by {RollbackRequestedBy} is under way; monitoring cannot be finished early.");
        if (PromotePending)
            throw DomainException.Conflict($"{PromoteRequestedBy} already asked at {PromoteRequestedAt:u} to finish monitoring of {Version} early; it is being carried out.");
        PromoteRequestedBy = by.Name;
        PromoteRequestedByKind = by.Kind;
        PromoteReason = reason;
        PromoteRequestedAt = now;
        UpdatedAt = now;
        NextRunAt = now;
        Record(by, "deployment.finish-monitoring-requested", now, State, State, reason,
            Json(new { version = Version, watchedSeconds = Math.Round(MonitoredSeconds), monitoringUntil = MonitoringUntil }));
    }

    /// <summary>
    /// The loop carries out the early end: the checks of this tick passed (a breach would have rolled back instead), so the
    /// release succeeds in the name of the person who asked.
    /// </summary>
    public void FinishMonitoringEarly(double watchedSeconds, TimeSpan window, DateTimeOffset now)
    {
        if (!PromotePending) throw DomainException.Conflict($"No early end of monitoring of {Version} was asked for.");
        var by = new Actor(PromoteRequestedBy!, PromoteRequestedByKind);
        var message = $"ended early by {by.Name} after {watchedSeconds:0} of {window.TotalSeconds:0} s watched (checks passing): {PromoteReason}";
        FinishStep(StepNames.Monitor, StepState.Succeeded, message, now);
        Finish(Succeeded, by, now, "deployment.succeeded", PromoteReason, $"Monitoring {message}",
            Json(new { version = Version, targetSlot = TargetSlot.Name(), finishedEarly = true, watchedSeconds = Math.Round(watchedSeconds), windowSeconds = window.TotalSeconds }));
        WakeForStepsAfterHold(now);
    }

    /// <summary>A person moved the end of the hold window later; the application's record was changed with it.</summary>
    public void RecordHoldExtension(Actor by, int minutes, DateTimeOffset from, DateTimeOffset until, string previous, string reason, DateTimeOffset now)
    {
        HoldExtensionSeconds += minutes * 60;
        UpdatedAt = now;
        Record(by, "deployment.hold-extended", now, State, State, reason,
            Json(new { version = Version, minutes, previous, holdUntilBefore = from, holdUntil = until }));
    }

    /// <summary>
    /// A person ended the hold window now: the warm previous slot goes (the runtime leader stops it) and with it the
    /// instant rollback. Steps that wait for the hold's end (contract, postHold) are looked at again.
    /// </summary>
    public void RecordDecommission(Actor by, string previous, DateTimeOffset holdUntil, string reason, DateTimeOffset now)
    {
        UpdatedAt = now;
        Record(by, "deployment.previous-slot-decommissioned", now, State, State, reason,
            Json(new { version = Version, previous, holdUntilBefore = holdUntil, rollbackPossible = false }));
        WakeForStepsAfterHold(now);
    }

    /// <summary>This release was started as a retry of <paramref name="failed"/> (same version); the link is on the record.</summary>
    public void RecordRetryOf(Deployment failed, Actor by, DateTimeOffset now) =>
        Record(by, "deployment.retried", now, null, Queued, Reason,
            Json(new { version = Version, retryOf = failed.Id, failedOutcome = failed.Outcome }));
}
