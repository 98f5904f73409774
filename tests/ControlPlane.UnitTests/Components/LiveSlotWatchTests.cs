using Bunit;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using ControlPlane.Web.Components.Shared;
using ControlPlane.Web.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MudBlazor.Services;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Components;

/// <summary>
/// A live slot that dies after Succeeded: audited once per change, shown on the overview card (the alert and the rollback
/// control it renders), and the rollback offered while the previous slot is warm.
/// </summary>
public sealed class LiveSlotWatchTests : IDisposable
{
    private readonly BunitContext _ctx = new();
    private readonly FakeTimeProvider _clock = new(T0.AddMinutes(5));

    public LiveSlotWatchTests()
    {
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
        _ctx.Services.AddMudServices();
        _ctx.Services.AddSingleton<TimeProvider>(_clock);
    }

    /// <summary>Green 2.0.0 live after a release, blue 1.0.0 warm for 15 more minutes.</summary>
    private static Application SwitchedToGreen()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();
        app.ObserveSlot(Slot.Blue, SlotRunState.Running, "1.0.0", true, "healthy", T0.AddMinutes(1));
        app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "healthy", T0.AddMinutes(1));
        app.MakeLive(Slot.Green, T0.AddMinutes(20));
        app.ClearPendingAuditEvents();
        return app;
    }

    [Fact]
    public void A_live_slot_that_dies_is_audited_once_per_change_not_per_look()
    {
        var app = SwitchedToGreen();

        Assert.True(app.ObserveLiveSlot(false, false, "killed by signal 9", T0.AddMinutes(5)));
        Assert.False(app.ObserveLiveSlot(false, false, "killed by signal 9", T0.AddMinutes(5).AddSeconds(5)));
        Assert.False(app.ObserveLiveSlot(true, true, "healthy again", T0.AddMinutes(6)));

        Assert.Equal(["slot.live-unhealthy", "slot.live-recovered"], app.PendingAuditEvents.Select(e => e.Action));
        Assert.Equal("killed by signal 9", app.PendingAuditEvents[0].Reason);
        Assert.Equal(("green 2.0.0 serving", "green 2.0.0 not running"), (app.PendingAuditEvents[0].BeforeState, app.PendingAuditEvents[0].AfterState));
    }

    [Fact]
    public void The_card_shows_the_dead_live_slot_and_offers_the_rollback_while_the_previous_slot_is_warm()
    {
        var app = SwitchedToGreen();
        app.ObserveLiveSlot(false, false, "killed by signal 9", T0.AddMinutes(5));

        var alert = _ctx.Render<LiveSlotAlert>(p => p.Add(x => x.App, app));
        var rollback = _ctx.Render<RollbackControl>(p => p.Add(x => x.App, app).Add(x => x.User, new SignedInUser("oscar", Role.OnCall, "10.0.0.1")));

        Assert.Contains("Live slot green (2.0.0) is not serving: killed by signal 9", alert.Find("[data-testid=live-slot-down]").TextContent);
        Assert.Contains("blue (1.0.0) is warm", alert.Markup);
        Assert.NotNull(rollback.Find("[data-testid=rollback-button]"));
    }

    [Fact]
    public void A_healthy_live_slot_shows_no_alert()
    {
        var alert = _ctx.Render<LiveSlotAlert>(p => p.Add(x => x.App, SwitchedToGreen()));
        Assert.Empty(alert.FindAll("[data-testid=live-slot-down]"));
    }

    [Fact]
    public void Without_a_warm_previous_slot_the_alert_says_what_to_do_instead()
    {
        var app = SwitchedToGreen();
        app.ReleasePreviousSlot(Actor.System, T0.AddMinutes(4), "hold window ended");
        app.ObserveLiveSlot(true, false, "health answered 500", T0.AddMinutes(5));

        var alert = _ctx.Render<LiveSlotAlert>(p => p.Add(x => x.App, app));

        Assert.Contains("No warm previous slot: start a new release", alert.Find("[data-testid=live-slot-down]").TextContent);
    }

    public void Dispose() => _ctx.Dispose();
}
