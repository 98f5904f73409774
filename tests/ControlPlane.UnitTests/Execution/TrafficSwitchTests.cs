using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Routing;
using ControlPlane.UnitTests.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Execution;

/// <summary>
/// The switch and the rollback over the records the reconciler hands over, against a recording router and deployer
/// (Argo's fixture style): each test says which calls reach the providers, in which order, and what is recorded.
/// </summary>
public sealed class TrafficSwitchTests
{
    private const string App = "shop";
    private readonly CallLog _log = new();
    private readonly RecordingRouter _router;
    private readonly RecordingDeployer _deployer;

    public TrafficSwitchTests()
    {
        _router = new RecordingRouter(_log);
        _deployer = new RecordingDeployer(_log, _router);
    }

    private TrafficSwitch Switch(DeploymentBuilder builder) =>
        new(new ProviderRegistry([_router], [_deployer]), builder.Clock, NullLogger<TrafficSwitch>.Instance);

    /// <summary>Blue 1.0.0 live and routed; green holds 2.0.0 (healthy) — the state right before the switch.</summary>
    private (Application, Deployment, DeploymentBuilder) Switching()
    {
        var builder = ADeployment().InState(DeploymentState.Switching);
        var (app, d) = builder.BuildWithApplication();
        _router.AttachAsync(Binding(), Slot.Blue, default).GetAwaiter().GetResult();
        _router.Serves(App, Slot.Blue, "1.0.0");
        _router.Serves(App, Slot.Green, "2.0.0");
        _deployer.Observe(App, Slot.Blue, new SlotObservation(true, "1.0.0", true, "healthy"));
        _deployer.Observe(App, Slot.Green, new SlotObservation(true, "2.0.0", true, "healthy"));
        app.ObserveSlot(Slot.Blue, SlotRunState.Running, "1.0.0", true, "healthy", builder.Clock.GetUtcNow());
        app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "healthy", builder.Clock.GetUtcNow());
        return (app, d, builder);
    }

    private (Application, Deployment, DeploymentBuilder) Monitoring()
    {
        var (app, d, builder) = Switching();
        Switch(builder).CompleteSwitchAsync(app, d, Ct).GetAwaiter().GetResult();
        Assert.Equal(DeploymentState.Monitoring, d.State);
        app.ClearPendingAuditEvents();
        d.ClearPendingAuditEvents();
        return (app, d, builder);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static RouterBinding Binding() => new(App, default, new("http://127.0.0.1:9/"), new("http://127.0.0.1:10/"));

    private string[] Calls() => [.. _log.Calls.Where(c => !c.StartsWith("router attach", StringComparison.Ordinal))];

    [Fact]
    public async Task The_switch_flips_then_verifies_then_records_the_new_live_slot()
    {
        var (app, d, builder) = Switching();

        await Switch(builder).CompleteSwitchAsync(app, d, Ct);

        Assert.Equal(["router switch shop green", "router verify shop green 2.0.0"], Calls());
        Assert.Equal((DeploymentState.Monitoring, Slot.Green), (d.State, app.LiveSlot));
        Assert.NotNull(app.RollbackAvailableUntil);
    }

    [Fact]
    public async Task A_failed_data_plane_verification_reverts_the_router_and_fails_the_release()
    {
        var (app, d, builder) = Switching();
        _router.VerifyOverride = (_, _) => DataPlaneVerification.Fail("answered 1.0.0 from blue");

        await Switch(builder).CompleteSwitchAsync(app, d, Ct);

        Assert.Equal(["router switch shop green", "router verify shop green 2.0.0", "router switch shop blue"], Calls());
        Assert.Equal((DeploymentState.Failed, Slot.Blue, Slot.Blue), (d.State, app.LiveSlot, _router.LiveOf(App)));
        Assert.Contains("Router reverted to blue", d.Outcome);
    }

    [Fact]
    public async Task A_crash_after_the_flip_but_before_its_record_re_flips_idempotently_and_verifies()
    {
        var (app, d, builder) = Switching();
        await _router.SwitchAsync(Binding(), Slot.Green, Ct); // the previous process flipped, then died

        await Switch(builder).CompleteSwitchAsync(app, d, Ct);

        Assert.Equal(["router switch shop green", "router switch shop green", "router verify shop green 2.0.0"], Calls());
        Assert.Equal((DeploymentState.Monitoring, Slot.Green), (d.State, app.LiveSlot));
    }

    [Fact]
    public async Task Without_recorded_intent_the_rollback_touches_nothing()
    {
        var (app, d, builder) = Monitoring();
        var before = Calls().Length;

        await Switch(builder).RollbackAsync(app, d, null, Ct);

        Assert.Equal(before, Calls().Length);
        Assert.Equal((DeploymentState.Monitoring, Slot.Green), (d.State, app.LiveSlot));
    }

    [Fact]
    public async Task Rollback_intent_is_carried_out_observe_previous_flip_verify_record_by_the_requester()
    {
        var (app, d, builder) = Monitoring();
        d.RequestRollback(People.OnCall, "error rate up", automatic: false, builder.Clock.GetUtcNow());
        var requested = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("rollback.requested", "oscar"), (requested.Action, requested.Actor));
        var before = Calls().Length;

        await Switch(builder).RollbackAsync(app, d, "Incident freeze", Ct);

        Assert.Equal(["deployer observe shop blue", "router switch shop blue", "router verify shop blue 1.0.0"], Calls()[before..]);
        Assert.Equal((DeploymentState.RolledBack, Slot.Blue, false), (d.State, app.LiveSlot, d.RollbackPending));
        var rolledBack = Assert.Single(app.PendingAuditEvents, e => e.Action == "application.rolled-back");
        Assert.Equal(("oscar", "error rate up"), (rolledBack.Actor, rolledBack.Reason));
        Assert.Contains("\"duringFreeze\":\"Incident freeze\"", rolledBack.Details);
        Assert.True(d.BreakGlassRollback);
    }

    [Fact]
    public async Task Rollback_to_an_unhealthy_previous_slot_is_refused_without_touching_the_router()
    {
        var (app, d, builder) = Monitoring();
        _deployer.Observe(App, Slot.Blue, new SlotObservation(false, null, false, "process exited"));
        d.RequestRollback(People.OnCall, "error rate up", automatic: false, builder.Clock.GetUtcNow());
        var before = Calls().Length;

        await Switch(builder).RollbackAsync(app, d, null, Ct);

        Assert.Equal(["deployer observe shop blue"], Calls()[before..]);
        Assert.Equal((DeploymentState.Monitoring, Slot.Green, Slot.Green), (d.State, app.LiveSlot, _router.LiveOf(App)));
        Assert.Contains("is not healthy (process exited)", d.RollbackRefusal);
        Assert.Contains(d.PendingAuditEvents, e => e.Action == "rollback.refused");
    }

    [Fact]
    public async Task A_rollback_the_data_plane_does_not_confirm_is_reverted_and_refused()
    {
        var (app, d, builder) = Monitoring();
        _router.VerifyOverride = (_, slot) => slot == Slot.Blue ? DataPlaneVerification.Fail("answered 2.0.0 from green") : null;
        d.RequestRollback(Actor.System, "breach", automatic: true, builder.Clock.GetUtcNow());
        var before = Calls().Length;

        await Switch(builder).RollbackAsync(app, d, null, Ct);

        Assert.Equal(["deployer observe shop blue", "router switch shop blue", "router verify shop blue 1.0.0", "router switch shop green"], Calls()[before..]);
        Assert.Equal((DeploymentState.Monitoring, Slot.Green, Slot.Green), (d.State, app.LiveSlot, _router.LiveOf(App)));
        Assert.Contains("Router reverted to green", d.RollbackRefusal);
    }

    [Fact]
    public async Task A_rollback_intent_persisted_before_a_crash_is_carried_out_by_the_next_process()
    {
        var (app, d, builder) = Monitoring();
        d.RequestRollback(People.OnCall, "bad release", automatic: false, builder.Clock.GetUtcNow());
        // The process that recorded the intent died before flipping: the router never moved.
        Assert.Equal(Slot.Green, _router.LiveOf(App));
        var before = Calls().Length;

        await Switch(builder).RollbackAsync(app, d, null, Ct); // a fresh switch on the stored records
        await Switch(builder).RollbackAsync(app, d, null, Ct); // and once more: nothing left to do

        Assert.Equal(["deployer observe shop blue", "router switch shop blue", "router verify shop blue 1.0.0"], Calls()[before..]);
        Assert.Equal((DeploymentState.RolledBack, Slot.Blue), (d.State, app.LiveSlot));
    }

    [Fact]
    public async Task A_rollback_after_traffic_already_moved_on_is_refused()
    {
        var (app, d, builder) = Monitoring();
        d.RequestRollback(People.OnCall, "late", automatic: false, builder.Clock.GetUtcNow());
        app.MakeLive(Slot.Blue, null); // someone else already went back
        var before = Calls().Length;

        await Switch(builder).RollbackAsync(app, d, null, Ct);

        Assert.Empty(Calls()[before..]);
        Assert.Contains("no longer live", d.RollbackRefusal);
    }
}
