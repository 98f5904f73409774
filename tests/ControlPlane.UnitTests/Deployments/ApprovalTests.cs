using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

public sealed class ApprovalTests
{
    private static readonly DateTimeOffset Later = T0.AddHours(1);

    [Fact]
    public void Requester_cannot_approve_their_own_release()
    {
        var d = ADeployment().InState(DeploymentState.AwaitingApproval).RequestedBy(People.Alice).Build();

        var ex = Assert.Throws<DomainException>(() => d.Approve(People.Alice, null, Later));

        Assert.Equal(DomainErrorKind.Forbidden, ex.Kind);
        Assert.Equal("alice requested this release and the policy forbids approving one's own release; another person must approve.", ex.Message);
        Assert.Equal(DeploymentState.AwaitingApproval, d.State);
        Assert.Empty(d.Approvals);
        Assert.Empty(d.PendingAuditEvents);
    }

    [Fact]
    public void Requester_may_approve_their_own_release_when_the_policy_allows_it()
    {
        var d = ADeployment().InState(DeploymentState.AwaitingApproval).RequestedBy(People.Alice)
            .WithPolicy(p => p with { AllowSelfApproval = true }).Build();

        d.Approve(People.Alice, "solo on-call weekend", Later);

        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
        Assert.Equal("alice", Assert.Single(d.Approvals).By);
    }

    [Fact]
    public void The_same_person_cannot_approve_twice()
    {
        var d = ADeployment().InState(DeploymentState.AwaitingApproval).WithPolicy(p => p with { RequiredApprovals = 2 }).Build();
        d.Approve(People.Alice, null, Later);

        var ex = Assert.Throws<DomainException>(() => d.Approve(People.Alice, null, Later.AddMinutes(1)));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal("alice has already approved this release; approvals must come from distinct people.", ex.Message);
        Assert.Single(d.Approvals);
        Assert.Equal(DeploymentState.AwaitingApproval, d.State);
    }

    [Fact]
    public void Two_required_approvals_wait_after_the_first_and_move_on_after_the_second()
    {
        var d = ADeployment().InState(DeploymentState.AwaitingApproval).WithPolicy(p => p with { RequiredApprovals = 2 }).Build();

        d.Approve(People.Alice, "ok", Later);

        Assert.Equal(DeploymentState.AwaitingApproval, d.State);
        Assert.Null(d.NextRunAt);
        Assert.Equal(StepState.Running, d.Step(StepNames.Approval).State);
        Assert.Equal("1 of 2 approvals", d.Step(StepNames.Approval).Message);
        var first = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.approved", "AwaitingApproval", "AwaitingApproval", "alice", "ok"),
            (first.Action, first.BeforeState, first.AfterState, first.Actor, first.Reason));
        Assert.Equal("""{"approvals":1,"required":2}""", first.Details);

        d.Approve(People.Bob, null, Later.AddMinutes(5));

        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
        Assert.Equal(Later.AddMinutes(5), d.NextRunAt);
        Assert.Equal(StepState.Succeeded, d.Step(StepNames.Approval).State);
        Assert.Equal("approved by alice, bob", d.Step(StepNames.Approval).Message);
        Assert.Equal(["deployment.approved", "deployment.approved", "deployment.ready-to-switch"], d.PendingAuditEvents.Select(e => e.Action));
        Assert.Equal("bob", d.PendingAuditEvents[^1].Actor);
    }

    [Fact]
    public void Required_approvals_are_fixed_when_the_release_is_requested()
    {
        var (app, d) = ADeployment().InState(DeploymentState.AwaitingApproval)
            .WithPolicy(p => p with { RequiredApprovals = 3, AllowSelfApproval = true }).BuildWithApplication();

        Assert.Equal(3, app.Policy.RequiredApprovals);
        Assert.Equal(3, d.RequiredApprovals);
        Assert.True(d.AllowSelfApproval);
        Assert.Equal("waiting for 3 approval(s)", d.Step(StepNames.Approval).Message);
    }

    [Theory]
    [InlineData(DeploymentState.Queued)]
    [InlineData(DeploymentState.Verifying)]
    [InlineData(DeploymentState.ReadyToSwitch)]
    [InlineData(DeploymentState.Monitoring)]
    [InlineData(DeploymentState.Aborted)]
    public void Approving_outside_AwaitingApproval_is_a_conflict(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();

        var ex = Assert.Throws<DomainException>(() => d.Approve(People.Bob, null, Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Deployment {d.Id} is {state}; approvals are only accepted while it is AwaitingApproval.", ex.Message);
        Assert.DoesNotContain(d.Approvals, a => a.By == "bob");
    }

    [Theory]
    [InlineData(DeploymentState.Queued)]
    [InlineData(DeploymentState.AwaitingApproval)]
    [InlineData(DeploymentState.Switching)]
    [InlineData(DeploymentState.Succeeded)]
    public void Switching_outside_ReadyToSwitch_is_a_conflict(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();

        var ex = Assert.Throws<DomainException>(() => d.BeginSwitch(People.Bob, Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Deployment {d.Id} is {state}; the switch is only possible from ReadyToSwitch.", ex.Message);
        Assert.Equal(state, d.State);
    }

    [Fact]
    public void BeginSwitch_starts_the_switch_step_on_behalf_of_the_person()
    {
        var d = ADeployment().InState(DeploymentState.ReadyToSwitch).Build();

        d.BeginSwitch(People.Bob, Later);

        Assert.Equal(DeploymentState.Switching, d.State);
        var step = d.Step(StepNames.Switch);
        Assert.Equal((StepState.Running, Later, "switching traffic blue → green"), (step.State, step.StartedAt, step.Message));
        Assert.Equal(Later, d.NextRunAt);
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.switching", "bob"), (e.Action, e.Actor));
    }

    [Fact]
    public void AutoPromote_moves_to_ReadyToSwitch_as_the_system()
    {
        var d = ADeployment().InState(DeploymentState.AwaitingApproval).WithPolicy(p => p with { AutoPromoteAfterSeconds = 600 }).Build();

        d.AutoPromote(Later);

        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
        Assert.Empty(d.Approvals);
        var step = d.Step(StepNames.Approval);
        Assert.Equal((StepState.Succeeded, Later, "auto-promoted by policy"), (step.State, step.FinishedAt, step.Message));
        Assert.Equal(Later, d.NextRunAt);
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.auto-promoted", "AwaitingApproval", "ReadyToSwitch", "system", ActorKind.System),
            (e.Action, e.BeforeState, e.AfterState, e.Actor, e.ActorKind));
    }

    [Fact]
    public void AutoPromote_outside_AwaitingApproval_is_a_conflict()
    {
        var d = ADeployment().InState(DeploymentState.ReadyToSwitch).Build();

        var ex = Assert.Throws<DomainException>(() => d.AutoPromote(Later));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Deployment {d.Id} is ReadyToSwitch, expected AwaitingApproval.", ex.Message);
        Assert.Empty(d.PendingAuditEvents);
    }
}
