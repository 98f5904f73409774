using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Execution;

/// <summary>
/// Release-manager controls on a live release: extend the hold window, decommission the previous slot now, finish monitoring
/// early, retry a failed release. Each records intent (audited in the same transaction) that the runtime leader carries out:
/// housekeeping keeps or stops the previous slot by the recorded hold end, the reconcile loop ends monitoring at its next tick,
/// and a retry is a new queued release.
/// </summary>
public sealed partial class ReleaseCommands
{
    /// <summary>Moves the end of the hold window <paramref name="minutes"/> later (the previous slot stays warm that much longer).</summary>
    public async Task<Deployment> ExtendHoldAsync(Guid id, int? minutes, string? reason, Actor by, CancellationToken cancellationToken)
    {
        if (minutes is null) throw DomainException.Invalid("minutes", "minutes is required: how many minutes to add to the hold window.");
        if (minutes is < 1 or > Deployment.MaxHoldExtensionMinutes)
            throw DomainException.Invalid("minutes", $"minutes must be between 1 and {Deployment.MaxHoldExtensionMinutes} (one day) per extension.");
        var why = RequiredReason(reason, "extending the hold window");
        return await OnLiveReleaseAsync(id, (app, d, now) =>
        {
            if (!app.IsRollbackAvailable(now) || app.SlotStatusOf(app.StandbySlot).Version is null)
                throw DomainException.Conflict($"There is no hold window to extend: {TrafficSwitch.NoWarmSlotMessage(app, null, d.FromVersion)}");
            var from = app.RollbackAvailableUntil!.Value;
            var until = from + TimeSpan.FromMinutes(minutes.Value);
            if (until > now + Deployment.MaxHoldAhead)
                throw DomainException.Invalid("minutes", $"minutes would end the hold window at {until:u}; it may end at most {Deployment.MaxHoldAhead.TotalDays:0} days from now ({now + Deployment.MaxHoldAhead:u}).");
            var previous = $"{app.StandbySlot.Name()} {app.SlotStatusOf(app.StandbySlot).Version}";
            app.ExtendRollbackWindow(until);
            d.RecordHoldExtension(by, minutes.Value, from, until, previous, why, now);
        }, cancellationToken);
    }

    /// <summary>
    /// Ends the hold window now: the runtime leader stops the warm previous slot on its next housekeeping round, and the instant
    /// rollback is gone. Refused during monitoring (its automatic rollback needs that slot).
    /// </summary>
    public async Task<Deployment> DecommissionPreviousSlotAsync(Guid id, string? reason, Actor by, CancellationToken cancellationToken)
    {
        var why = RequiredReason(reason, "decommissioning the previous slot");
        return await OnLiveReleaseAsync(id, (app, d, now) =>
        {
            if (d.State == DeploymentState.Monitoring)
                throw DomainException.Conflict($"{d.ApplicationName} {d.Version} is still being monitored, and its automatic rollback needs the previous slot. " +
                                               "Finish monitoring first (or wait for it to end), then decommission.");
            if (!app.IsRollbackAvailable(now) || app.SlotStatusOf(app.StandbySlot).Version is null)
                throw DomainException.Conflict($"Nothing to decommission: {TrafficSwitch.NoWarmSlotMessage(app, null, d.FromVersion)}");
            var until = app.RollbackAvailableUntil!.Value;
            var previous = $"{app.StandbySlot.Name()} {app.SlotStatusOf(app.StandbySlot).Version}";
            app.ExtendRollbackWindow(now);
            d.RecordDecommission(by, previous, until, why, now);
        }, cancellationToken);
    }

    /// <summary>Asks the reconcile loop to end monitoring at its next tick (after that tick's checks pass) and start the hold window.</summary>
    public Task<Deployment> FinishMonitoringAsync(Guid id, string? reason, Actor by, CancellationToken cancellationToken)
    {
        var why = RequiredReason(reason, "finishing monitoring early");
        return MutateAsync(id, d => d.RequestFinishMonitoring(by, why, time.GetUtcNow()), cancellationToken);
    }

    /// <summary>
    /// A failed release is started again as a new release of the same version with the application's current settings (a fix
    /// to a check or a deployer setting made since counts), and the same schema scripts. It goes through every step again,
    /// approvals included: the failed attempt's approvals were for something that did not work.
    /// </summary>
    public async Task<Deployment> RetryAsync(Guid id, string? reason, Actor by, CancellationToken cancellationToken, FreezeOverride? freezeOverride = null)
    {
        if (reason?.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        var failed = await db.Deployments.AsNoTracking().SingleOrDefaultAsync(d => d.Id == id, cancellationToken)
                     ?? throw DomainException.NotFound($"Deployment {id} does not exist.");
        if (failed.State != DeploymentState.Failed)
            throw DomainException.Conflict(failed.State switch
            {
                DeploymentState.Aborted => $"{failed.Version} was aborted by a person, not failed; start a new release of it if you mean to.",
                DeploymentState.RolledBack => $"{failed.Version} was rolled back after it went live; start a new release of it if you mean to try it again.",
                DeploymentState.Succeeded => $"{failed.Version} succeeded; there is nothing to retry.",
                _ => $"{failed.Version} is still in flight ({failed.State}); only a failed release can be retried.",
            });
        var newer = await db.Deployments.AsNoTracking()
            .Where(d => d.ApplicationId == failed.ApplicationId && d.CreatedAt > failed.CreatedAt)
            .OrderByDescending(d => d.CreatedAt).Select(d => new { d.Version, d.State }).FirstOrDefaultAsync(cancellationToken);
        if (newer is not null)
            throw DomainException.Conflict($"{failed.ApplicationName} has had a newer release since ({newer.Version}, {newer.State}); " +
                                           $"only the latest release can be retried. Start a new release of {failed.Version} if you mean to.");
        var why = string.IsNullOrWhiteSpace(reason) ? $"retry of {failed.Version}, which failed: {failed.Outcome}" : reason.Trim();
        if (why.Length > 2000) why = why[..1999] + "…";
        var schema = failed.Lifecycle?.Schema is { } s ? new Hooks.SchemaRequest(s, null) : null;
        return await StartReleaseAsync(failed.ApplicationName, failed.Version, why, by, cancellationToken, freezeOverride, schema,
            retryOf: failed);
    }

    private static string RequiredReason(string? reason, string what)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw DomainException.Invalid("reason", $"reason is required for {what} (it is recorded in the audit trail).");
        if (reason.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        return reason.Trim();
    }

    /// <summary>
    /// Changes the release live now and its application under the reconcile loop's locks (application, then deployment), so
    /// neither a traffic move nor housekeeping interleaves; both records and their audit events are saved in one transaction.
    /// </summary>
    private async Task<Deployment> OnLiveReleaseAsync(Guid id, Action<Application, Deployment, DateTimeOffset> change, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        var applicationId = await db.Deployments.Where(x => x.Id == id).Select(x => (Guid?)x.ApplicationId).SingleOrDefaultAsync(cancellationToken)
                            ?? throw DomainException.NotFound($"Deployment {id} does not exist.");
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM applications WHERE id = {applicationId} FOR UPDATE", cancellationToken);
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM deployments WHERE id = {id} FOR UPDATE", cancellationToken);
        var app = await db.Applications.SingleAsync(a => a.Id == applicationId, cancellationToken);
        if (app.ArchivedAt is { } at) throw DomainException.Conflict($"{app.Name} was archived at {at:u}; nothing can be done to it.");
        var d = await db.Deployments.SingleAsync(x => x.Id == id, cancellationToken);
        if (d.State is not (DeploymentState.Monitoring or DeploymentState.Succeeded) || d.TargetSlot != app.LiveSlot || d.Version != app.LiveVersion)
            throw DomainException.Conflict(d.State is DeploymentState.Monitoring or DeploymentState.Succeeded
                ? $"{d.Version} is no longer live ({app.LiveSlot.Name()} {app.LiveVersion} is); act on the live release instead."
                : $"{d.ApplicationName} {d.Version} is {d.State}; this is only possible for the live release, during monitoring or its hold window.");
        if (d.RollbackPending)
            throw DomainException.Conflict($"A rollback of {app.Name} requested by {d.RollbackRequestedBy} is under way.");
        change(app, d, time.GetUtcNow());
        await db.SaveChangesAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return d;
    }
}
