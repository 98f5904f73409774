using Bunit;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Hooks;
using ControlPlane.Core.Security;
using ControlPlane.UnitTests.TestSupport;
using ControlPlane.Web.Components.Shared;
using ControlPlane.Web.Security;
using MudBlazor.Services;

namespace ControlPlane.UnitTests.Components;

/// <summary>A hook step on the release page: status, output, and the decision on an interrupted hook for those who may take it.</summary>
public sealed class HookStepDetailTests : IDisposable
{
    private readonly BunitContext _ctx = new();

    public HookStepDetailTests()
    {
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
        _ctx.Services.AddMudServices();
    }

    private static Deployment WithPreDeploy(LifecycleHook hook)
    {
        var d = Builders.ADeployment().Build();
        d.PlanLifecycle(new ReleaseLifecycle { Hooks = new ApplicationHooks { PreDeploy = hook } });
        d.StartHook(HookSteps.PreDeploy, hook.Describe(), Builders.T0);
        return d;
    }

    private IRenderedComponent<HookStepDetail> Render(Deployment d, Role role) =>
        _ctx.Render<HookStepDetail>(p => p
            .Add(x => x.Deployment, d)
            .Add(x => x.Step, d.Step(HookSteps.PreDeploy))
            .Add(x => x.User, new SignedInUser("rita", role, "10.0.0.1")));

    [Fact]
    public void A_finished_hook_shows_its_exit_status_attempt_and_output()
    {
        var d = WithPreDeploy(new LifecycleHook { Kind = HookKinds.Http, Url = "https://ci.example/pre" });
        d.FinishHook(HookSteps.PreDeploy, new HookResult(false, 503, "maintenance window\n", "answered 503"), Builders.T0.AddSeconds(2));

        var c = Render(d, Role.Viewer);

        Assert.Equal("HTTP 503 · attempt 1", c.Find("[data-testid=hook-status]").TextContent.Trim());
        Assert.Equal("maintenance window\n", c.Find("pre[data-testid=hook-output]").TextContent);
        Assert.Empty(c.FindAll("[data-testid=hook-held]"));
    }

    [Fact]
    public void An_interrupted_hook_offers_run_again_and_mark_done_only_to_roles_that_may_resolve_it()
    {
        var d = WithPreDeploy(new LifecycleHook { Kind = HookKinds.Command, Command = ["/opt/migrate"] });
        d.HookInterrupted(HookSteps.PreDeploy, idempotent: false, Builders.T0.AddMinutes(1), "its process (PID 42) was still running and was killed");

        var manager = Render(d, Role.ReleaseManager);
        Assert.Contains("may or may not have done its work", manager.Find("[data-testid=hook-held]").TextContent);
        Assert.NotNull(manager.Find("[data-testid=hook-run-again]"));
        Assert.NotNull(manager.Find("[data-testid=hook-mark-done]"));

        var viewer = Render(d, Role.Viewer);
        Assert.NotNull(viewer.Find("[data-testid=hook-held]"));
        Assert.Empty(viewer.FindAll("button"));
        Assert.Contains("your role cannot", viewer.Find("[data-testid=hook-held]").TextContent);
    }

    public void Dispose() => _ctx.Dispose();
}
