using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using ControlPlane.Core.Hooks;

namespace ControlPlane.Web.Api;

// Requests: every property nullable so a missing field gets our own message naming it, not a serializer exception.

public sealed record KindAndSettings(string? Kind, JsonElement? Settings);

public sealed record RegisterApplicationRequest(
    string? Name, KindAndSettings? Router, KindAndSettings? Deployer, List<HttpCheck>? Checks, ReleasePolicy? Policy,
    string? InitialVersion, Slot? LiveSlot, string? VerifyPath, ApplicationHooks? Hooks = null);

public sealed record StartReleaseRequest(string? Version, string? Reason, FreezeOverrideRequest? FreezeOverride = null,
    ReleaseSchema? Schema = null, DdlOverrideRequest? DdlOverride = null);

/// <summary>An Admin lets an expand script the schema guard refused run anyway; the reason is audited.</summary>
public sealed record DdlOverrideRequest(string? Reason);

/// <summary>What to do with a hook step that was interrupted: <c>runAgain</c> or <c>done</c>, and why.</summary>
public sealed record ResolveHookRequest(string? Decision, string? Reason);
public sealed record FreezeOverrideRequest(string? Reason);
public sealed record SwitchRequest(FreezeOverrideRequest? FreezeOverride = null);

/// <summary>A freeze window: kind "oneOff" (start, end) or "weekly" (daysOfWeek, startTime "HH:mm", durationMinutes), in timeZone.</summary>
public sealed record CreateFreezeWindowRequest(string? Name, string? Reason, string? Kind, string? TimeZone, string? Start, string? End,
    List<string>? DaysOfWeek, string? StartTime, int? DurationMinutes)
{
    public FreezeWindowSpec ToSpec() => new(Name, Reason, Kind, TimeZone, Start, End, DaysOfWeek, StartTime, DurationMinutes);
}
public sealed record ApproveRequest(string? Comment);
public sealed record ReasonRequest(string? Reason);
public sealed record CreateTokenRequest(string? Name, string? Role, DateTimeOffset? ExpiresAt, string? Owner = null);

// Responses.

public sealed record SlotDto(string? Version, string State, bool Healthy, string? Message);
public sealed record SlotsDto(SlotDto Blue, SlotDto Green);
public sealed record InFlightDto(Guid Id, string Version, DeploymentState State);

/// <param name="LastRelease">The last release that ended, with its outcome in words.</param>
/// <param name="NeedsAttention">What needs a person now (approval waiting, live slot not serving, rollback refused…).</param>
/// <param name="LiveBefore">The version live before the current one (what a redeploy goes back to); null when none.</param>
public sealed record ApplicationSummaryDto(string Name, Slot LiveSlot, string? LiveVersion, string? PublicUrl, SlotsDto Slots,
    InFlightDto? InFlight, DateTimeOffset? RollbackAvailableUntil, LastReleaseDto? LastRelease = null,
    IReadOnlyList<string>? NeedsAttention = null, string? LiveBefore = null);

public sealed record LastReleaseDto(Guid Id, string Version, DeploymentState State, DateTimeOffset? FinishedAt, string Summary);

public sealed record ApplicationDto(string Name, Slot LiveSlot, string? LiveVersion, string? PublicUrl, SlotsDto Slots,
    InFlightDto? InFlight, DateTimeOffset? RollbackAvailableUntil, ReleasePolicy Policy, KindAndSettings Router,
    KindAndSettings Deployer, IReadOnlyList<HttpCheck> Checks, string VerifyPath, DateTimeOffset CreatedAt, string? RuntimeHost,
    ApplicationHooks? Hooks = null, DateTimeOffset? ArchivedAt = null);

/// <param name="Output">A hook step's captured output (truncated); <paramref name="ExitStatus"/> its exit code or HTTP status.</param>
public sealed record StepDto(string Name, StepState State, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Message,
    string? Output = null, int? ExitStatus = null, int? Attempts = null);
public sealed record ApprovalDto(string By, DateTimeOffset At, string? Comment, DateTimeOffset? ExpiresAt, bool Valid);

public sealed record FreezeOccurrenceDto(DateTimeOffset Start, DateTimeOffset End, string EndLocal);

public sealed record FreezeWindowDto(Guid Id, string? Application, string Name, string? Reason, string Kind, string TimeZone,
    DateTimeOffset? Start, DateTimeOffset? End, IReadOnlyList<string>? DaysOfWeek, string? StartTime, int? DurationMinutes,
    string Summary, string CreatedBy, DateTimeOffset CreatedAt, FreezeOccurrenceDto? ActiveNow, FreezeOccurrenceDto? Next);

public sealed record DeploymentDto(Guid Id, string Application, string Version, string? FromVersion, Slot FromSlot, Slot TargetSlot,
    DeploymentState State, string RequestedBy, string? Reason, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    DateTimeOffset? FinishedAt, string? Outcome, IReadOnlyList<StepDto> Steps, IReadOnlyList<ApprovalDto> Approvals, int RequiredApprovals,
    DateTimeOffset? MonitoringUntil, int ValidApprovals, int? ApprovalValidForSeconds, bool BreakGlassRollback,
    double? MonitoredSeconds, RollbackRequestDto? Rollback, ReleaseLifecycle? Lifecycle = null, string? HeldHook = null,
    string? HoldReason = null, string? MonitoringInconclusive = null);

/// <summary>The last rollback asked of a release: <c>state</c> is pending, done or refused (with why).</summary>
public sealed record RollbackRequestDto(Guid Id, string RequestedBy, DateTimeOffset? RequestedAt, string? Reason, bool Automatic, string State, string? Refusal);

/// <param name="Pending">The runtime leader has not reported yet: follow <c>deployment</c> (also the Location header).</param>
public sealed record RollbackResultDto(string Application, Slot? LiveSlot, string? LiveVersion, string Message, bool Pending = false, Guid? Deployment = null);

public sealed record AuditEventDto(long Sequence, DateTimeOffset OccurredAt, string Actor, ActorKind ActorKind, string? SourceIp,
    string Action, string? Application, Guid? DeploymentId, string? Before, string? After, string? Reason, string? Details,
    string PreviousHash, string Hash);

public sealed record AuditPageDto(IReadOnlyList<AuditEventDto> Items, string? NextCursor);
public sealed record AuditVerifyDto(bool Valid, long Events, long? FirstInvalidSequence, string? Problem,
    string? Reason = null, AuditCheckpointSummary? Checkpoints = null);
public sealed record CreatedTokenDto(Guid Id, string Name, string Role, DateTimeOffset? ExpiresAt, string Token, string? Owner = null);

public static class Dto
{
    public static SlotsDto Slots(Application a) => new(Slot(a.Blue), Slot(a.Green));

    private static SlotDto Slot(SlotStatus s) => new(s.Version, s.State.ToString(), s.Healthy, s.Message);

    public static InFlightDto? InFlight(Deployment? d) => d is null ? null : new(d.Id, d.Version, d.State);

    public static ApplicationSummaryDto Summary(Application a, Deployment? inFlight) =>
        new(a.Name, a.LiveSlot, a.LiveVersion, a.PublicUrl, Slots(a), InFlight(inFlight), a.RollbackAvailableUntil);

    public static ApplicationSummaryDto Summary(Queries.ApplicationStatus s, DateTimeOffset now, Core.Execution.RuntimeFaults? faults = null) =>
        Summary(s.App, s.InFlight) with
        {
            LastRelease = s.LastFinished is { } d ? new(d.Id, d.Version, d.State, d.FinishedAt, Queries.ApplicationStatus.Describe(d)) : null,
            NeedsAttention = s.NeedsAttention(now, faults),
            LiveBefore = s.LiveBefore,
        };

    public static ApplicationDto Detail(Application a, Deployment? inFlight) =>
        new(a.Name, a.LiveSlot, a.LiveVersion, a.PublicUrl, Slots(a), InFlight(inFlight), a.RollbackAvailableUntil, a.Policy,
            new(a.RouterKind, a.RouterSettingsJson), new(a.DeployerKind, a.DeployerSettingsJson), a.Checks, a.VerifyPath, a.CreatedAt, a.RuntimeHost,
            a.Hooks, a.ArchivedAt);

    public static DeploymentDto Deployment(Deployment d) => Deployment(d, DateTimeOffset.UtcNow);

    public static DeploymentDto Deployment(Deployment d, DateTimeOffset now) =>
        new(d.Id, d.ApplicationName, d.Version, d.FromVersion, d.FromSlot, d.TargetSlot, d.State, d.RequestedBy, d.Reason,
            d.CreatedAt, d.UpdatedAt, d.FinishedAt, d.Outcome,
            [.. d.Steps.OrderBy(s => s.Order).Select(s => new StepDto(s.Name, s.State, s.StartedAt, s.FinishedAt, s.Message,
                s.Output, s.ExitStatus, HookSteps.IsHookStep(s.Name) ? s.Attempts : null))],
            [.. d.Approvals.OrderBy(a => a.At).Select(a => new ApprovalDto(a.By, a.At, a.Comment, a.ExpiresAt, a.IsValidAt(now)))],
            d.RequiredApprovals, d.MonitoringUntil, d.ValidApprovals(now).Count, d.ApprovalValidForSeconds, d.BreakGlassRollback,
            d.MonitoredAt is null ? null : Math.Round(d.MonitoredSeconds, 1), Rollback(d), d.Lifecycle, d.HeldHook,
            d.HoldReason, d.State == DeploymentState.Monitoring ? d.MonitoringInconclusive : null);

    private static RollbackRequestDto? Rollback(Deployment d) => d.RollbackRequestId is not { } id ? null : new(id, d.RollbackRequestedBy ?? "",
        d.RollbackRequestedAt, d.RollbackReason, d.RollbackAutomatic,
        d.RollbackRefusal is not null ? "refused" : d.State == DeploymentState.RolledBack ? "done" : "pending", d.RollbackRefusal);

    public static FreezeWindowDto FreezeWindow(FreezeWindow w, DateTimeOffset now) =>
        new(w.Id, w.ApplicationName, w.Name, w.Reason, w.Kind == FreezeKind.OneOff ? "oneOff" : "weekly", w.TimeZone, w.StartsAt, w.EndsAt,
            w.Kind == FreezeKind.Weekly ? [.. w.DaysOfWeek.Select(d => d.ToString())] : null,
            w.StartTime?.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture), w.DurationMinutes, w.Summary, w.CreatedBy, w.CreatedAt,
            Occurrence(w.ActiveAt(now)), Occurrence(w.NextAfter(now)));

    private static FreezeOccurrenceDto? Occurrence(FreezeOccurrence? o) => o is null ? null : new(o.Start, o.End, o.EndText);

    public static AuditEventDto Audit(AuditEvent e) =>
        new(e.Sequence, e.OccurredAt, e.Actor, e.ActorKind, e.SourceIp, e.Action, e.Application, e.DeploymentId, e.BeforeState,
            e.AfterState, e.Reason, e.Details, e.PreviousHash, e.Hash);
}
