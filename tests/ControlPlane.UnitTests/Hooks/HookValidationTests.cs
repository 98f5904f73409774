using ControlPlane.Core.Hooks;

namespace ControlPlane.UnitTests.Hooks;

public sealed class HookValidationTests
{
    private static IReadOnlyList<string> Fields(ApplicationHooks hooks, params string[] databases) =>
        [.. hooks.Validate("hooks", databases).Select(e => e.Field)];

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
