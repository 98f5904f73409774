using Bunit;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using ControlPlane.Core.Security;
using ControlPlane.UnitTests.TestSupport;
using ControlPlane.Web.Components.Shared;
using ControlPlane.Web.Security;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;

namespace ControlPlane.UnitTests.Governance;

/// <summary>What a freeze does to the release actions and the banner a person sees (the domain still has the final word).</summary>
public sealed class FreezeActionsTests : IDisposable
{
    private readonly BunitContext _ctx = new();
    private static readonly DateTimeOffset Now = Builders.T0.AddHours(1);

    public FreezeActionsTests()
    {
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
        _ctx.Services.AddMudServices();
    }

    private static FreezeOccurrence Freeze() =>
        new FreezeWindowSpec("Year-end freeze", "holidays", "oneOff", "Europe/Berlin", "2026-03-02T00:00:00Z", "2026-03-05T00:00:00Z", null, null, null)
            .Build(null, People.Alice, Builders.T0).ActiveAt(Now)!;

    private IRenderedComponent<ReleaseActions> Render(Role role, FreezeOccurrence? freeze) =>
        _ctx.Render<ReleaseActions>(p => p
            .Add(x => x.Deployment, Builders.ADeployment().InState(DeploymentState.ReadyToSwitch).Build())
            .Add(x => x.User, new SignedInUser("someone", role, null))
            .Add(x => x.Freeze, freeze));

    [Fact]
    public void During_a_freeze_a_release_manager_cannot_switch_and_is_told_until_when()
    {
        var c = Render(Role.ReleaseManager, Freeze());

        Assert.True(c.Find("[data-testid=switch-button]").HasAttribute("disabled"));
        Assert.Equal("Frozen: Year-end freeze until 2026-03-05 01:00 Europe/Berlin. Forward switches are blocked; only an Admin can override.",
            c.Find("[data-testid=switch-blocked]").TextContent);
        Assert.False(c.Find("[data-testid=abort-button]").HasAttribute("disabled")); // aborts stay allowed
    }

    [Fact]
    public void During_a_freeze_an_admin_is_offered_the_override()
    {
        var c = Render(Role.Admin, Freeze());

        Assert.False(c.Find("[data-testid=switch-button]").HasAttribute("disabled"));
        Assert.Contains("Switch traffic (override freeze)", c.Find("[data-testid=switch-button]").TextContent);
        Assert.Empty(c.FindAll("[data-testid=switch-blocked]"));
    }

    [Fact]
    public void Without_a_freeze_the_switch_is_plain()
    {
        var c = Render(Role.ReleaseManager, null);

        Assert.False(c.Find("[data-testid=switch-button]").HasAttribute("disabled"));
        Assert.Equal("Switch traffic", c.Find("[data-testid=switch-button]").TextContent.Trim());
    }

    [Fact]
    public void The_banner_names_the_window_and_its_end_in_the_windows_time_zone()
    {
        var c = _ctx.Render<FreezeBanner>(p => p.Add(x => x.Freeze, Freeze()));

        Assert.Contains("Frozen: Year-end freeze until 2026-03-05 01:00 Europe/Berlin", c.Find("[data-testid=freeze-banner]").TextContent);
        Assert.Contains("(global freeze)", c.Markup);
    }

    public void Dispose() => _ctx.Dispose();
}
