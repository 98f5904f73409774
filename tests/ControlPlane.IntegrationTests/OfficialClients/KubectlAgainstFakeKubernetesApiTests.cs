using System.Text.Json.Nodes;
using ControlPlane.IntegrationTests.Kubernetes;

namespace ControlPlane.IntegrationTests.OfficialClients;

/// <summary>
/// The fake Kubernetes API is only worth what it shares with a real API server. The real <c>kubectl</c> (v1.32, Debian's
/// package) drives it here with every verb the kubernetes router and deployer use — get a Service and a Deployment, list Pods and
/// EndpointSlices by label selector, merge-patch a Service conditional on its resourceVersion, strategic- and merge-patch a
/// Deployment, merge-patch the scale subresource, create/get/delete a Job and read its pod's log (kubernetesJob hooks) — and must decode each answer, and each error (404, 409, 403) as the
/// <c>Status</c> object it prints as "Error from server (Reason): message".
/// </summary>
public sealed class KubectlAgainstFakeKubernetesApiTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly string _home = Directory.CreateTempSubdirectory("cp-kubectl-").FullName;
    private FakeKubernetesApi _api = null!;

    public async ValueTask InitializeAsync()
    {
        Assert.True(File.Exists("/usr/bin/kubectl"), "kubectl is not installed: apt-get install kubectl (.ci/run installs it when missing).");
        _api = await FakeKubernetesApi.StartAsync(Ct);
        _api.AddService(Ns, "checkout", new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = "blue" });
        foreach (var slot in new[] { "blue", "green" })
        {
            for (var i = 1; i <= 2; i++)
                _api.AddPod(Ns, $"checkout-{slot}-{i}", Labels(slot), ready: true);
            _api.AddDeployment(Ns, $"checkout-{slot}", Labels(slot), $"registry/checkout:{(slot == "blue" ? "1.0.0" : "2.0.0")}", replicas: 2);
        }
        _api.AddPod(Ns, "cart-green-1", new Dictionary<string, string> { ["app"] = "cart", ["slot"] = "green" }, ready: false);
        await File.WriteAllTextAsync(Path.Combine(_home, "kubeconfig"), $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: {_api.Url.AbsoluteUri.TrimEnd('/')}
            users:
            - name: controlplane
              user:
                token: not-a-real-token
            contexts:
            - name: fake
              context:
                cluster: fake
                user: controlplane
                namespace: {Ns}
            current-context: fake
            """, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _api.DisposeAsync();
        try { Directory.Delete(_home, recursive: true); } catch (IOException) { }
    }

    private static Dictionary<string, string> Labels(string slot) =>
        new() { ["app"] = "checkout", ["slot"] = slot, ["version"] = slot == "blue" ? "1.0.0" : "2.0.0" };

    [Fact]
    public async Task Get_a_Service_and_a_Deployment_decodes_to_what_the_fake_holds()
    {
        var service = await JsonAsync("get", "service", "checkout", "-o", "json");
        Assert.True(JsonNode.DeepEquals(_api.Service(Ns, "checkout"), service), $"kubectl read {service}");
        Assert.Equal("blue", (string?)service["spec"]!["selector"]!["slot"]);

        var deployment = await JsonAsync("get", "deployment", "checkout-green", "-o", "json");
        Assert.True(JsonNode.DeepEquals(_api.Deployment(Ns, "checkout-green"), deployment), $"kubectl read {deployment}");
        Assert.Equal("apps/v1", (string?)deployment["apiVersion"]);

        // kubectl's own rendering of the rollout status reads the status fields the deployer polls.
        var status = await KubectlAsync("rollout", "status", "deployment/checkout-green", "--watch=false");
        Assert.Equal(0, status.Code);
        Assert.Contains("successfully rolled out", status.Output);
    }

    [Fact]
    public async Task List_Pods_and_EndpointSlices_by_label_selector_as_the_router_asks()
    {
        var pods = await JsonAsync("get", "pods", "-l", "app=checkout,slot=green", "-o", "json");
        Assert.Equal("List", (string?)pods["kind"]);
        Assert.Equal(["checkout-green-1", "checkout-green-2"], pods["items"]!.AsArray().Select(p => (string?)p!["metadata"]!["name"]).Order());
        Assert.All(pods["items"]!.AsArray(), p => Assert.Equal("True",
            (string?)p!["status"]!["conditions"]!.AsArray().Single(c => (string?)c!["type"] == "Ready")!["status"]));

        var slices = await JsonAsync("get", "endpointslices", "-l", "kubernetes.io/service-name=checkout", "-o", "json");
        var endpoints = slices["items"]!.AsArray().SelectMany(s => s!["endpoints"]!.AsArray())
            .Where(e => (bool?)e!["conditions"]!["ready"] == true).Select(e => (string)e!["targetRef"]!["name"]!).Order().ToList();
        Assert.Equal(_api.EndpointPods(Ns, "checkout"), endpoints);
        Assert.Equal(["checkout-blue-1", "checkout-blue-2"], endpoints);

        // kubectl's table output goes through the same decoding (and the server-side-printing fallback).
        var table = await KubectlAsync("get", "pods", "-l", "app=checkout,slot=blue");
        Assert.Equal(0, table.Code);
        Assert.Contains("checkout-blue-1", table.Output);
        Assert.DoesNotContain("cart-green-1", table.Output);
    }

    [Fact]
    public async Task A_merge_patch_of_the_Service_selector_conditional_on_the_resourceVersion_switches_and_a_stale_one_conflicts()
    {
        var read = _api.Service(Ns, "checkout")["metadata"]!["resourceVersion"]!.GetValue<string>();
        var patch = """{"metadata":{"resourceVersion":"RV"},"spec":{"selector":{"slot":"green"}}}""".Replace("RV", read, StringComparison.Ordinal);

        var switched = await JsonAsync("patch", "service", "checkout", "--type=merge", "-p", patch, "-o", "json");
        Assert.Equal("green", (string?)switched["spec"]!["selector"]!["slot"]);
        Assert.Equal("green", (string?)_api.Service(Ns, "checkout")["spec"]!["selector"]!["slot"]);
        Assert.NotEqual(read, (string?)switched["metadata"]!["resourceVersion"]);
        var write = Assert.Single(_api.Writes);
        Assert.StartsWith("application/merge-patch+json", write.ContentType);
        Assert.Equal(("patch", "", "services"), write.Permission);

        var stale = await KubectlAsync("patch", "service", "checkout", "--type=merge", "-p", patch);
        Assert.Equal(1, stale.Code);
        Assert.Contains("Error from server (Conflict): Operation cannot be fulfilled on services \"checkout\": the object has been modified; " +
                        "please apply your changes to the latest version and try again", stale.Error);
        Assert.Equal("green", (string?)_api.Service(Ns, "checkout")["spec"]!["selector"]!["slot"]);
    }

    [Fact]
    public async Task Strategic_and_merge_patches_of_a_Deployment_and_the_scale_subresource_change_what_the_deployer_changes()
    {
        var before = _api.Deployment(Ns, "checkout-green");
        var strategic = """{"metadata":{"labels":{"version":"2.1.0"}},"spec":{"replicas":3,"template":{"metadata":{"labels":{"version":"2.1.0"}},"spec":{"containers":[{"name":"app","image":"registry/checkout:2.1.0"}]}}}}""";
        var patched = await JsonAsync("patch", "deployment", "checkout-green", "--type=strategic", "-p", strategic, "-o", "json");
        var containers = patched["spec"]!["template"]!["spec"]!["containers"]!.AsArray();
        Assert.Equal(["app", "log-shipper"], containers.Select(c => (string?)c!["name"]));
        Assert.Equal("registry/checkout:2.1.0", (string?)containers[0]!["image"]);
        Assert.Equal(long.Parse(before["metadata"]!["generation"]!.ToJsonString()) + 1, long.Parse(patched["metadata"]!["generation"]!.ToJsonString()));
        Assert.StartsWith("application/strategic-merge-patch+json", _api.Writes[^1].ContentType);

        var annotated = await KubectlAsync("annotate", "deployment", "checkout-green", "controlplane.io/rollout-started=2026-01-01T00:00:00Z");
        Assert.Equal(0, annotated.Code);
        var cleared = await JsonAsync("patch", "deployment", "checkout-green", "--type=merge", "-p",
            """{"metadata":{"annotations":{"controlplane.io/rollout-started":null}}}""", "-o", "json");
        Assert.Null(cleared["metadata"]!["annotations"]?["controlplane.io/rollout-started"]);
        Assert.StartsWith("application/merge-patch+json", _api.Writes[^1].ContentType);

        var scale = await JsonAsync("patch", "deployment", "checkout-green", "--subresource=scale", "--type=merge", "-p", """{"spec":{"replicas":0}}""", "-o", "json");
        Assert.Equal("Scale", (string?)scale["kind"]);
        Assert.Equal(0, (int?)scale["spec"]!["replicas"]);
        Assert.Equal(0, (int?)_api.Deployment(Ns, "checkout-green")["spec"]!["replicas"]);
        Assert.Equal(("patch", "apps", "deployments/scale"), _api.Writes[^1].Permission);

        var scaled = await KubectlAsync("scale", "deployment", "checkout-blue", "--replicas=0");
        Assert.Equal(0, scaled.Code);
        Assert.Contains("deployment.apps/checkout-blue scaled", scaled.Output);
        Assert.Equal(0, (int?)_api.Deployment(Ns, "checkout-blue")["spec"]!["replicas"]);
    }

    [Fact]
    public async Task NotFound_and_Forbidden_answers_are_Status_objects_kubectl_prints_with_their_reason()
    {
        var missing = await KubectlAsync("get", "service", "nope", "-o", "json");
        Assert.Equal(1, missing.Code);
        Assert.Contains("Error from server (NotFound): services \"nope\" not found", missing.Error);

        var missingDeployment = await KubectlAsync("get", "deployment", "nope", "-o", "json");
        Assert.Contains("Error from server (NotFound): deployments.apps \"nope\" not found", missingDeployment.Error);

        _api.Forbid("patch", "services");
        var forbidden = await KubectlAsync("patch", "service", "checkout", "--type=merge", "-p", """{"spec":{"selector":{"slot":"green"}}}""");
        Assert.Equal(1, forbidden.Code);
        Assert.Contains($"Error from server (Forbidden): services \"checkout\" is forbidden: User \"{FakeKubernetesApi.User}\" cannot patch resource " +
                        "\"services\" in API group \"\" in the namespace \"shop\"", forbidden.Error);
        Assert.Equal("blue", (string?)_api.Service(Ns, "checkout")["spec"]!["selector"]!["slot"]);

        _api.Forbid("list", "endpointslices");
        var forbiddenList = await KubectlAsync("get", "endpointslices", "-l", "kubernetes.io/service-name=checkout", "-o", "json");
        Assert.Contains("Error from server (Forbidden): endpointslices.discovery.k8s.io is forbidden", forbiddenList.Error);
    }

    [Fact]
    public async Task Jobs_create_get_logs_and_delete_as_kubectl_does_them_and_as_the_kubernetesJob_hook_needs()
    {
        _api.JobBehaviour = name => name == "cp-predeploy-abc" ? FakeJobRun.Succeeds("migrated 2 tables\n") : FakeJobRun.RunsForever("waiting\n");
        var manifest = Path.Combine(_home, "job.json");
        await File.WriteAllTextAsync(manifest, """
            {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"cp-predeploy-abc","annotations":{"controlplane.io/hook-attempt":"1"}},
             "spec":{"backoffLimit":0,"activeDeadlineSeconds":600,"template":{"spec":{"restartPolicy":"Never",
               "containers":[{"name":"hook","image":"registry/migrate:2.0.0","env":[{"name":"CONTROLPLANE_RELEASE_ID","value":"abc"}]}]}}}}
            """, Ct);

        var created = await JsonAsync("create", "-f", manifest, "--validate=false", "-o", "json");
        Assert.Equal(("Job", "batch/v1"), ((string?)created["kind"], (string?)created["apiVersion"]));
        var uid = (string?)created["metadata"]!["uid"];
        Assert.Equal(uid, (string?)created["spec"]!["selector"]!["matchLabels"]!["batch.kubernetes.io/controller-uid"]);
        Assert.Equal(("create", "batch", "jobs"), _api.Writes[^1].Permission);
        var again = await KubectlAsync("create", "-f", manifest, "--validate=false");
        Assert.Equal(1, again.Code);
        Assert.Contains("Error from server (AlreadyExists)", again.Error);
        Assert.Contains("jobs.batch \"cp-predeploy-abc\" already exists", again.Error);

        // The controller finished the pod: the Job's conditions read as kubectl reads them, the pod's log through the Job.
        var job = await JsonAsync("get", "job", "cp-predeploy-abc", "-o", "json");
        Assert.Equal("True", (string?)job["status"]!["conditions"]!.AsArray().Single(c => (string?)c!["type"] == "Complete")!["status"]);
        Assert.Equal(1, (int?)job["status"]!["succeeded"]);
        var logs = await KubectlAsync("logs", "job/cp-predeploy-abc");
        Assert.True(logs.Code == 0, logs.Error);
        Assert.Equal("migrated 2 tables\n", logs.Output);
        var pods = await JsonAsync("get", "pods", "-l", "job-name=cp-predeploy-abc", "-o", "json");
        var pod = pods["items"]!.AsArray().Single()!;
        Assert.Equal(0, (int?)pod["status"]!["containerStatuses"]![0]!["state"]!["terminated"]!["exitCode"]);
        var table = await KubectlAsync("get", "jobs");
        Assert.Contains("cp-predeploy-abc", table.Output);

        var deleted = await KubectlAsync("delete", "job", "cp-predeploy-abc", "--cascade=background", "--wait=false");
        Assert.True(deleted.Code == 0, deleted.Error);
        Assert.Contains("job.batch \"cp-predeploy-abc\" deleted", deleted.Output);
        var delete = _api.Writes[^1];
        Assert.Equal(("DELETE", ("delete", "batch", "jobs")), (delete.Method, delete.Permission!.Value));
        Assert.Equal("Background", (string?)delete.Json!["propagationPolicy"]);
        Assert.Empty(_api.JobPods(Ns, "cp-predeploy-abc"));
        var missing = await KubectlAsync("get", "job", "cp-predeploy-abc");
        Assert.Contains("Error from server (NotFound): jobs.batch \"cp-predeploy-abc\" not found", missing.Error);

        _api.Forbid("create", "jobs");
        var forbidden = await KubectlAsync("create", "-f", manifest, "--validate=false");
        Assert.Contains($"jobs.batch is forbidden: User \"{FakeKubernetesApi.User}\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"shop\"", forbidden.Error);
    }

    private async Task<JsonNode> JsonAsync(params string[] arguments)
    {
        var (code, output, error) = await KubectlAsync(arguments);
        Assert.True(code == 0, $"kubectl {string.Join(' ', arguments)} exited with {code}: {error}");
        return JsonNode.Parse(output)!;
    }

    private Task<(int Code, string Output, string Error)> KubectlAsync(params string[] arguments) =>
        OfficialClient.RunAsync("/usr/bin/kubectl", [.. arguments, "--cache-dir", Path.Combine(_home, "cache"), "--request-timeout=20s"], _home, null,
            new Dictionary<string, string> { ["KUBECONFIG"] = Path.Combine(_home, "kubeconfig"), ["HOME"] = _home }, Ct);
}
