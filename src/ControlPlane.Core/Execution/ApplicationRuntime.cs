using ControlPlane.Core.Data;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Execution;

/// <summary>
/// Keeps each application's slots and router in agreement with what is recorded: at start-up (after a clean stop or a
/// kill -9) and periodically. Brings up the live (and still-warm previous) slot, attaches the router to the recorded live
/// slot, stops slots nothing needs any more, and refreshes slot health for the dashboard.
/// </summary>
public sealed class ApplicationRuntime(ControlPlaneDbContext db, ProviderRegistry providers, RuntimeHost host, TimeProvider time, ILogger<ApplicationRuntime> logger,
    RuntimeFaults? faults = null)
{
    private readonly RuntimeFaults _faults = faults ?? new RuntimeFaults(time);

    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(60);

    /// <summary>Makes the given applications (all, when null) serve again from their recorded live slot; returns those that could not.</summary>
    public async Task<IReadOnlyList<Guid>> AttachAllAsync(IReadOnlyCollection<Guid>? only, CancellationToken cancellationToken)
    {
        var ids = only ?? await db.Applications.Where(a => a.ArchivedAt == null).Select(a => a.Id).ToListAsync(cancellationToken);
        var failed = new List<Guid>();
        foreach (var id in ids)
        {
            try { await AttachAsync(id, cancellationToken); } // another host's application is not retried: it is not ours
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                failed.Add(id);
                var name = await NameOfAsync(id, cancellationToken);
                // Retried every round: said once per change of reason; a provider's own words need no stack trace.
                var expected = ex is RouterException;
                if (_faults.Report(name, RuntimeFaultKind.BringUp, RuntimeFaults.Words(ex)))
                    logger.LogError(expected ? null : ex, "{Application} is not serving: {Reason} (retried every housekeeping round; logged again when the reason changes)",
                        name, RuntimeFaults.Words(ex));
            }
        }
        return failed;
    }

    private async Task<string> NameOfAsync(Guid id, CancellationToken cancellationToken)
    {
        try
        {
            return await db.Applications.AsNoTracking().Where(a => a.Id == id).Select(a => a.Name).SingleOrDefaultAsync(cancellationToken) ?? id.ToString();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return id.ToString(); // the database itself is the fault; DatabaseSupervisor says so
        }
    }

    /// <summary>Brings the application up from its recorded state; returns false (and says why) when its runtime belongs to another host.</summary>
    public async Task<bool> AttachAsync(Guid applicationId, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        var app = await db.Applications.SingleAsync(a => a.Id == applicationId, cancellationToken);
        if (app.ArchivedAt is not null) return true; // nothing of it runs any more (housekeeping stops what still did)
        if (host.RefusalFor(app) is { } elsewhere)
        {
            logger.LogWarning("Not bringing {Application} up: {Reason}", app.Name, elsewhere);
            return false;
        }
        var deployer = providers.DeployerFor(app);
        var deployerBinding = providers.DeployerBindingFor(app);
        var now = time.GetUtcNow();

        // The live slot first: without it there is nothing to route to.
        if (app.LiveVersion is { } liveVersion)
        {
            var result = await ConvergeAsync(deployer, deployerBinding, app.LiveSlot, liveVersion, cancellationToken);
            var ok = result.Status == SlotDeployStatus.Ready;
            app.ObserveSlot(app.LiveSlot, ok ? SlotRunState.Running : SlotRunState.Failed, liveVersion, ok, result.Message, time.GetUtcNow());
            if (!ok && _faults.Report(app.Name, RuntimeFaultKind.LiveSlot, $"live slot {app.LiveSlot.Name()} ({liveVersion}) cannot start: {result.Message}"))
                logger.LogError("Live slot {Slot} of {Application} ({Version}) is not running: {Reason}", app.LiveSlot.Name(), app.Name, liveVersion, result.Message);
            else if (ok && _faults.Clear(app.Name, RuntimeFaultKind.LiveSlot))
                logger.LogInformation("Live slot {Slot} of {Application} ({Version}) runs again", app.LiveSlot.Name(), app.Name, liveVersion);
        }

        // A still-open hold window promises an instant rollback, so the previous slot must be warm again.
        var standby = app.SlotStatusOf(app.StandbySlot);
        if (app.RollbackAvailableUntil > now && standby.Version is { } previousVersion)
        {
            var result = await ConvergeAsync(deployer, deployerBinding, app.StandbySlot, previousVersion, cancellationToken);
            if (result.Status == SlotDeployStatus.Ready)
                app.ObserveSlot(app.StandbySlot, SlotRunState.Running, previousVersion, true, result.Message, time.GetUtcNow());
            else
            {
                await deployer.StopAsync(deployerBinding, app.StandbySlot, cancellationToken);
                app.ReleasePreviousSlot(Actor.System, time.GetUtcNow(), $"previous slot could not be restarted: {result.Message}");
            }
        }

        var router = providers.RouterFor(app);
        var routerBinding = providers.RouterBindingFor(app);
        var publicUrl = await router.AttachAsync(routerBinding, app.LiveSlot, cancellationToken);
        app.AttachedAt(publicUrl, RuntimeHost.IsHostLocal(app) ? host.Id : null, time.GetUtcNow());
        if (EmbeddedRouterSettings.PinnedPort(app.RouterKind, app.RouterSettingsJson, publicUrl) is { } pinned)
            app.PinRouterSettings(pinned, Actor.System, time.GetUtcNow(), $"listenPort 0 was resolved to {publicUrl.Port}: kept so the public URL stays the same");

        // After a crash between a router flip and its record, the record wins (unless a switch is in flight; it resumes itself).
        var switching = await db.Deployments.AnyAsync(d => d.ApplicationId == app.Id && d.State == DeploymentState.Switching, cancellationToken);
        var routed = await router.ReadLiveSlotAsync(routerBinding, cancellationToken);
        if (!switching && routed is { } actual && actual != app.LiveSlot)
        {
            await router.SwitchAsync(routerBinding, app.LiveSlot, cancellationToken);
            app.Record(Actor.System, "router.reconciled", time.GetUtcNow(), before: actual.Name(), after: app.LiveSlot.Name(),
                reason: "the router disagreed with the recorded live slot at start-up");
        }
        await db.SaveChangesAsync(cancellationToken);
        _faults.Clear(app.Name, RuntimeFaultKind.BringUp);
        logger.LogInformation("{Application} serves {Version} from {Slot} at {PublicUrl}", app.Name, app.LiveVersion, app.LiveSlot.Name(), publicUrl);
        await HousekeepAsync(app.Id, cancellationToken);
        return true;
    }

    /// <summary>Stops slots nothing needs (hold window over, abandoned) and refreshes slot health. Holds the application lock.</summary>
    public async Task HousekeepAsync(Guid applicationId, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        // FOR UPDATE also blocks a new deployment's insert (its foreign-key check) until we are done deciding.
        await db.Database.ExecuteSqlAsync($"SELECT 1 FROM applications WHERE id = {applicationId} FOR UPDATE", cancellationToken);
        var app = await db.Applications.SingleAsync(a => a.Id == applicationId, cancellationToken);
        if (host.RefusalFor(app) is not null) return; // not ours
        if (app.ArchivedAt is not null)
        {
            await StopArchivedAsync(app, cancellationToken);
            await db.SaveChangesAsync(cancellationToken);
            await tx.CommitAsync(cancellationToken);
            return;
        }
        if (app.PublicUrl is null) return; // not brought up yet
        var inFlight = await db.Deployments.Where(d => d.ApplicationId == applicationId && DeploymentStates.InFlight.Contains(d.State))
            .Select(d => new { d.TargetSlot }).FirstOrDefaultAsync(cancellationToken);
        var deployer = providers.DeployerFor(app);
        var binding = providers.DeployerBindingFor(app);
        var now = time.GetUtcNow();

        var standby = app.StandbySlot;
        var standbyNeeded = inFlight is not null || app.RollbackAvailableUntil > now;
        if (!standbyNeeded && app.SlotStatusOf(standby).State != SlotRunState.Stopped)
        {
            await deployer.StopAsync(binding, standby, cancellationToken);
            if (app.RollbackAvailableUntil is not null) app.ReleasePreviousSlot(Actor.System, now, "hold window ended");
            else app.ObserveSlot(standby, SlotRunState.Stopped, app.SlotStatusOf(standby).Version, false, "stopped: not needed", now);
        }
        else if (!standbyNeeded)
        {
            // Recorded as stopped; make sure nothing was left running there (e.g. started just before a crash).
            var leftover = await deployer.ObserveAsync(binding, standby, cancellationToken);
            if (leftover.Running) await deployer.StopAsync(binding, standby, cancellationToken);
        }

        foreach (var slot in new[] { app.LiveSlot, standby })
        {
            var status = app.SlotStatusOf(slot);
            // A slot being deployed right now is reported by the deployment, not by this refresh.
            if (status.State is SlotRunState.Stopped or SlotRunState.Starting || (slot == standby && inFlight is not null)) continue;
            var seen = await deployer.ObserveAsync(binding, slot, cancellationToken);
            if (slot == app.LiveSlot) await WatchLiveSlotAsync(app, seen, inFlight is not null, now, cancellationToken);
            else app.ObserveSlot(slot, seen.Running ? SlotRunState.Running : SlotRunState.Failed, status.Version, seen.Running && seen.Healthy, seen.Message, now);
        }
        await db.SaveChangesAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// After <c>Succeeded</c> nothing else watches the live slot: a crash or failing health shows on the dashboard, is audited
    /// once per change and logged, and — when the policy asks and the previous slot is warm — becomes a rollback intent.
    /// </summary>
    private async Task WatchLiveSlotAsync(Application app, SlotObservation seen, bool releaseInFlight, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var wentDown = app.ObserveLiveSlot(seen.Running, seen.Healthy, seen.Message, now);
        if (!wentDown) return;
        var rollback = app.IsRollbackAvailable(now)
            ? $"rollback to {app.StandbySlot.Name()} {app.SlotStatusOf(app.StandbySlot).Version} is possible until {app.RollbackAvailableUntil:u}"
            : "no warm previous slot to roll back to";
        logger.LogError("Live slot {Slot} of {Application} ({Version}) stopped serving: {Reason}; {Rollback}",
            app.LiveSlot.Name(), app.Name, app.LiveVersion, seen.Message, rollback);
        // While a release is being monitored its own checks decide; afterwards only the policy may roll back on its own.
        if (releaseInFlight || !app.Policy.RollbackWhenLiveSlotFails || !app.IsRollbackAvailable(now)) return;
        var live = await db.Deployments
            .Where(d => d.ApplicationId == app.Id && d.TargetSlot == app.LiveSlot && d.State == DeploymentState.Succeeded)
            .OrderByDescending(d => d.CreatedAt).FirstOrDefaultAsync(cancellationToken);
        if (live is null || live.RollbackPending) return;
        live.RequestRollback(Actor.System, $"live slot {app.LiveSlot.Name()} ({app.LiveVersion}) stopped serving: {seen.Message}", automatic: true, now);
    }

    /// <summary>An archived application: both slots and the router are stopped (once; audited), by the runtime that ran them.</summary>
    private async Task StopArchivedAsync(Application app, CancellationToken cancellationToken)
    {
        if (app.PublicUrl is null && app.Blue.State == SlotRunState.Stopped && app.Green.State == SlotRunState.Stopped) return;
        var what = app.RuntimeDescription;
        var deployer = providers.DeployerFor(app);
        var binding = providers.DeployerBindingFor(app);
        foreach (var slot in new[] { Slot.Blue, Slot.Green }) await deployer.StopAsync(binding, slot, cancellationToken);
        await providers.RouterFor(app).DetachAsync(app.Name, cancellationToken);
        app.RuntimeStopped(what, time.GetUtcNow());
        logger.LogInformation("{Application} is archived: stopped {What}", app.Name, what);
    }

    private async Task<SlotDeployResult> ConvergeAsync(ISlotDeployer deployer, DeployerBinding binding, Slot slot, string version, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + StartDeadline;
        while (true)
        {
            var result = await deployer.DeployAsync(binding, slot, version, cancellationToken);
            if (result.Status != SlotDeployStatus.Pending || time.GetUtcNow() > deadline) return result;
            await Task.Delay(result.RetryAfter > TimeSpan.Zero ? result.RetryAfter : TimeSpan.FromMilliseconds(200), time, cancellationToken);
        }
    }
}
