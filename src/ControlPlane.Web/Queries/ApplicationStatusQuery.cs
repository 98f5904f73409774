using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Governance;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Queries;

/// <summary>
/// What one application is doing and what last happened to it, read once for the API's GETs and the pages alike (so the
/// overview and <c>GET /api/v1/applications</c> never tell different stories).
/// </summary>
/// <param name="InFlight">The release in progress, if any.</param>
/// <param name="LastFinished">The most recent release that ended (any outcome).</param>
/// <param name="LiveRelease">The release that put the live version live (null when it came from registration or a rollback).</param>
public sealed record ApplicationStatus(Application App, Deployment? InFlight, Deployment? LastFinished, Deployment? LiveRelease,
    IReadOnlyList<FreezeWindow> Freezes)
{
    /// <summary>How long a failed or rolled-back release counts as "failed recently".</summary>
    public static readonly TimeSpan RecentFailure = TimeSpan.FromHours(24);

    /// <summary>
    /// The version that was really live before the current one (what "going back" means); null when there was none. A failed
    /// or aborted release never was live, so it is never named here.
    /// </summary>
    public string? LiveBefore => LiveRelease?.FromVersion;

    public FreezeOccurrence? ActiveFreeze(DateTimeOffset now) => FreezeCalendar.ActiveAmong(Freezes, now);

    /// <summary>What needs a person now, most urgent first (empty when nothing does).</summary>
    /// <param name="faults">What the runtime found keeping this application from serving (router cannot listen, slot cannot start).</param>
    public IReadOnlyList<string> NeedsAttention(DateTimeOffset now, RuntimeFaults? faults = null)
    {
        var reasons = new List<string>();
        var known = faults?.For(App.Name) ?? [];
        reasons.AddRange(known.Select(f => f.Reason));
        var live = App.LiveStatus;
        if (live.Version is not null && (live.State == SlotRunState.Failed || (live.State == SlotRunState.Running && !live.Healthy)))
            reasons.Add($"live slot {App.LiveSlot.Name()} ({live.Version}) not serving: {live.Message ?? "no answer"}");
        else if (known.Count == 0 && live.Version is not null && live.State == SlotRunState.Starting && App.PublicUrl is null && now - App.CreatedAt > TimeSpan.FromMinutes(2))
            reasons.Add($"not brought up: live slot {App.LiveSlot.Name()} ({live.Version}) still starting and no router attached");
        var current = InFlight ?? LiveRelease;
        if (current is { RollbackPending: false, RollbackRefusal: { } refusal } && current.State is DeploymentState.Monitoring or DeploymentState.Succeeded)
            reasons.Add($"rollback refused: {refusal}");
        if (InFlight is { } d)
        {
            var running = d.Steps.FirstOrDefault(s => s.State == StepState.Running);
            if (d.HeldHook is { } hook)
                reasons.Add($"{d.Version}: hook '{hook}' was interrupted and may have run; a person decides (done or run again)");
            if (d.State == DeploymentState.AwaitingApproval && d.HoldReason is { } hold)
                reasons.Add($"{d.Version} held for a person: {hold}");
            else if (d.State == DeploymentState.AwaitingApproval)
                reasons.Add($"approval waiting for {d.Version} ({d.ValidApprovals(now).Count} of {d.RequiredApprovals})");
            else if (d.State == DeploymentState.ReadyToSwitch && !App.Policy.SwitchOnApproval)
                reasons.Add($"{d.Version} ready to switch: a person switches");
            else if (d.State == DeploymentState.Monitoring && running?.Message is { } m && m.StartsWith("BREACH", StringComparison.Ordinal))
                reasons.Add(m);
            else if (d.State == DeploymentState.Monitoring && d.MonitoringInconclusive is { } unsure)
                reasons.Add($"{d.Version} still watching: {unsure}");
        }
        return reasons;
    }

    public bool IsInFlight => InFlight is not null;

    public bool FailedRecently(DateTimeOffset now) =>
        LastFinished is { State: DeploymentState.Failed or DeploymentState.RolledBack, FinishedAt: { } at } && now - at < RecentFailure;

    /// <summary>The step the release in flight is at, in words ("Verifying: running checks against the standby slot").</summary>
    public string? InFlightStep =>
        InFlight is not { } d ? null
        : d.Steps.FirstOrDefault(s => s.State == StepState.Running)?.Message is { } m ? $"{d.State}: {m}" : d.State.ToString();

    /// <summary>The last release's outcome and why, in a sentence ("Automatically rolled back: check 'home' failed …").</summary>
    public string? LastOutcome => LastFinished is { } d ? Describe(d) : null;

    public static string Describe(Deployment d) => d.State switch
    {
        DeploymentState.RolledBack when d.RollbackAutomatic || d.RollbackRequestedBy is null =>
            $"{d.Version} automatically rolled back: {d.RollbackReason ?? d.Outcome}",
        DeploymentState.RolledBack => $"{d.Version} rolled back by {d.RollbackRequestedBy}: {d.RollbackReason}",
        DeploymentState.Failed => $"{d.Version} {FailedWhere(d)}: {FailedStepMessage(d) ?? d.Outcome}",
        DeploymentState.Aborted => $"{d.Version} {d.Outcome?.Replace("Aborted", "aborted", StringComparison.Ordinal)}",
        DeploymentState.Succeeded => $"{d.Version} released (was {d.FromVersion ?? "—"})",
        _ => $"{d.Version} {d.State}",
    };

    private static string FailedWhere(Deployment d) => d.Steps.FirstOrDefault(s => s.State == StepState.Failed)?.Name switch
    {
        StepNames.Deploy => "failed to deploy",
        StepNames.Verify => "failed verification",
        StepNames.Switch => "failed at the switch",
        { } other => $"failed at {other}",
        null => "failed",
    };

    private static string? FailedStepMessage(Deployment d) => d.Steps.FirstOrDefault(s => s.State == StepState.Failed)?.Message;
}

/// <summary>Reads <see cref="ApplicationStatus"/> for every application (or one) in a fixed number of queries.</summary>
public static class ApplicationStatusQuery
{
    public static async Task<List<ApplicationStatus>> AllAsync(ControlPlaneDbContext db, CancellationToken cancellationToken) =>
        await ReadAsync(db, await db.Applications.AsNoTracking().Where(a => a.ArchivedAt == null).OrderBy(a => a.Name).ToListAsync(cancellationToken), cancellationToken);

    public static async Task<ApplicationStatus?> OneAsync(ControlPlaneDbContext db, string name, CancellationToken cancellationToken)
    {
        var app = await db.Applications.AsNoTracking().SingleOrDefaultAsync(a => a.Name == name, cancellationToken);
        return app is null ? null : (await ReadAsync(db, [app], cancellationToken))[0];
    }

    private static async Task<List<ApplicationStatus>> ReadAsync(ControlPlaneDbContext db, List<Application> apps, CancellationToken cancellationToken)
    {
        if (apps.Count == 0) return [];
        var ids = apps.Select(a => a.Id).ToArray();
        var inFlightStates = DeploymentStates.InFlight.Select(s => s.ToString()).ToArray();
        // One row per application (DISTINCT ON over the (application_id, created_at) index): its latest ended release, and its
        // latest release that reached traffic and stayed.
        var lastFinishedIds = await db.Database.SqlQuery<Guid>($"""
            SELECT DISTINCT ON (application_id) id AS "Value" FROM deployments
            WHERE application_id = ANY({ids}) AND NOT (state = ANY({inFlightStates}))
            ORDER BY application_id, created_at DESC
            """).ToListAsync(cancellationToken);
        var liveIds = await db.Database.SqlQuery<Guid>($"""
            SELECT DISTINCT ON (application_id) id AS "Value" FROM deployments
            WHERE application_id = ANY({ids}) AND state IN ('Monitoring', 'Succeeded')
            ORDER BY application_id, created_at DESC
            """).ToListAsync(cancellationToken);
        var wanted = lastFinishedIds.Concat(liveIds).Distinct().ToList();
        var deployments = await db.Deployments.AsNoTracking().AsSplitQuery()
            .Where(d => ids.Contains(d.ApplicationId) && (wanted.Contains(d.Id) || DeploymentStates.InFlight.Contains(d.State)))
            .ToListAsync(cancellationToken);
        var freezes = await db.FreezeWindows.AsNoTracking().Where(w => w.ApplicationId == null || ids.Contains(w.ApplicationId.Value))
            .OrderBy(w => w.CreatedAt).ToListAsync(cancellationToken);
        var finishedSet = lastFinishedIds.ToHashSet();
        var liveSet = liveIds.ToHashSet();
        return [.. apps.Select(a =>
        {
            var mine = deployments.Where(d => d.ApplicationId == a.Id).ToList();
            var live = mine.FirstOrDefault(d => liveSet.Contains(d.Id));
            // Only the release whose version the live slot serves; after a rollback the live version came from elsewhere.
            if (live is not null && (live.TargetSlot != a.LiveSlot || live.Version != a.LiveVersion)) live = null;
            return new ApplicationStatus(a, mine.FirstOrDefault(d => d.State.IsInFlight()), mine.FirstOrDefault(d => finishedSet.Contains(d.Id)), live,
                [.. freezes.Where(w => w.ApplicationId == null || w.ApplicationId == a.Id)]);
        })];
    }
}
