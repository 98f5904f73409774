using System.Text.Json.Nodes;
using ControlPlane.Core.Hooks;
using ControlPlane.Core.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.IntegrationTests.Kubernetes;

/// <summary>
/// The kubernetesJob hook through the real KubernetesClient against the fake API server's Jobs (whose answers the kubectl
/// test proves): one Job per release and hook point, its pod's log as the output, the Job's own conditions as the outcome,
/// found again after a crash instead of started twice, deleted on timeout and on abort.
/// </summary>
public sealed class KubernetesJobHookTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private const string JobsPath = "/apis/batch/v1/namespaces/shop/jobs";
    private FakeKubernetesApi api = null!;
    private KubernetesClientFactory clients = null!;
    private KubernetesJobHook jobs = null!;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        api = await FakeKubernetesApi.StartAsync(Ct);
        clients = new KubernetesClientFactory(_ => new KubernetesClientConfiguration { Host = api.Url.AbsoluteUri });
        jobs = new KubernetesJobHook(clients, NullLogger<KubernetesJobHook>.Instance);
    }

    public async ValueTask DisposeAsync()
    {
        clients.Dispose();
        await api.DisposeAsync();
    }

    private static LifecycleHook Hook(int timeoutSeconds = 30) => new()
    {
        Kind = HookKinds.KubernetesJob, Image = "registry/checkout-migrate:{version}", Command = ["migrate", "up"],
        Env = new() { ["DB_HOST"] = "orders-db" }, TimeoutSeconds = timeoutSeconds,
    };

    private static HookContext Context(Guid release, string step = HookSteps.PreDeploy, int attempt = 1) =>
        new(release, "checkout", "2.0.0", "1.0.0", "green", step, attempt, null, new KubernetesJobTarget(new KubernetesConnection(null, null), Ns));

    private IReadOnlyList<RecordedRequest> Creates => [.. api.Writes.Where(r => r.Method == "POST" && r.Path == JobsPath)];

    private IReadOnlyList<RecordedRequest> Deletes => [.. api.Writes.Where(r => r.Method == "DELETE")];

    [Fact]
    public async Task A_Job_named_after_the_release_and_point_runs_the_image_with_the_release_id_and_its_log_is_the_output()
    {
        var release = Guid.NewGuid();
        var name = KubernetesJobHook.JobName(release, HookSteps.PreDeploy);
        api.JobBehaviour = _ => FakeJobRun.Succeeds("applied 3 migrations\n", polls: 2);

        var result = await jobs.RunAsync(Hook(), Context(release), Ct, CancellationToken.None);

        Assert.True(result.Succeeded, result.Message);
        Assert.Equal((0, "applied 3 migrations\n"), (result.ExitStatus, result.Output));
        Assert.Equal($"cp-predeploy-{release:N}", name);
        var sent = Assert.Single(Creates).Json!;
        Assert.Equal(name, (string?)sent["metadata"]!["name"]);
        Assert.Equal(("1", 0, 30L), ((string?)sent["metadata"]!["annotations"]![KubernetesJobHook.AttemptAnnotation], (int?)sent["spec"]!["backoffLimit"],
            (long?)sent["spec"]!["activeDeadlineSeconds"]));
        var pod = sent["spec"]!["template"]!["spec"]!;
        Assert.Equal("Never", (string?)pod["restartPolicy"]);
        var container = pod["containers"]!.AsArray().Single()!;
        Assert.Equal(("hook", "registry/checkout-migrate:2.0.0"), ((string?)container["name"], (string?)container["image"]));
        Assert.Equal(["migrate", "up"], container["command"]!.AsArray().Select(c => (string?)c));
        var env = container["env"]!.AsArray().ToDictionary(e => (string)e!["name"]!, e => (string?)e!["value"]);
        Assert.Equal((release.ToString(), "preDeploy", "orders-db", "2.0.0"), (env["CONTROLPLANE_RELEASE_ID"], env["CONTROLPLANE_HOOK"], env["DB_HOST"], env["CONTROLPLANE_VERSION"]));
        Assert.Contains(api.Requests, r => r.Path.EndsWith("/log", StringComparison.Ordinal) && r.Permission == ("get", "", "pods/log"));
        Assert.Equal(("create", "batch", "jobs"), Creates[0].Permission);
        Assert.Empty(Deletes);
    }

    [Fact]
    public async Task A_failed_Job_fails_the_hook_with_the_container_exit_code_and_its_log()
    {
        api.JobBehaviour = _ => FakeJobRun.Fails(3, "ERROR: column \"total\" already exists\n");

        var result = await jobs.RunAsync(Hook(), Context(Guid.NewGuid()), Ct, CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Equal(3, result.ExitStatus);
        Assert.Contains("column \"total\" already exists", result.Output);
        Assert.Contains("its container exited with 3 (BackoffLimitExceeded", result.Message);
    }

    [Fact]
    public async Task A_Job_past_its_deadline_times_out_and_is_deleted_with_its_pods()
    {
        var release = Guid.NewGuid();
        var name = KubernetesJobHook.JobName(release, HookSteps.PreSwitch);
        api.JobBehaviour = _ => FakeJobRun.RunsForever("waiting for lock\n");

        var result = await jobs.RunAsync(Hook(timeoutSeconds: 1), Context(release, HookSteps.PreSwitch), Ct, CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("timed out", result.Message);
        Assert.Contains("the Job was deleted", result.Message);
        Assert.Null(api.Job(Ns, name));
        Assert.Empty(api.JobPods(Ns, name));
        var delete = Assert.Single(Deletes);
        Assert.Equal(($"{JobsPath}/{name}", "Background"), (delete.Path, (string?)delete.Json!["propagationPolicy"]));
    }

    [Fact]
    public async Task An_abort_deletes_the_running_Job_and_says_so()
    {
        var release = Guid.NewGuid();
        var name = KubernetesJobHook.JobName(release, HookSteps.PreDeploy);
        api.JobBehaviour = _ => FakeJobRun.RunsForever("copying rows\n");
        using var abort = new CancellationTokenSource();

        var run = jobs.RunAsync(Hook(timeoutSeconds: 600), Context(release), Ct, abort.Token);
        while (api.JobPods(Ns, name).Count == 0) await Task.Delay(50, Ct);
        await abort.CancelAsync();
        var result = await run;

        Assert.False(result.Succeeded);
        Assert.Contains("the release was aborted", result.Message);
        Assert.Contains("copying rows", result.Output);
        Assert.Null(api.Job(Ns, name));
        Assert.Empty(api.JobPods(Ns, name));
        Assert.Single(Deletes);
    }

    [Fact]
    public async Task After_a_crash_the_same_attempt_finds_its_Job_and_waits_for_it_instead_of_creating_another()
    {
        var release = Guid.NewGuid();
        var name = KubernetesJobHook.JobName(release, HookSteps.Expand);
        api.JobBehaviour = _ => FakeJobRun.Succeeds("expanded\n", polls: 4);
        using (var stopping = new CancellationTokenSource())
        {
            // The first ControlPlane stops while it waits: the Job is left running for the next one.
            var first = jobs.RunAsync(Hook(), Context(release, HookSteps.Expand), stopping.Token, CancellationToken.None);
            while (api.JobPods(Ns, name).Count == 0) await Task.Delay(50, Ct);
            await stopping.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        }
        Assert.NotNull(api.Job(Ns, name));
        Assert.True(await jobs.ExistsAsync(Context(release, HookSteps.Expand), Ct));
        Assert.False(await jobs.ExistsAsync(Context(release, HookSteps.Expand, attempt: 2), Ct));

        var resumed = await jobs.RunAsync(Hook(), Context(release, HookSteps.Expand), Ct, CancellationToken.None);

        Assert.True(resumed.Succeeded, resumed.Message);
        Assert.Contains("found running from before, not started again", resumed.Message);
        Assert.Equal("expanded\n", resumed.Output);
        Assert.Single(Creates);
        Assert.Empty(Deletes);
    }

    [Fact]
    public async Task A_new_attempt_replaces_the_finished_Job_of_the_previous_one()
    {
        var release = Guid.NewGuid();
        var name = KubernetesJobHook.JobName(release, HookSteps.PostHold);
        var runs = 0;
        api.JobBehaviour = _ => ++runs == 1 ? FakeJobRun.Fails(1, "state locked\n") : FakeJobRun.Succeeds("cleaned\n");

        var first = await jobs.RunAsync(Hook(), Context(release, HookSteps.PostHold), Ct, CancellationToken.None);
        var second = await jobs.RunAsync(Hook(), Context(release, HookSteps.PostHold, attempt: 2), Ct, CancellationToken.None);

        Assert.False(first.Succeeded);
        Assert.True(second.Succeeded, second.Message);
        Assert.Equal("cleaned\n", second.Output);
        Assert.Equal(2, Creates.Count);
        Assert.Single(Deletes);
        Assert.Equal("2", (string?)api.Job(Ns, name)!["metadata"]!["annotations"]![KubernetesJobHook.AttemptAnnotation]);
    }

    [Fact]
    public async Task A_long_log_is_truncated_like_other_hook_output_and_RBAC_refusals_name_the_role()
    {
        api.JobBehaviour = _ => FakeJobRun.Succeeds(string.Concat(Enumerable.Range(0, 3000).Select(i => $"line {i:D5}\n")));
        var result = await jobs.RunAsync(Hook(), Context(Guid.NewGuid()), Ct, CancellationToken.None);
        Assert.True(result.Succeeded);
        Assert.True(result.Output.Length < HookRunner.MaxOutput + 100, $"{result.Output.Length} characters kept");
        Assert.StartsWith("line 00000", result.Output);
        Assert.EndsWith("line 02999\n", result.Output);
        Assert.Contains("characters left out", result.Output);

        api.Forbid("create", "jobs");
        var refused = await jobs.RunAsync(Hook(), Context(Guid.NewGuid()), Ct, CancellationToken.None);
        Assert.False(refused.Succeeded);
        Assert.Contains("may not create jobs.batch in namespace shop", refused.Message);
        Assert.Contains(KubernetesApiException.RbacManifest, refused.Message);
    }
}
