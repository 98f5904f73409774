using Bunit;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using ControlPlane.UnitTests.TestSupport;
using ControlPlane.Web.Components.Shared;
using ControlPlane.Web.Security;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;
using static ControlPlane.Core.Deployments.DeploymentState;

namespace ControlPlane.UnitTests.Components;

/// <summary>Which release actions a person is offered, by role and state (the domain still has the final word).</summary>
public sealed class ReleaseActionsTests : IDisposable
{
    private readonly BunitContext _ctx = new();

    public ReleaseActionsTests()
    {
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
        _ctx.Services.AddMudServices();
    }

    private IRenderedComponent<ReleaseActions> Render(Deployment d, string name, Role role) =>
        _ctx.Render<ReleaseActions>(p => p
            .Add(x => x.Deployment, d)
            .Add(x => x.User, new SignedInUser(name, role, "10.0.0.1")));

    private static string[] Buttons(IRenderedComponent<ReleaseActions> c) =>
        [.. c.FindAll("button").Select(b => b.GetAttribute("data-testid")!).Order()];

    [Theory]
    [InlineData(AwaitingApproval)]
    [InlineData(ReadyToSwitch)]
    [InlineData(Deploying)]
    public void An_auditor_is_offered_no_action_and_is_told_why(DeploymentState state)
    {
        var c = Render(Builders.ADeployment().InState(state).Build(), "audrey", Role.Auditor);
        Assert.Empty(Buttons(c));
        Assert.Contains("Your role (Auditor) cannot act on this release", c.Find("[data-testid=no-actions]").TextContent);
    }

    [Fact]
    public void The_requester_sees_approve_disabled_with_the_reason_when_self_approval_is_forbidden()
    {
        var d = Builders.ADeployment().InState(AwaitingApproval).RequestedBy(People.Requester).Build();
        var c = Render(d, People.Requester.Name, Role.ReleaseManager);
        Assert.True(c.Find("[data-testid=approve-button]").HasAttribute("disabled"));
        Assert.Contains("You requested this release", c.Find("[data-testid=approve-blocked]").TextContent);
        Assert.Equal(["abort-button", "approve-button"], Buttons(c));
    }

    [Fact]
    public void The_requester_may_approve_when_the_policy_allows_self_approval()
    {
        var d = Builders.ADeployment().WithPolicy(p => p with { AllowSelfApproval = true }).InState(AwaitingApproval).RequestedBy(People.Requester).Build();
        var c = Render(d, People.Requester.Name, Role.ReleaseManager);
        Assert.False(c.Find("[data-testid=approve-button]").HasAttribute("disabled"));
        Assert.Empty(c.FindAll("[data-testid=approve-blocked]"));
    }

    [Fact]
    public void Another_release_manager_may_approve_and_clicking_asks_the_page_to_approve()
    {
        var approved = 0;
        var c = _ctx.Render<ReleaseActions>(p => p
            .Add(x => x.Deployment, Builders.ADeployment().InState(AwaitingApproval).Build())
            .Add(x => x.User, new SignedInUser("alice", Role.ReleaseManager, null))
            .Add(x => x.OnApprove, () => approved++));
        var approve = c.Find("[data-testid=approve-button]");
        Assert.False(approve.HasAttribute("disabled"));
        approve.Click();
        Assert.Equal(1, approved);
    }

    [Fact]
    public void Someone_who_already_approved_cannot_approve_twice()
    {
        var d = Builders.ADeployment().WithPolicy(p => p with { RequiredApprovals = 2 }).InState(AwaitingApproval).Build();
        d.Approve(People.Alice, null, Builders.T0.AddHours(1));
        var c = Render(d, People.Alice.Name, Role.ReleaseManager);
        Assert.True(c.Find("[data-testid=approve-button]").HasAttribute("disabled"));
        Assert.Contains("already approved", c.Find("[data-testid=approve-blocked]").TextContent);
    }

    [Theory]
    [InlineData(AwaitingApproval)]
    [InlineData(ReadyToSwitch)]
    public void On_call_may_abort_but_never_approve_or_switch(DeploymentState state)
    {
        var c = Render(Builders.ADeployment().InState(state).Build(), "oscar", Role.OnCall);
        Assert.Equal(["abort-button"], Buttons(c));
    }

    [Theory]
    [InlineData(Queued, new[] { "abort-button" })]
    [InlineData(Deploying, new[] { "abort-button" })]
    [InlineData(Verifying, new[] { "abort-button" })]
    [InlineData(AwaitingApproval, new[] { "abort-button", "approve-button" })]
    [InlineData(ReadyToSwitch, new[] { "abort-button", "switch-button" })]
    [InlineData(Switching, new string[0])]
    [InlineData(Monitoring, new string[0])]
    [InlineData(Succeeded, new string[0])]
    [InlineData(Failed, new string[0])]
    [InlineData(Aborted, new string[0])]
    [InlineData(RolledBack, new string[0])]
    public void An_admin_is_offered_exactly_what_the_state_allows(DeploymentState state, string[] expected)
    {
        var c = Render(Builders.ADeployment().InState(state).Build(), "ada", Role.Admin);
        Assert.Equal(expected, Buttons(c));
    }

    [Fact]
    public void A_viewer_is_offered_nothing()
    {
        var c = Render(Builders.ADeployment().InState(ReadyToSwitch).Build(), "vic", Role.Viewer);
        Assert.Empty(Buttons(c));
    }

    public void Dispose() => _ctx.Dispose();
}
