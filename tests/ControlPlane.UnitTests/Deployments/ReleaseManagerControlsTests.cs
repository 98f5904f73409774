using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

/// <summary>The deployment's side of the release-manager controls: intent recorded with its audit event, carried out by the loop.</summary>
public sealed class ReleaseManagerControlsTests
{
    private static readonly DateTimeOffset Later = T0.AddHours(1);

    [Fact]
    public void Finishing_monitoring_early_is_intent_until_the_loop_carries_it_out_in_the_requesters_name()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).Build();

        d.RequestFinishMonitoring(People.Alice, "dashboards clean", Later);

        Assert.Equal(DeploymentState.Monitoring, d.State);
        Assert.True(d.PromotePending);
        Assert.Equal(Later, d.NextRunAt);
        var requested = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.finish-monitoring-requested", "alice", "dashboards clean"), (requested.Action, requested.Actor, requested.Reason));
        Assert.Throws<DomainException>(() => d.RequestFinishMonitoring(People.Bob, "me too", Later));

        d.FinishMonitoringEarly(12, TimeSpan.FromSeconds(60), Later.AddSeconds(2));

        Assert.Equal(DeploymentState.Succeeded, d.State);
        Assert.False(d.PromotePending);
        Assert.Equal("Monitoring ended early by alice after 12 of 60 s watched (checks passing): dashboards clean", d.Outcome);
        Assert.Equal(StepState.Succeeded, d.Step(StepNames.Monitor).State);
        var succeeded = d.PendingAuditEvents[^1];
        Assert.Equal(("deployment.succeeded", "alice", "Monitoring", "Succeeded"), (succeeded.Action, succeeded.Actor, succeeded.BeforeState, succeeded.AfterState));
    }

    [Theory]
    [InlineData(DeploymentState.ReadyToSwitch)]
    [InlineData(DeploymentState.Succeeded)]
    [InlineData(DeploymentState.Failed)]
    public void Finishing_monitoring_is_refused_outside_monitoring(DeploymentState state)
    {
        var d = ADeployment().InState(state).Build();
        var ex = Assert.Throws<DomainException>(() => d.RequestFinishMonitoring(People.Alice, "now", Later));
        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Empty(d.PendingAuditEvents);
    }

    [Fact]
    public void A_rollback_under_way_wins_over_finishing_early()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).Build();
        d.RequestRollback(People.OnCall, "latency", automatic: false, Later);
        Assert.Contains("rollback", Assert.Throws<DomainException>(() => d.RequestFinishMonitoring(People.Alice, "now", Later)).Message);
    }

    [Fact]
    public void Hold_extensions_count_on_top_of_the_policys_hold_when_monitoring_ends()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).WithPolicy(p => p with { HoldWindowSeconds = 600 }).Build();
        var policy = new ReleasePolicy { HoldWindowSeconds = 600 };
        Assert.Equal(Later.AddSeconds(600), d.HoldUntil(Later, policy));

        d.RecordHoldExtension(People.OnCall, 30, Later, Later.AddMinutes(30), "blue 1.0.0", "batch tonight", Later);
        d.RecordHoldExtension(People.OnCall, 60, Later.AddMinutes(30), Later.AddMinutes(90), "blue 1.0.0", "still batch", Later);

        Assert.Equal(Later.AddSeconds(600 + 90 * 60), d.HoldUntil(Later, policy));
        Assert.Equal(["deployment.hold-extended", "deployment.hold-extended"], d.PendingAuditEvents.Select(e => e.Action));
    }
}
