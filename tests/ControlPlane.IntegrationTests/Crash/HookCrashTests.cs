using System.Globalization;
using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Hooks;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Crash;

/// <summary>
/// kill -9 of ControlPlane while a command hook runs. The hook runs in its own session, so it outlives the process that
/// started it; the next ControlPlane finds the step started and never finished, kills the leftover process group (it must not
/// go on doing work nobody watches, nor run next to a second attempt), records the hook as "may have run" and waits for a
/// person instead of running it again.
/// </summary>
public sealed class HookCrashTests(PostgresFixture postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Killed_mid_hook_the_next_ControlPlane_kills_the_orphaned_hook_and_holds_it_for_a_person()
    {
        var dir = Directory.CreateTempSubdirectory("cp-hook-crash-").FullName;
        var runs = Path.Combine(dir, "runs");
        var childFile = Path.Combine(dir, "child.pid");
        // The first run starts a long child and waits; a second run (after "run again") finishes at once.
        var script = $"echo run >> {runs}; [ $(wc -l < {runs}) -ge 2 ] && exit 0; sleep 300 & echo $! > {childFile}; wait";
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("hookcrash"));
        await cp.StartAsync();
        const string app = "crash-hook";
        using (var admin = cp.Admin())
            await TestApplications.RegisterDemoCopyAsync(admin, app,
                new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 },
                hooks: new { preDeploy = LifecycleHookTests.Sh(script, timeoutSeconds: 600) });
        string id;
        using (var admin = cp.Admin())
        {
            id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
            await LifecycleHookTests.WaitForAsync(admin, id, _ => File.Exists(childFile) && new FileInfo(childFile).Length > 0, "the hook to start its child");
        }
        var child = int.Parse((await File.ReadAllTextAsync(childFile, Ct)).Trim(), CultureInfo.InvariantCulture);

        await cp.KillHardAsync();
        Assert.True(Directory.Exists($"/proc/{child}"), "the hook's child died with ControlPlane: this test would prove nothing");

        await cp.StartAsync();
        using var client = cp.Admin();
        var held = await LifecycleHookTests.WaitForAsync(client, id, d => d.GetProperty("heldHook").ValueKind == JsonValueKind.String, "the interrupted hook to be held");
        Assert.Equal(("preDeploy", "Queued"), (held.GetProperty("heldHook").GetString(), held.GetProperty("state").GetString()));
        var step = LifecycleHookTests.StepOf(held, "preDeploy");
        Assert.Equal("Failed", step.GetProperty("state").GetString());
        Assert.Contains("may or may not have completed", step.GetProperty("message").GetString());
        Assert.Contains("was still running and was killed", step.GetProperty("message").GetString());
        Assert.True(IsGone(child), $"the orphaned hook's child {child} still runs");
        Assert.Single(await File.ReadAllLinesAsync(runs, Ct));
        var interrupted = (await client.GetJsonAsync($"/api/v1/audit?application={app}&action=hook.interrupted")).GetProperty("items");
        Assert.Contains("was killed", Assert.Single(interrupted.EnumerateArray()).GetProperty("details").GetString());

        // A person decides: run it again. It runs once more (attempt 2) and the release goes on.
        var resolve = await client.PostJsonAsync($"/api/v1/deployments/{id}/hooks/resolve", new { decision = "runAgain", reason = "the migration is safe to repeat" });
        Assert.Equal(HttpStatusCode.OK, resolve.StatusCode);
        var done = await client.WaitForStateAsync(id, "Succeeded");
        Assert.Equal(2, LifecycleHookTests.StepOf(done, "preDeploy").GetProperty("attempts").GetInt32());
        Assert.Equal(2, (await File.ReadAllLinesAsync(runs, Ct)).Length);
        Assert.False(Directory.EnumerateFiles(Path.Combine(cp.DataDirectory, "hooks")).Any(), "a hook process record was left behind");
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    private static bool IsGone(int pid)
    {
        for (var i = 0; i < 50; i++)
        {
            var stat = $"/proc/{pid}/stat";
            if (!File.Exists(stat)) return true;
            try { if (File.ReadAllText(stat).Split(") ")[1].StartsWith('Z')) return true; }
            catch (IOException) { return true; }
            Thread.Sleep(100);
        }
        return false;
    }
}
