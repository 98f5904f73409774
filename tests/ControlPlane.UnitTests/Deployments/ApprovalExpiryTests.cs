using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

public sealed class ApprovalExpiryTests
{
    private static DeploymentBuilder Expiring(int required, int validForSeconds = 600) =>
        ADeployment().WithPolicy(p => p with { RequiredApprovals = required, ApprovalValidForSeconds = validForSeconds });

    [Fact]
    public void An_approval_carries_its_expiry_and_stops_counting_when_it_lapses()
    {
        var builder = Expiring(2).InState(DeploymentState.AwaitingApproval);
        var d = builder.Build();
        var t = builder.Clock.GetUtcNow();

        d.Approve(People.Alice, null, t);

        var approval = Assert.Single(d.Approvals);
        Assert.Equal(t.AddMinutes(10), approval.ExpiresAt);
        Assert.Equal(t.AddMinutes(10), d.NextRunAt); // the worker re-counts when it lapses
        Assert.Single(d.ValidApprovals(t.AddMinutes(9)));
        Assert.Empty(d.ValidApprovals(t.AddMinutes(10)));

        // Bob approves after Alice's approval lapsed: one valid approval of two.
        d.Approve(People.Bob, null, t.AddMinutes(11));
        Assert.Equal(DeploymentState.AwaitingApproval, d.State);
        Assert.Equal("1 of 2 approvals", d.Step(StepNames.Approval).Message);
    }

    [Fact]
    public void A_lapsed_approval_can_be_renewed_by_the_same_person()
    {
        var builder = Expiring(2).InState(DeploymentState.AwaitingApproval);
        var d = builder.Build();
        var t = builder.Clock.GetUtcNow();
        d.Approve(People.Alice, null, t);
        d.Approve(People.Bob, null, t.AddMinutes(11));

        d.Approve(People.Alice, "still fine", t.AddMinutes(12));

        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
        Assert.Equal(2, d.Approvals.Count);
        Assert.Equal(t.AddMinutes(22), d.Approvals.Single(a => a.By == "alice").ExpiresAt);
    }

    [Fact]
    public void A_ready_release_whose_approval_lapses_goes_back_to_AwaitingApproval_and_says_so()
    {
        var builder = Expiring(1).InState(DeploymentState.ReadyToSwitch);
        var d = builder.Build();
        var approvedAt = d.Approvals.Single().At;
        var later = approvedAt.AddMinutes(10);

        Assert.False(d.ExpireApprovals(later.AddSeconds(-1)));
        Assert.True(d.ExpireApprovals(later));

        Assert.Equal(DeploymentState.AwaitingApproval, d.State);
        var step = d.Step(StepNames.Approval);
        Assert.Equal((StepState.Running, (DateTimeOffset?)null), (step.State, step.FinishedAt));
        Assert.StartsWith("approval of alice (expired", step.Message);
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.approval-expired", "ReadyToSwitch", "AwaitingApproval", "system"), (e.Action, e.BeforeState, e.AfterState, e.Actor));
        Assert.Contains("\"valid\":0", e.Details);
        Assert.Throws<DomainException>(() => d.BeginSwitch(People.Bob, later));
    }

    [Fact]
    public void The_switch_re_checks_approvals_at_the_moment_of_the_switch()
    {
        var d = Expiring(1).InState(DeploymentState.ReadyToSwitch).Build();
        var lapsed = d.Approvals.Single().ExpiresAt!.Value;

        var ex = Assert.Throws<DomainException>(() => d.BeginSwitch(People.Bob, lapsed));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Contains("no longer has 1 valid approval(s)", ex.Message);
        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
    }

    [Fact]
    public void Approvals_that_never_expire_keep_counting()
    {
        var d = ADeployment().InState(DeploymentState.ReadyToSwitch).Build();

        Assert.Null(d.Approvals.Single().ExpiresAt);
        Assert.False(d.ExpireApprovals(T0.AddYears(1)));
        d.BeginSwitch(People.Bob, T0.AddYears(1));
        Assert.Equal(DeploymentState.Switching, d.State);
    }

    [Fact]
    public void An_auto_promoted_release_relies_on_no_approval_and_is_not_sent_back()
    {
        var builder = Expiring(1).WithPolicy(p => p with { AutoPromoteAfterSeconds = 60 }).InState(DeploymentState.AwaitingApproval);
        var d = builder.Build();
        d.AutoPromote(builder.Clock.GetUtcNow());

        Assert.False(d.ExpireApprovals(builder.Clock.GetUtcNow().AddDays(1)));
        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
    }

    [Fact]
    public void Names_compare_case_insensitively_for_the_two_person_rule()
    {
        var d = ADeployment().InState(DeploymentState.AwaitingApproval).WithPolicy(p => p with { RequiredApprovals = 2 })
            .RequestedBy(new Actor("Rita", ActorKind.User)).Build();

        var self = Assert.Throws<DomainException>(() => d.Approve(new Actor("rita", ActorKind.User), null, T0.AddHours(1)));
        Assert.Equal(DomainErrorKind.Forbidden, self.Kind);

        d.Approve(People.Alice, null, T0.AddHours(1));
        var twice = Assert.Throws<DomainException>(() => d.Approve(new Actor("ALICE", ActorKind.Token), null, T0.AddHours(2)));
        Assert.Equal(DomainErrorKind.Conflict, twice.Kind);
        Assert.Single(d.Approvals);
    }

    [Fact]
    public void Only_a_persons_rollback_that_bypassed_a_freeze_is_break_glass()
    {
        var plain = ADeployment().InState(DeploymentState.Monitoring).Build();
        var frozen = ADeployment().InState(DeploymentState.Monitoring).Build();
        var auto = ADeployment().InState(DeploymentState.Monitoring).Build();

        plain.RolledBack(People.OnCall, "error rate up", automatic: false, T0.AddHours(1));
        frozen.RolledBack(People.OnCall, "error rate up", automatic: false, T0.AddHours(1), bypassed: "during the freeze Incident");
        auto.RolledBack(Actor.System, "breach", automatic: true, T0.AddHours(1));

        Assert.False(plain.BreakGlassRollback);
        Assert.True(frozen.BreakGlassRollback);
        Assert.False(auto.BreakGlassRollback);
        Assert.Contains("\"breakGlass\":false", plain.PendingAuditEvents.Single().Details);
        Assert.Contains("\"breakGlass\":true", frozen.PendingAuditEvents.Single().Details);
        Assert.Contains("\"breakGlass\":false", auto.PendingAuditEvents.Single().Details);
        Assert.Equal("Rolled back by oscar: error rate up", plain.Outcome);
        Assert.Equal("Rolled back by oscar (break-glass: during the freeze Incident): error rate up", frozen.Outcome);
    }
}
