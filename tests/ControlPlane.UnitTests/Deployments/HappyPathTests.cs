using ControlPlane.Core.Deployments;
using ControlPlane.UnitTests.TestSupport;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Deployments;

public sealed class HappyPathTests
{
    private static readonly DateTimeOffset T1 = T0.AddMinutes(1), T2 = T0.AddMinutes(2), T3 = T0.AddMinutes(3),
        T4 = T0.AddMinutes(4), T5 = T0.AddMinutes(5), T6 = T0.AddMinutes(6), T7 = T0.AddMinutes(7);

    private static (Application App, Deployment D) RunWholeRelease()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();
        app.ClearPendingAuditEvents();
        var d = Deployment.Request(app, "2.0.0", People.Requester, "weekly release", T0);
        d.StartDeploying(T1);
        d.Deployed("green ready", T2);
        d.Verified("health: 200", T3);
        d.Approve(People.Alice, "ship it", T4);
        d.BeginSwitch(People.Bob, T5);
        d.Switched("router on green", T6, TimeSpan.FromSeconds(60));
        d.Succeed("no breach during 60 s of monitoring", T7);
        return (app, d);
    }

    [Fact]
    public void Request_captures_the_application_and_waits_in_queue()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();

        var d = Deployment.Request(app, "2.0.0", People.Requester, "weekly release", T0);

        Assert.Equal(DeploymentState.Queued, d.State);
        Assert.Equal(app.Id, d.ApplicationId);
        Assert.Equal("shop", d.ApplicationName);
        Assert.Equal("1.0.0", d.FromVersion);
        Assert.Equal(Slot.Blue, d.FromSlot);
        Assert.Equal(Slot.Green, d.TargetSlot);
        Assert.Equal("rita", d.RequestedBy);
        Assert.Equal(1, d.RequiredApprovals);
        Assert.Equal(T0, d.NextRunAt);
        Assert.Equal(["deploy", "verify", "approval", "switch", "monitor"], d.Steps.OrderBy(s => s.Order).Select(s => s.Name));
        Assert.All(d.Steps, s => Assert.Equal(StepState.Pending, s.State));
    }

    [Fact]
    public void Whole_release_walks_every_state_and_ends_succeeded()
    {
        var (_, d) = RunWholeRelease();

        Assert.Equal(DeploymentState.Succeeded, d.State);
        Assert.Equal(T7, d.FinishedAt);
        Assert.Equal(T7, d.UpdatedAt);
        Assert.Equal(T6.AddSeconds(60), d.MonitoringUntil);
        Assert.Equal(T3, d.AwaitingApprovalSince);
        Assert.Equal("no breach during 60 s of monitoring", d.Outcome);
        Assert.False(d.CleanupPending);
        Assert.Null(d.NextRunAt);
        var approval = Assert.Single(d.Approvals);
        Assert.Equal(("alice", T4, "ship it"), (approval.By, approval.At, approval.Comment));
    }

    [Fact]
    public void Whole_release_records_each_step_with_its_start_and_finish()
    {
        var (_, d) = RunWholeRelease();

        var steps = d.Steps.OrderBy(s => s.Order).Select(s => (s.Name, s.State, s.StartedAt, s.FinishedAt, s.Message));
        Assert.Equal(
        [
            ("deploy", StepState.Succeeded, T1, T2, "green ready"),
            ("verify", StepState.Succeeded, T2, T3, "health: 200"),
            ("approval", StepState.Succeeded, T3, T4, "approved by alice"),
            ("switch", StepState.Succeeded, T5, T6, "router on green"),
            ("monitor", StepState.Succeeded, T6, T7, "no breach during 60 s of monitoring"),
        ], steps);
    }

    [Fact]
    public void Whole_release_audits_every_transition_with_states_and_actor()
    {
        var (_, d) = RunWholeRelease();

        var trail = d.PendingAuditEvents.Select(e => (e.Action, e.BeforeState, e.AfterState, e.Actor, e.OccurredAt));
        Assert.Equal(
        [
            ("deployment.requested", null, "Queued", "rita", T0),
            ("deployment.deploying", "Queued", "Deploying", "system", T1),
            ("deployment.verifying", "Deploying", "Verifying", "system", T2),
            ("deployment.awaiting-approval", "Verifying", "AwaitingApproval", "system", T3),
            ("deployment.approved", "AwaitingApproval", "AwaitingApproval", "alice", T4),
            ("deployment.ready-to-switch", "AwaitingApproval", "ReadyToSwitch", "alice", T4),
            ("deployment.switching", "ReadyToSwitch", "Switching", "bob", T5),
            ("deployment.monitoring", "Switching", "Monitoring", "system", T6),
            ("deployment.succeeded", "Monitoring", "Succeeded", "system", T7),
        ], trail);
        Assert.All(d.PendingAuditEvents, e =>
        {
            Assert.Equal("shop", e.Application);
            Assert.Equal(d.Id, e.DeploymentId);
        });
    }

    [Fact]
    public void Request_audit_event_carries_reason_source_ip_and_versions()
    {
        var app = AnApplication().Running("1.0.0", Slot.Blue).Build();

        var d = Deployment.Request(app, "2.0.0", People.Requester, "weekly release", T0);

        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal("weekly release", e.Reason);
        Assert.Equal(ActorKind.User, e.ActorKind);
        Assert.Equal("10.0.0.7", e.SourceIp);
        Assert.Equal("""{"version":"2.0.0","fromVersion":"1.0.0","targetSlot":"green"}""", e.Details);
    }

    [Fact]
    public void A_green_live_application_targets_the_blue_slot()
    {
        var app = AnApplication().Running("1.0.0", Slot.Green).Build();

        var d = Deployment.Request(app, "2.0.0", People.Requester, null, T0);

        Assert.Equal((Slot.Green, Slot.Blue), (d.FromSlot, d.TargetSlot));
        d.StartDeploying(T1);
        Assert.Equal("deploying 2.0.0 to blue", d.Step(StepNames.Deploy).Message);
    }

    [Fact]
    public void No_required_approvals_skips_the_approval_step()
    {
        var d = ADeployment().InState(DeploymentState.Verifying).WithPolicy(p => p with { RequiredApprovals = 0 }).Build();
        var now = T0.AddHours(1);

        d.Verified("health: 200", now);

        Assert.Equal(DeploymentState.ReadyToSwitch, d.State);
        var approval = d.Step(StepNames.Approval);
        Assert.Equal(StepState.Skipped, approval.State);
        Assert.Equal("the policy requires no approval", approval.Message);
        Assert.Null(d.AwaitingApprovalSince);
        Assert.Equal(now, d.NextRunAt);
        var e = Assert.Single(d.PendingAuditEvents);
        Assert.Equal(("deployment.ready-to-switch", "Verifying", "ReadyToSwitch", "system"), (e.Action, e.BeforeState, e.AfterState, e.Actor));
    }

    [Fact]
    public void NoteProgress_changes_the_running_step_message_only_once_per_message()
    {
        var d = ADeployment().InState(DeploymentState.Deploying).Build();
        var now = T0.AddHours(1);

        Assert.True(d.NoteProgress("pulling image", now));
        Assert.False(d.NoteProgress("pulling image", now.AddSeconds(1)));

        Assert.Equal("pulling image", d.Step(StepNames.Deploy).Message);
        Assert.Equal(now, d.UpdatedAt);
        Assert.Empty(d.PendingAuditEvents);
    }

    [Fact]
    public void Worker_transitions_out_of_order_are_conflicts()
    {
        var d = ADeployment().InState(DeploymentState.Deploying).Build();

        var ex = Assert.Throws<DomainException>(() => d.Verified("health: 200", T0.AddHours(1)));

        Assert.Equal(DomainErrorKind.Conflict, ex.Kind);
        Assert.Equal($"Deployment {d.Id} is Deploying, expected Verifying.", ex.Message);
        Assert.Equal(DeploymentState.Deploying, d.State);
        Assert.Empty(d.PendingAuditEvents);
    }
}
