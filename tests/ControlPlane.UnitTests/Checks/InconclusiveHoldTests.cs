using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;

namespace ControlPlane.UnitTests.Checks;

/// <summary>Inconclusive evidence before the switch holds the release for a person, whatever the policy's approval count.</summary>
public sealed class InconclusiveHoldTests
{
    [Fact]
    public void A_hold_waits_for_a_person_even_when_no_approval_is_required()
    {
        var builder = Builders.ADeployment().InState(DeploymentState.Verifying).WithPolicy(p => p with { RequiredApprovals = 0 });
        var d = builder.Build();
        var now = builder.Clock.GetUtcNow();

        d.Verified("errors: no data", now, hold: "check 'errors' inconclusive: no data");

        Assert.Equal(DeploymentState.AwaitingApproval, d.State);
        Assert.Null(d.NextRunAt);
        Assert.Equal("check 'errors' inconclusive: no data", d.HoldReason);
        Assert.Equal("held for a person: check 'errors' inconclusive: no data", d.Step(StepNames.Approval).Message);
        var evt = Assert.Single(d.PendingAuditEvents);
        Assert.Equal("deployment.awaiting-approval", evt.Action);
        Assert.Equal("checks inconclusive: check 'errors' inconclusive: no data", evt.Reason);

        d.Approve(People.Alice, "looked at the dashboard myself", now);
        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
    }

    [Fact]
    public void Without_a_hold_a_policy_without_approvals_goes_straight_to_ready()
    {
        var builder = Builders.ADeployment().InState(DeploymentState.Verifying).WithPolicy(p => p with { RequiredApprovals = 0 });
        var d = builder.Build();
        d.Verified("errors: 0", builder.Clock.GetUtcNow());
        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
        Assert.Null(d.HoldReason);
    }
}
