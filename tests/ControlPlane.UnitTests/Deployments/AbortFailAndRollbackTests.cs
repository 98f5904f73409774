using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

public sealed class AbortFailAndRollbackTests
{
    private static readonly DateTimeOffset Later = T0.AddHours(1);

    [Fact]
    public void Abort_while_deploying_fails_the_running_step_and_skips_the_rest()
    {
        var d = ADeployment().InState(DeploymentState.Deploying).Build();

        d.Abort(People.Bob, "wrong build", Later);

        Assert.Equal(DeploymentState.Aborted, d.State);
        Assert.True(d.CleanupPending);
        Assert.Equal("Aborted by bob: wrong build", d.Outcome);
        Assert.Equal(Later, d.FinishedAt);
        Assert.Equal(Later, d.NextRunAt);
        var deploy = d.Step(StepNames.Deploy);
        Assert.Equal((StepState.Failed, "aborted by bob: wrong build"), (deploy.State, deploy.Message));
        Assert.All(d.Steps.Where(s => s.Name != StepNames.Deploy), s => Assert.Equal((StepState.Skipped, Later), (s.State, s.FinishedAt)));
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.aborted", "Deploying", "Aborted", "bob", "wrong build"), (e.Action, e.BeforeState, e.AfterState, e.Actor, e.Reason));
    }

    [Theory]
    [InlineData(DeploymentState.Queued)]
    [InlineData(DeploymentState.Verifying)]
    [InlineData(DeploymentState.AwaitingApproval)]
    [InlineData(DeploymentState.ReadyToSwitch)]
    public void Abort_is_allowed_before_the_switch(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();

        d.Abort(People.Bob, "changed my mind", Later);

        Assert.Equal(DeploymentState.Aborted, d.State);
        Assert.True(d.CleanupPending);
        Assert.DoesNotContain(d.Steps, s => s.State is StepState.Pending or StepState.Running);
        Assert.Equal(StepState.Skipped, d.Step(StepNames.Switch).State);
        Assert.Equal(StepState.Skipped, d.Step(StepNames.Monitor).State);
    }

    [Theory]
    [InlineData(DeploymentState.Switching, "The switch is in progress and cannot be aborted; wait for it to finish, then roll back.")]
    [InlineData(DeploymentState.Monitoring, "Traffic has already moved to the new version; use rollback instead of abort.")]
    public void Abort_after_traffic_may_have_moved_is_refused_with_advice(DeploymentState state, string message)
    {
        var d = ADeployment().InState(state).Build();

        var ex = Assert.Throws<DomainException>(() => d.Abort(People.Bob, "too late", Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal(message, ex.Message);
        Assert.Equal(state, d.State);
        Assert.False(d.CleanupPending);
        Assert.Empty(d.PendingAuditEvents);
    }

    [Theory]
    [InlineData(DeploymentState.Succeeded)]
    [InlineData(DeploymentState.Failed)]
    [InlineData(DeploymentState.Aborted)]
    [InlineData(DeploymentState.RolledBack)]
    public void Abort_of_an_ended_deployment_is_refused(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();

        var ex = Assert.Throws<DomainException>(() => d.Abort(People.Bob, "cleanup", Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Deployment {d.Id} has already ended ({state}).", ex.Message);
        Assert.Equal(state, d.State);
    }

    [Fact]
    public void Fail_during_verification_says_traffic_never_moved()
    {
        var d = ADeployment().InState(DeploymentState.Verifying).Build();

        d.Fail("Verification failed: check 'health' on green: 500", Later);

        Assert.Equal(DeploymentState.Failed, d.State);
        Assert.True(d.CleanupPending);
        Assert.Equal("Verification failed: check 'health' on green: 500 — traffic never moved.", d.Outcome);
        Assert.Equal(Later, d.NextRunAt);
        Assert.Equal(StepState.Succeeded, d.Step(StepNames.Deploy).State);
        Assert.Equal((StepState.Failed, "Verification failed: check 'health' on green: 500"),
            (d.Step(StepNames.Verify).State, d.Step(StepNames.Verify).Message));
        Assert.Equal([StepState.Skipped, StepState.Skipped, StepState.Skipped],
            new[] { StepNames.Approval, StepNames.Switch, StepNames.Monitor }.Select(n => d.Step(n).State));
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.failed", "Verifying", "Failed", "system"), (e.Action, e.BeforeState, e.AfterState, e.Actor));
    }

    [Theory]
    [InlineData(DeploymentState.Switching)]
    [InlineData(DeploymentState.Monitoring)]
    [InlineData(DeploymentState.Succeeded)]
    [InlineData(DeploymentState.Aborted)]
    public void Fail_after_the_switch_or_at_the_end_is_refused(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();

        var ex = Assert.Throws<DomainException>(() => d.Fail("boom", Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Cannot fail a deployment in state {state} this way.", ex.Message);
        Assert.Equal(state, d.State);
    }

    [Fact]
    public void SwitchFailed_ends_failed_with_the_router_reverted()
    {
        var d = ADeployment().InState(DeploymentState.Switching).Build();

        d.SwitchFailed("data plane answered 1.0.0", Later);

        Assert.Equal(DeploymentState.Failed, d.State);
        Assert.True(d.CleanupPending);
        Assert.Equal("Switch failed, router reverted to blue: data plane answered 1.0.0", d.Outcome);
        Assert.Equal(StepState.Failed, d.Step(StepNames.Switch).State);
        Assert.Equal(StepState.Skipped, d.Step(StepNames.Monitor).State);
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.switch-failed", "Switching", "Failed", "data plane answered 1.0.0"), (e.Action, e.BeforeState, e.AfterState, e.Reason));
    }

    [Fact]
    public void SwitchFailed_outside_Switching_is_a_conflict()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).Build();

        var ex = Assert.Throws<DomainException>(() => d.SwitchFailed("x", Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal(DeploymentState.Monitoring, d.State);
    }

    [Fact]
    public void Automatic_rollback_during_monitoring_fails_the_monitor_step()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).Build();

        d.RolledBack(Actor.System, "check 'health' failed", automatic: true, Later);

        Assert.Equal(DeploymentState.RolledBack, d.State);
        Assert.True(d.CleanupPending);
        Assert.Equal("Automatically rolled back: check 'health' failed", d.Outcome);
        Assert.Equal((StepState.Failed, "check 'health' failed"), (d.Step(StepNames.Monitor).State, d.Step(StepNames.Monitor).Message));
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.auto-rolled-back", "Monitoring", "RolledBack", "system"), (e.Action, e.BeforeState, e.AfterState, e.Actor));
    }

    [Fact]
    public void A_person_rolling_back_during_monitoring_is_named()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).Build();

        d.RolledBack(People.OnCall, "error rate up", automatic: false, Later);

        Assert.Equal("Rolled back by oscar: error rate up", d.Outcome);
        // Not a failed check: the monitor step says who ended it.
        Assert.Equal((StepState.Skipped, "ended by oscar's rollback: error rate up"), (d.Step(StepNames.Monitor).State, d.Step(StepNames.Monitor).Message));
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.rolled-back", "oscar", "error rate up"), (e.Action, e.Actor, e.Reason));
    }

    [Fact]
    public void Rollback_after_success_keeps_the_monitor_step_succeeded()
    {
        var d = ADeployment().InState(DeploymentState.Succeeded).Build();

        d.RolledBack(People.OnCall, "customer reports", automatic: false, Later);

        Assert.Equal(DeploymentState.RolledBack, d.State);
        Assert.Equal(StepState.Succeeded, d.Step(StepNames.Monitor).State);
        Assert.Equal(Later, d.FinishedAt);
        Assert.Equal(("Succeeded", "RolledBack"), (d.PendingAuditEvents[0].BeforeState, d.PendingAuditEvents[0].AfterState));
    }

    [Theory]
    [InlineData(DeploymentState.Queued)]
    [InlineData(DeploymentState.ReadyToSwitch)]
    [InlineData(DeploymentState.Switching)]
    [InlineData(DeploymentState.Failed)]
    [InlineData(DeploymentState.RolledBack)]
    public void Rollback_of_a_release_that_is_not_live_is_refused(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();

        var ex = Assert.Throws<DomainException>(() => d.RolledBack(People.OnCall, "x", automatic: false, Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Deployment {d.Id} is {state}; only a live release can be rolled back.", ex.Message);
        Assert.Equal(state, d.State);
    }

    [Fact]
    public void CleanedUp_clears_the_cleanup_flag()
    {
        var d = ADeployment().InState(DeploymentState.Aborted).Build();
        Assert.True(d.CleanupPending);

        d.CleanedUp();

        Assert.False(d.CleanupPending);
    }
}
