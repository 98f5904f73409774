using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

public sealed class ApplicationTests
{
    [Fact]
    public void Register_puts_the_initial_version_on_the_live_slot_and_audits_it()
    {
        var app = AnApplication().Named("billing").Running("1.4.0", Slot.Green).RegisteredAt(T0).Build();

        Assert.Equal("billing", app.Name);
        Assert.Equal(T0, app.CreatedAt);
        Assert.Equal(Slot.Green, app.LiveSlot);
        Assert.Equal(Slot.Blue, app.StandbySlot);
        Assert.Equal("1.4.0", app.LiveVersion);
        Assert.Equal(SlotRunState.Starting, app.Green.State);
        Assert.Equal((null, SlotRunState.Stopped), (app.Blue.Version, app.Blue.State));
        Assert.Null(app.RollbackAvailableUntil);
        var e = Assert.Single(app.PendingAuditEvents);
        Assert.Equal(("application.registered", "rita", "billing", "green 1.4.0 live", T0), (e.Action, e.Actor, e.Application, e.AfterState, e.OccurredAt));
        Assert.Null(e.DeploymentId);
        Assert.Contains("\"routerKind\":\"embedded\"", e.Details, StringComparison.Ordinal);
        Assert.Contains("\"initialVersion\":\"1.4.0\"", e.Details, StringComparison.Ordinal);
    }

    [Fact]
    public void ObserveSlot_records_a_change_and_ignores_a_repeat()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();
        app.ClearPendingAuditEvents();
        var first = T0.AddMinutes(1);

        Assert.True(app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "ready", first));
        Assert.False(app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "ready", first.AddMinutes(1)));

        Assert.Equal(("2.0.0", SlotRunState.Running, true, "ready", first),
            (app.Green.Version, app.Green.State, app.Green.Healthy, app.Green.Message, app.Green.ObservedAt));
        Assert.Empty(app.PendingAuditEvents);
    }

    [Theory]
    [InlineData("state")]
    [InlineData("version")]
    [InlineData("healthy")]
    [InlineData("message")]
    public void ObserveSlot_reports_a_change_of_any_single_field(string field)
    {
        var app = AnApplication().Build();
        app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "ready", T0);
        var later = T0.AddMinutes(1);

        var changed = field switch
        {
            "state" => app.ObserveSlot(Slot.Green, SlotRunState.Failed, "2.0.0", true, "ready", later),
            "version" => app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.1", true, "ready", later),
            "healthy" => app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", false, "ready", later),
            _ => app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "slow", later),
        };

        Assert.True(changed);
        Assert.Equal(later, app.Green.ObservedAt);
    }

    [Fact]
    public void Rollback_is_unavailable_without_a_window()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();
        app.ObserveSlot(Slot.Green, SlotRunState.Running, "0.9.0", true, null, T0);

        Assert.False(app.IsRollbackAvailable(T0));
    }

    [Fact]
    public void Rollback_is_available_until_the_window_ends_while_the_standby_runs()
    {
        var (app, until) = SwitchedToGreenWithWarmBlue();

        Assert.True(app.IsRollbackAvailable(until.AddTicks(-1)));
        Assert.False(app.IsRollbackAvailable(until));
        Assert.False(app.IsRollbackAvailable(until.AddMinutes(1)));
    }

    [Theory]
    [InlineData(SlotRunState.Stopped)]
    [InlineData(SlotRunState.Starting)]
    [InlineData(SlotRunState.Failed)]
    public void Rollback_is_unavailable_when_the_standby_is_not_running(SlotRunState standbyState)
    {
        var (app, until) = SwitchedToGreenWithWarmBlue();

        app.ObserveSlot(Slot.Blue, standbyState, "1.0.0", false, null, T0.AddMinutes(3));

        Assert.False(app.IsRollbackAvailable(until.AddMinutes(-5)));
    }

    [Fact]
    public void ReleasePreviousSlot_stops_the_standby_and_ends_the_rollback_window()
    {
        var (app, until) = SwitchedToGreenWithWarmBlue();
        app.ClearPendingAuditEvents();

        app.ReleasePreviousSlot(Actor.System, until, "hold window ended");

        Assert.Null(app.RollbackAvailableUntil);
        Assert.Equal((SlotRunState.Stopped, false, "hold window ended"), (app.Blue.State, app.Blue.Healthy, app.Blue.Message));
        Assert.False(app.IsRollbackAvailable(until.AddMinutes(-1)));
        var e = Assert.Single(app.PendingAuditEvents);
        Assert.Equal(("slot.stopped", "blue 1.0.0 warm", "blue stopped", "hold window ended"), (e.Action, e.BeforeState, e.AfterState, e.Reason));
    }

    /// <summary>Blue ran 1.0.0, green now serves 2.0.0 and blue stays warm for 15 minutes (what TrafficSwitch does).</summary>
    private static (Application App, DateTimeOffset Until) SwitchedToGreenWithWarmBlue()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();
        app.ObserveSlot(Slot.Blue, SlotRunState.Running, "1.0.0", true, null, T0.AddMinutes(1));
        app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, null, T0.AddMinutes(1));
        var until = T0.AddMinutes(20);
        app.MakeLive(Slot.Green, until);
        Assert.Equal((Slot.Green, Slot.Blue, "2.0.0"), (app.LiveSlot, app.StandbySlot, app.LiveVersion));
        return (app, until);
    }
}
