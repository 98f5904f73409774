using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

/// <summary>NextRunAt is what the worker polls for: null means "a person has to act", a time means "look again then".</summary>
public sealed class NextRunAtTests
{
    [Fact]
    public void Waiting_for_approval_has_no_next_run()
    {
        var b = ADeployment().InState(DeploymentState.AwaitingApproval);
        var d = b.Build();

        Assert.Null(d.NextRunAt);
        Assert.Equal(b.Clock.GetUtcNow(), d.AwaitingApprovalSince);
    }

    [Fact]
    public void ReadyToSwitch_waits_for_a_person_after_RunAgainAt_null()
    {
        var b = ADeployment().InState(DeploymentState.ReadyToSwitch);
        var d = b.Build();
        Assert.Equal(b.Clock.GetUtcNow(), d.NextRunAt);

        d.RunAgainAt(null);

        Assert.Null(d.NextRunAt);
    }

    [Theory]
    [InlineData(DeploymentState.Deploying)]
    [InlineData(DeploymentState.Verifying)]
    [InlineData(DeploymentState.Switching)]
    [InlineData(DeploymentState.Monitoring)]
    [InlineData(DeploymentState.Failed)]
    [InlineData(DeploymentState.Aborted)]
    [InlineData(DeploymentState.RolledBack)]
    public void Transitions_that_leave_work_for_the_worker_schedule_it_at_once(DeploymentState state)
    {
        var b = ADeployment().InState(state);
        var d = b.Build();

        Assert.Equal(b.Clock.GetUtcNow(), d.NextRunAt);
        Assert.Equal(b.Clock.GetUtcNow(), d.UpdatedAt);
    }

    [Fact]
    public void Success_leaves_nothing_to_run()
    {
        var d = ADeployment().InState(DeploymentState.Succeeded).Build();

        Assert.Null(d.NextRunAt);
        Assert.False(d.CleanupPending);
    }

    [Fact]
    public void RunAgainAt_sets_a_later_time()
    {
        var d = ADeployment().InState(DeploymentState.Deploying).Build();
        var at = T0.AddHours(2);

        d.RunAgainAt(at);

        Assert.Equal(at, d.NextRunAt);
    }
}
