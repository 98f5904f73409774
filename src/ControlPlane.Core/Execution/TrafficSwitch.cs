using System.Text.Json;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using ControlPlane.Core.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Execution;

/// <summary>
/// Where traffic moves between slots: the forward switch of a release and the rollback. Both hold the application's
/// row lock for the whole flip-verify-record sequence, so a rollback, an automatic rollback and a switch never interleave,
/// and both verify the data plane before recording the new live slot — traffic is never left on an unverified slot.
/// </summary>
public sealed class TrafficSwitch(ControlPlaneDbContext db, ProviderRegistry providers, TimeProvider time, ILogger<TrafficSwitch> logger)
{
    /// <summary>Completes a deployment in <see cref="DeploymentState.Switching"/>. Idempotent: after a crash it re-flips (a no-op) and re-verifies.</summary>
    public async Task CompleteSwitchAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var (app, d) = await LockAsync(deploymentId, cancellationToken);
        if (d.State != DeploymentState.Switching) return;

        var router = providers.RouterFor(app);
        var binding = providers.RouterBindingFor(app);
        string? failure = null;
        try
        {
            await router.SwitchAsync(binding, d.TargetSlot, cancellationToken);
            var proof = await router.VerifyDataPlaneAsync(binding, d.TargetSlot, d.Version, cancellationToken);
            if (!proof.Verified) failure = $"data plane not verified after the switch: {proof.Message}";
            else
            {
                var now = time.GetUtcNow();
                var window = TimeSpan.FromSeconds(app.Policy.MonitoringWindowSeconds);
                app.MakeLive(d.TargetSlot, now + window + TimeSpan.FromSeconds(app.Policy.HoldWindowSeconds));
                d.Switched($"router on {d.TargetSlot.Name()}; {proof.Message}", now, window);
                logger.LogInformation("Switched {Application} to {Slot} ({Version})", app.Name, d.TargetSlot.Name(), d.Version);
            }
        }
        catch (Exception ex) when (ex is RouterException or HttpRequestException or IOException)
        {
            failure = $"router {app.RouterKind} failed to switch: {ex.Message}";
        }

        if (failure is not null)
        {
            logger.LogWarning("Not switching {Application} to {Slot}: {Reason}; reverting the router to {From}", app.Name, d.TargetSlot.Name(), failure, d.FromSlot.Name());
            failure += await RevertAsync(router, binding, d.FromSlot, cancellationToken);
            d.SwitchFailed(failure, time.GetUtcNow());
        }
        await db.SaveChangesAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Flips traffic back to the warm previous slot. With <paramref name="onlyIfMonitoring"/> (the automatic rollback) it does
    /// nothing unless that deployment is still being monitored, so it never races a person's rollback.
    /// </summary>
    public async Task<RollbackOutcome> RollbackAsync(string application, Actor by, string reason, Guid? onlyIfMonitoring, CancellationToken cancellationToken)
    {
        // The worker may save the same deployment meanwhile (a monitoring tick). The flip is idempotent, so on a conflict
        // the whole rollback runs again on fresh state; only if it can never be recorded is the router put back.
        for (var attempt = 1; ; attempt++)
        {
            _flipped = null;
            try
            {
                return await RollbackOnceAsync(application, by, reason, onlyIfMonitoring, cancellationToken);
            }
            catch (Exception ex) when (IsConflict(ex) && attempt < 4)
            {
                logger.LogInformation("Rollback of {Application} met a concurrent change; trying again ({Attempt})", application, attempt);
                db.ChangeTracker.Clear();
            }
            catch (Exception ex) when (IsConflict(ex) && _flipped is { } flipped)
            {
                db.ChangeTracker.Clear();
                var revert = await RevertAsync(flipped.Router, flipped.Binding, flipped.From, CancellationToken.None);
                throw DomainException.Conflict($"The rollback of {application} could not be recorded (concurrent changes kept conflicting).{revert} Try again.");
            }
        }
    }

    private (ITrafficRouter Router, RouterBinding Binding, Slot From)? _flipped;

    private static bool IsConflict(Exception ex) =>
        ex is DbUpdateConcurrencyException || ex.InnerException is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.DeadlockDetected or Npgsql.PostgresErrorCodes.SerializationFailure }
        || ex is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.DeadlockDetected or Npgsql.PostgresErrorCodes.SerializationFailure };

    private async Task<RollbackOutcome> RollbackOnceAsync(string application, Actor by, string reason, Guid? onlyIfMonitoring, CancellationToken cancellationToken)
    {
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM applications WHERE name = {application} FOR UPDATE", cancellationToken);
        var app = await db.Applications.SingleOrDefaultAsync(a => a.Name == application, cancellationToken)
                  ?? throw DomainException.NotFound($"Application '{application}' does not exist.");
        await db.Entry(app).ReloadAsync(cancellationToken);
        var now = time.GetUtcNow();
        var live = await db.Deployments
            .Where(x => x.ApplicationId == app.Id && x.TargetSlot == app.LiveSlot &&
                        (x.State == DeploymentState.Monitoring || x.State == DeploymentState.Succeeded))
            .OrderByDescending(x => x.CreatedAt).FirstOrDefaultAsync(cancellationToken);
        if (live is not null)
        {
            // Locked after the application row (the order every writer uses), so the worker cannot save it under us.
            await db.Database.ExecuteSqlAsync($"SELECT 1 FROM deployments WHERE id = {live.Id} FOR UPDATE", cancellationToken);
            await db.Entry(live).ReloadAsync(cancellationToken);
        }
        if (onlyIfMonitoring is { } id && (live?.Id != id || live.State != DeploymentState.Monitoring))
            return new(false, app.LiveSlot, app.LiveVersion, "the deployment is no longer being monitored");

        var previous = app.StandbySlot;
        var previousVersion = app.SlotStatusOf(previous).Version;
        if (!app.IsRollbackAvailable(now) || previousVersion is null)
            throw DomainException.Conflict(await NoWarmSlotMessageAsync(app, previous, previousVersion, cancellationToken));

        var deployer = providers.DeployerFor(app);
        var observed = await deployer.ObserveAsync(providers.DeployerBindingFor(app), previous, cancellationToken);
        if (!observed.Running || !observed.Healthy)
            throw DomainException.Conflict($"The previous slot {previous.Name()} ({previousVersion}) is not healthy ({observed.Message}); " +
                                           $"traffic stays on {app.LiveSlot.Name()}. Start a new release of {previousVersion} instead.");

        var router = providers.RouterFor(app);
        var binding = providers.RouterBindingFor(app);
        var from = app.LiveSlot;
        var fromVersion = app.LiveVersion;
        _flipped = (router, binding, app.LiveSlot);
        await router.SwitchAsync(binding, previous, cancellationToken);
        var proof = await router.VerifyDataPlaneAsync(binding, previous, previousVersion, cancellationToken);
        if (!proof.Verified)
        {
            var revert = await RevertAsync(router, binding, from, cancellationToken);
            throw DomainException.Conflict($"Rollback not completed: after the flip the data plane did not show {previousVersion} ({proof.Message}).{revert}");
        }

        now = time.GetUtcNow();
        app.MakeLive(previous, null);
        // A person's rollback is break-glass: always allowed (even in a freeze, without approval) but flagged for review.
        var freeze = await db.ActiveFreezeAsync(app.Id, now, cancellationToken);
        var automatic = onlyIfMonitoring is not null;
        app.Record(by, "application.rolled-back", now, live?.Id, $"{from.Name()} {fromVersion}", $"{previous.Name()} {previousVersion}", reason,
            JsonSerializer.Serialize(new { automatic, breakGlass = !automatic, duringFreeze = freeze?.Window.Name, proof = proof.Message }));
        live?.RolledBack(by, reason, onlyIfMonitoring is not null, now);
        await db.SaveChangesAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        logger.LogWarning("Rolled back {Application} from {From} ({FromVersion}) to {To} ({ToVersion}) by {Actor}: {Reason}",
            app.Name, from.Name(), fromVersion, previous.Name(), previousVersion, by.Name, reason);
        return new(true, previous, previousVersion, proof.Message);
    }

    private async Task<string> NoWarmSlotMessageAsync(Application app, Slot previous, string? previousVersion, CancellationToken cancellationToken)
    {
        var releasing = await db.Deployments.AsNoTracking()
            .FirstOrDefaultAsync(x => x.ApplicationId == app.Id && DeploymentStates.InFlight.Contains(x.State), cancellationToken);
        if (releasing is not null && releasing.State.IsBeforeSwitch())
            return $"Nothing to roll back: {app.Name} still serves {app.LiveVersion} from {app.LiveSlot.Name()}, and the standby slot " +
                   $"{previous.Name()} holds the release in progress ({releasing.Version}, {releasing.State}). Abort that release instead.";
        var why = app.RollbackAvailableUntil is { } until
            ? $"the hold window ended at {until:u}"
            : previousVersion is null ? "no previous version was ever live" : "it is no longer kept running";
        return $"No warm previous slot to roll back to: {previous.Name()} ({previousVersion ?? "empty"}) is not available ({why}). " +
               (previousVersion is null ? "" : $"Start a new release of {previousVersion} to go back to it.");
    }

    private async Task<(Application App, Deployment Deployment)> LockAsync(Guid deploymentId, CancellationToken cancellationToken)
    {
        var d = await db.Deployments.SingleAsync(x => x.Id == deploymentId, cancellationToken);
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM applications WHERE id = {d.ApplicationId} FOR UPDATE", cancellationToken);
        var app = await db.Applications.SingleAsync(a => a.Id == d.ApplicationId, cancellationToken);
        // Re-read under the lock: another replica may have moved either since they were first loaded.
        await db.Entry(app).ReloadAsync(cancellationToken);
        await db.Entry(d).ReloadAsync(cancellationToken);
        return (app, d);
    }

    private async Task<string> RevertAsync(ITrafficRouter router, RouterBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        try
        {
            await router.SwitchAsync(binding, slot, cancellationToken);
            return $" Router reverted to {slot.Name()}.";
        }
        catch (Exception ex) when (ex is RouterException or HttpRequestException or IOException)
        {
            logger.LogError(ex, "Reverting the router of {Application} to {Slot} failed", binding.Application, slot.Name());
            return $" Reverting the router to {slot.Name()} ALSO FAILED: {ex.Message} — check the router by hand.";
        }
    }
}

public sealed record RollbackOutcome(bool RolledBack, Slot LiveSlot, string? LiveVersion, string Message);
