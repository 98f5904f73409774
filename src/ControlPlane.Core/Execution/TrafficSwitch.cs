using System.Text.Json;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Execution;

/// <summary>
/// Where traffic moves between slots: the forward switch of a release and its rollback. The reconcile loop hands over the
/// application and deployment it has loaded and locked (application row first, then deployment) and saves what this
/// changes in the same transaction, so a switch, a person's rollback and an automatic rollback never interleave. Both
/// verify the data plane before recording the new live slot — traffic is never left on an unverified slot.
/// </summary>
public sealed class TrafficSwitch(ProviderRegistry providers, TimeProvider time, ILogger<TrafficSwitch> logger)
{
    /// <summary>Completes a deployment in <see cref="DeploymentState.Switching"/>. Idempotent: after a crash it re-flips (a no-op) and re-verifies.</summary>
    public async Task CompleteSwitchAsync(Application app, Deployment d, CancellationToken cancellationToken)
    {
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
        catch (Exception ex) when (IsRouterFault(ex))
        {
            failure = $"router {app.RouterKind} failed to switch: {ex.Message}";
        }

        if (failure is not null)
        {
            logger.LogWarning("Not switching {Application} to {Slot}: {Reason}; reverting the router to {From}", app.Name, d.TargetSlot.Name(), failure, d.FromSlot.Name());
            failure += await RevertAsync(router, binding, d.FromSlot, cancellationToken);
            d.SwitchFailed(failure, time.GetUtcNow());
        }
    }

    /// <summary>
    /// Carries out the rollback recorded on <paramref name="d"/> (the release now live): flips the router to the warm previous
    /// slot, proves it through the data plane, records it. When it cannot, the intent is marked refused with a reason an
    /// operator can act on and traffic stays (or is put back) where it was.
    /// </summary>
    /// <param name="freeze">The freeze window in force, if any (a person's rollback is break-glass and allowed; it is flagged).</param>
    public async Task RollbackAsync(Application app, Deployment d, string? freeze, CancellationToken cancellationToken)
    {
        if (!d.RollbackPending) return;
        var now = time.GetUtcNow();
        var by = d.RollbackRequester;
        var reason = d.RollbackReason ?? "";
        var automatic = d.RollbackAutomatic;
        if (app.LiveSlot != d.TargetSlot)
        {
            Refuse(app, d, $"{d.Version} on {d.TargetSlot.Name()} is no longer live ({app.LiveSlot.Name()} {app.LiveVersion} is); nothing was changed.");
            return;
        }
        var previous = app.StandbySlot;
        var previousVersion = app.SlotStatusOf(previous).Version;
        if (!app.IsRollbackAvailable(now) || previousVersion is null)
        {
            Refuse(app, d, NoWarmSlotMessage(app, releasing: null, d.FromVersion));
            return;
        }

        var observed = await providers.DeployerFor(app).ObserveAsync(providers.DeployerBindingFor(app), previous, cancellationToken);
        if (!observed.Running || !observed.Healthy)
        {
            Refuse(app, d, PreviousUnhealthyMessage(app, observed.Message));
            return;
        }

        var router = providers.RouterFor(app);
        var binding = providers.RouterBindingFor(app);
        var from = app.LiveSlot;
        var fromVersion = app.LiveVersion;
        DataPlaneVerification proof;
        try
        {
            await router.SwitchAsync(binding, previous, cancellationToken);
            proof = await router.VerifyDataPlaneAsync(binding, previous, previousVersion, cancellationToken);
        }
        catch (Exception ex) when (IsRouterFault(ex))
        {
            proof = DataPlaneVerification.Fail($"router {app.RouterKind} failed: {ex.Message}");
        }
        if (!proof.Verified)
        {
            var revert = await RevertAsync(router, binding, from, cancellationToken);
            Refuse(app, d, $"Rollback not completed: after the flip the data plane did not show {previousVersion} ({proof.Message}).{revert}");
            return;
        }

        now = time.GetUtcNow();
        app.MakeLive(previous, null);
        app.Record(by, "application.rolled-back", now, d.Id, $"{from.Name()} {fromVersion}", $"{previous.Name()} {previousVersion}", reason,
            JsonSerializer.Serialize(new { automatic, breakGlass = !automatic && freeze is not null, duringFreeze = freeze, proof = proof.Message, requestId = d.RollbackRequestId }));
        d.RolledBack(by, reason, automatic, now, freeze is null ? null : $"during the freeze {freeze}");
        logger.LogWarning("Rolled back {Application} from {From} ({FromVersion}) to {To} ({ToVersion}) by {Actor}: {Reason}",
            app.Name, from.Name(), fromVersion, previous.Name(), previousVersion, by.Name, reason);
    }

    private void Refuse(Application app, Deployment d, string why)
    {
        logger.LogWarning("Not rolling back {Application}: {Reason}", app.Name, why);
        d.RollbackRefused(why, time.GetUtcNow());
    }

    /// <summary>Why there is nothing warm to roll back to, in words an operator can act on.</summary>
    /// <param name="liveBefore">The version that was live before the current one (the live release's <c>FromVersion</c>); a failed or
    /// aborted release left on the standby slot never was, so it is never offered as the way back.</param>
    public static string NoWarmSlotMessage(Application app, Deployment? releasing, string? liveBefore = null)
    {
        var previous = app.StandbySlot;
        var previousVersion = app.SlotStatusOf(previous).Version;
        if (releasing is not null && releasing.State.IsBeforeSwitch())
            return $"Nothing to roll back: {app.Name} still serves {app.LiveVersion} from {app.LiveSlot.Name()}, and the standby slot " +
                   $"{previous.Name()} holds the release in progress ({releasing.Version}, {releasing.State}). Abort that release instead.";
        var why = app.RollbackAvailableUntil is { } until
            ? $"the hold window ended at {until:u}"
            : liveBefore is null ? "no earlier version was live through a release" : "it is no longer kept running";
        return $"No warm previous slot to roll back to: {previous.Name()} ({previousVersion ?? "empty"}) is not available ({why}). " +
               (liveBefore is null || liveBefore == app.LiveVersion ? "" : $"Start a new release of {liveBefore} (live before {app.LiveVersion}) to go back to it.");
    }

    public static string PreviousUnhealthyMessage(Application app, string? observation)
    {
        var previous = app.StandbySlot;
        var previousVersion = app.SlotStatusOf(previous).Version;
        return $"The previous slot {previous.Name()} ({previousVersion}) is not healthy ({observation}); " +
               $"traffic stays on {app.LiveSlot.Name()}. Start a new release of {previousVersion} instead.";
    }

    private static bool IsRouterFault(Exception ex) => ex is RouterException or HttpRequestException or IOException;

    private async Task<string> RevertAsync(ITrafficRouter router, RouterBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        try
        {
            await router.SwitchAsync(binding, slot, cancellationToken);
            return $" Router reverted to {slot.Name()}.";
        }
        catch (Exception ex) when (IsRouterFault(ex))
        {
            logger.LogError(ex, "Reverting the router of {Application} to {Slot} failed", binding.Application, slot.Name());
            return $" Reverting the router to {slot.Name()} ALSO FAILED: {ex.Message} — check the router by hand.";
        }
    }
}

/// <param name="RolledBack">Traffic moved back to the previous slot.</param>
/// <param name="Pending">The leader has not reported within the wait; poll the deployment.</param>
public sealed record RollbackOutcome(bool RolledBack, bool Pending, Guid DeploymentId, Slot LiveSlot, string? LiveVersion, string Message);
