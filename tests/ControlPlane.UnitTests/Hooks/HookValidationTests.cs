using ControlPlane.Core.Hooks;

namespace ControlPlane.UnitTests.Hooks;

public sealed class HookValidationTests
{
    private static IReadOnlyList<string> Fields(ApplicationHooks hooks, params string[] databases) =>
        [.. hooks.Validate("hooks", databases, "process").Select(e => e.Field)];

    private static IReadOnlyList<string> KubernetesFields(LifecycleHook hook) =>
        [.. new ApplicationHooks { PreDeploy = hook }.Validate("hooks", [], "kubernetes").Select(e => e.Field)];

    [Fact]
    public void A_kubernetesJob_hook_needs_the_kubernetes_deployer_an_image_and_container_env_names()
    {
        var job = new LifecycleHook { Kind = "kubernetesJob", Image = "registry/migrate:{version}", Command = ["migrate", "up"], Env = new() { ["DB_HOST"] = "db" }, TimeoutSeconds = 600 };
        Assert.Empty(KubernetesFields(job));
        Assert.Empty(KubernetesFields(job with { Command = null, ServiceAccountName = "migrator" }));
        Assert.Equal(["hooks.preDeploy.kind"], Fields(new ApplicationHooks { PreDeploy = job }));
        Assert.Equal(["hooks.preDeploy.image"], KubernetesFields(job with { Image = null }));
        Assert.Equal(["hooks.preDeploy.image"], KubernetesFields(job with { Image = "registry/a b" }));
        Assert.Equal(["hooks.preDeploy.command"], KubernetesFields(job with { Command = [] }));
        Assert.Equal(["hooks.preDeploy.serviceAccountName"], KubernetesFields(job with { ServiceAccountName = "Not_A_Name" }));
        Assert.Equal(["hooks.preDeploy.env"], KubernetesFields(job with { Env = new() { ["1BAD"] = "x" } }));
        Assert.Equal(["hooks.preDeploy.timeoutSeconds"], KubernetesFields(job with { TimeoutSeconds = 0 }));
        Assert.Equal(["hooks.preDeploy.url", "hooks.preDeploy.workingDirectory"], KubernetesFields(job with { WorkingDirectory = "/tmp", Url = "http://a/" }));
        Assert.Equal(["hooks.preDeploy.image"], Fields(new ApplicationHooks { PreDeploy = new() { Kind = "command", Command = ["true"], Image = "x" } }));
        Assert.Equal(["schema.expand.kind"], new ReleaseSchema { Expand = job }.Validate("schema", "process").Select(e => e.Field));
        Assert.Empty(new ReleaseSchema { Expand = job }.Validate("schema", "kubernetes"));
    }

    [Fact]
    public void Valid_http_and_command_hooks_pass()
    {
        var hooks = new ApplicationHooks
        {
            PreDeploy = new() { Kind = "command", Command = ["/usr/bin/env", "true"], WorkingDirectory = "/tmp", Env = new() { ["A"] = "b" }, TimeoutSeconds = 60 },
            PostSwitch = new() { Kind = "http", Url = "https://hooks.example/after", ExpectedStatus = 204 },
            SchemaDatabase = "orders",
        };
        Assert.Empty(Fields(hooks, "orders"));
    }

    [Fact]
    public void Each_fault_names_its_field()
    {
        var hooks = new ApplicationHooks
        {
            PreDeploy = new() { Kind = "shell" },
            PreSwitch = new() { Kind = "command", Command = [] },
            PostSwitch = new() { Kind = "http", Url = "/relative", TimeoutSeconds = 0 },
            PostHold = new() { Kind = "command", Command = ["x"], Url = "http://a", TimeoutSeconds = 3601, WorkingDirectory = "rel",
                Env = new() { ["CONTROLPLANE_RELEASE_ID"] = "x" } },
            SchemaDatabase = "nope",
        };
        Assert.Equal(["hooks.preDeploy.kind", "hooks.preSwitch.command", "hooks.postSwitch.timeoutSeconds", "hooks.postSwitch.url",
            "hooks.postHold.timeoutSeconds", "hooks.postHold.url", "hooks.postHold.workingDirectory", "hooks.postHold.env.CONTROLPLANE_RELEASE_ID",
            "hooks.schemaDatabase"], Fields(hooks, "orders"));
    }

    [Fact]
    public void Sql_is_only_for_a_release_schema()
    {
        var sql = new LifecycleHook { Kind = "sql", Script = "ALTER TABLE t ADD COLUMN c int" };
        Assert.Equal(["hooks.preDeploy.kind"], Fields(new ApplicationHooks { PreDeploy = sql }));
        Assert.Empty(new ReleaseSchema { Expand = sql, Contract = sql }.Validate("schema"));
        Assert.Equal(["schema.expand.script"], new ReleaseSchema { Expand = sql with { Script = " " } }.Validate("schema").Select(e => e.Field));
    }
}
