using ControlPlane.Core.Deployments;
using ControlPlane.Core.Hooks;
using ControlPlane.UnitTests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.UnitTests.Hooks;

/// <summary>The contract waits for the end of the hold window and the stop of the previous slot, on a fake clock.</summary>
public sealed class AfterHoldTests
{
    private static readonly TimeSpan Hold = TimeSpan.FromMinutes(90);

    private static (Application App, Deployment Release, FakeTimeProvider Clock) SucceededWithContract()
    {
        var clock = new FakeTimeProvider(Builders.T0);
        var app = Builders.AnApplication().WithPolicy(p => p with { RequiredApprovals = 0 }).Build();
        var d = Deployment.Request(app, "2.0.0", People.Requester, null, clock.GetUtcNow());
        d.PlanLifecycle(new ReleaseLifecycle { Schema = new ReleaseSchema { Contract = new LifecycleHook { Kind = "sql", Script = "ALTER TABLE orders DROP COLUMN customer_name" } } });
        d.StartDeploying(clock.GetUtcNow());
        d.Deployed("green ready", clock.GetUtcNow());
        app.ObserveSlot(Slot.Green, SlotRunState.Running, "2.0.0", true, "ready", clock.GetUtcNow());
        d.Verified("checks pass", clock.GetUtcNow());
        d.BeginSwitch(People.Alice, clock.GetUtcNow());
        d.Switched("router on green", clock.GetUtcNow(), TimeSpan.FromMinutes(1));
        app.MakeLive(Slot.Green, null);
        app.ObserveSlot(Slot.Blue, SlotRunState.Running, "1.0.0", true, "warm", clock.GetUtcNow());
        clock.Advance(TimeSpan.FromMinutes(1));
        d.Succeed("no breach", clock.GetUtcNow());
        app.ExtendRollbackWindow(clock.GetUtcNow() + Hold);
        return (app, d, clock);
    }

    [Fact]
    public void The_contract_is_planned_last_and_a_succeeded_release_with_one_wakes_the_worker()
    {
        var (_, d, clock) = SucceededWithContract();
        Assert.Equal(["deploy", "verify", "approval", "switch", "monitor", "contract"], d.Steps.OrderBy(s => s.Order).Select(s => s.Name));
        Assert.Equal(clock.GetUtcNow(), d.NextRunAt);
        Assert.Equal(StepState.Pending, d.Step("contract").State);
    }

    [Fact]
    public void The_contract_waits_while_the_previous_version_is_warm_and_runs_once_its_slot_is_stopped()
    {
        var (app, d, clock) = SucceededWithContract();
        var holdEnd = clock.GetUtcNow() + Hold;

        var during = LifecycleSteps.AfterHold(app, d, clock.GetUtcNow());
        Assert.Equal((false, holdEnd), (during.Skip, during.Next));
        Assert.Contains("1.0.0 is still warm on blue for instant rollback", during.Message);

        clock.Advance(Hold - TimeSpan.FromSeconds(1));
        Assert.Equal(holdEnd, LifecycleSteps.AfterHold(app, d, clock.GetUtcNow()).Next);

        // The window is over, but the runtime has not stopped blue yet: still no contract.
        clock.Advance(TimeSpan.FromSeconds(2));
        var stopping = LifecycleSteps.AfterHold(app, d, clock.GetUtcNow());
        Assert.Contains("waits for blue (1.0.0) to be stopped", stopping.Message);
        Assert.NotNull(stopping.Next);

        app.ReleasePreviousSlot(Actor.System, clock.GetUtcNow(), "hold window ended");
        Assert.Equal((false, null, null), (LifecycleSteps.AfterHold(app, d, clock.GetUtcNow()) is var now ? (now.Skip, now.Message, now.Next) : default));
    }

    [Fact]
    public void A_release_that_no_longer_serves_never_runs_its_contract()
    {
        var (app, d, clock) = SucceededWithContract();
        app.MakeLive(Slot.Blue, null); // rolled back
        var gate = LifecycleSteps.AfterHold(app, d, clock.GetUtcNow());
        Assert.True(gate.Skip);
        Assert.True(d.SkipHookSteps(gate.Message!, clock.GetUtcNow()));
        Assert.Equal(StepState.Skipped, d.Step("contract").State);
    }
}
