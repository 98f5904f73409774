using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Kubernetes;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.IntegrationTests.Kubernetes;

/// <summary>The kubernetes deployer through the real KubernetesClient against a fake API server that simulates rollouts.</summary>
public sealed class KubernetesDeployerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private const string App = "checkout";
    private const string GreenPath = "/apis/apps/v1/namespaces/shop/deployments/checkout-green";
    private FakeKubernetesApi api = null!;
    private KubernetesClientFactory clients = null!;
    private readonly ManualClock clock = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        api = await FakeKubernetesApi.StartAsync(Ct);
        clients = new KubernetesClientFactory(_ => new KubernetesClientConfiguration { Host = api.Url.AbsoluteUri });
        // Blue is live with 3 replicas of 1.0.0; green was scaled down after the last release's hold window.
        api.AddDeployment(Ns, "checkout-blue", Labels("blue", "1.0.0"), "registry/checkout:1.0.0", replicas: 3);
        api.AddDeployment(Ns, "checkout-green", Labels("green", "1.0.0"), "registry/checkout:1.0.0", replicas: 0);
    }

    public async ValueTask DisposeAsync()
    {
        clients.Dispose();
        await api.DisposeAsync();
    }

    private static Dictionary<string, string> Labels(string slot, string version) => new() { ["app"] = App, ["slot"] = slot, ["version"] = version };

    private KubernetesDeployer Deployer(KubernetesClientFactory? factory = null) =>
        new(factory ?? clients, clock, NullLogger<KubernetesDeployer>.Instance, pollInterval: TimeSpan.FromMilliseconds(10));

    private static DeployerBinding Binding(int rolloutTimeoutSeconds = 300) => new(App, JsonSerializer.SerializeToElement(new
    {
        @namespace = Ns,
        deployment = "checkout-{slot}",
        container = "app",
        image = "registry/checkout:{version}",
        versionLabel = "version",
        rolloutTimeoutSeconds,
        previewUrl = "http://checkout-{slot}.shop.svc:8080/",
        kubeconfig = (string?)null,
        context = (string?)null,
    }));

    /// <summary>Calls DeployAsync until it stops being Pending (as the reconciler does), at most 30 times.</summary>
    private async Task<(SlotDeployResult Result, int Calls)> DeployUntilSettledAsync(KubernetesDeployer deployer, Slot slot, string version)
    {
        for (var calls = 1; ; calls++)
        {
            var result = await deployer.DeployAsync(Binding(), slot, version, Ct);
            if (result.Status != SlotDeployStatus.Pending || calls == 30)
                return (result, calls);
        }
    }

    private static string? Annotation(JsonObject deployment) =>
        deployment["metadata"]!["annotations"]?[KubernetesDeployer.RolloutStartedAnnotation]?.GetValue<string>();

    [Fact]
    public async Task Deploy_sets_image_version_label_and_live_replicas_in_one_strategic_patch()
    {
        var readVersion = api.Deployment(Ns, "checkout-green")["metadata"]!["resourceVersion"]!.GetValue<string>();

        var first = await Deployer().DeployAsync(Binding(), Slot.Green, "2.0.0", Ct);

        Assert.Equal(SlotDeployStatus.Pending, first.Status);
        Assert.Contains("Rolling out registry/checkout:2.0.0 to Deployment shop/checkout-green with 3 replicas", first.Message);
        var patch = Assert.Single(api.Writes);
        Assert.Equal(("PATCH", GreenPath), (patch.Method, patch.Path));
        Assert.StartsWith("application/strategic-merge-patch+json", patch.ContentType);
        var body = patch.Json!;
        Assert.Equal(readVersion, body["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal("2.0.0", body["metadata"]!["labels"]!["version"]!.GetValue<string>());
        Assert.Equal(clock.GetUtcNow(), DateTimeOffset.Parse(body["metadata"]!["annotations"]![KubernetesDeployer.RolloutStartedAnnotation]!.GetValue<string>()));
        Assert.Equal(3, body["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal("2.0.0", body["spec"]!["template"]!["metadata"]!["labels"]!["version"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""[{"name":"app","image":"registry/checkout:2.0.0"}]"""), body["spec"]!["template"]!["spec"]!["containers"]));

        var green = api.Deployment(Ns, "checkout-green");
        var containers = green["spec"]!["template"]!["spec"]!["containers"]!.AsArray();
        Assert.Equal("registry/checkout:2.0.0", containers.Single(c => c!["name"]!.GetValue<string>() == "app")!["image"]!.GetValue<string>());
        // Containers merge by name: the sidecar is untouched.
        Assert.Equal("registry/fluent-bit:3", containers.Single(c => c!["name"]!.GetValue<string>() == "log-shipper")!["image"]!.GetValue<string>());
        Assert.Equal(2, green["metadata"]!["generation"]!.GetValue<long>());
        // The live slot is never touched.
        Assert.DoesNotContain(api.Writes, w => w.Path.Contains("checkout-blue", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Deploy_reports_pending_until_the_rollout_completes_then_ready_and_is_idempotent()
    {
        var deployer = Deployer();
        var messages = new List<string>();
        SlotDeployResult result;
        do
        {
            result = await deployer.DeployAsync(Binding(), Slot.Green, "2.0.0", Ct);
            messages.Add(result.Message);
        } while (result.Status == SlotDeployStatus.Pending && messages.Count < 30);

        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.Contains("Deployment shop/checkout-green runs registry/checkout:2.0.0: 3 of 3 replicas updated and available", result.Message);
        // It waited through the controller's steps: observing the generation, updating replicas, making them available.
        Assert.Contains(messages, m => m.Contains("has not observed generation 2 yet", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("1 of 3 replicas updated, 0 available", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("3 of 3 replicas updated, 0 available", StringComparison.Ordinal));
        Assert.True(messages.Count >= 5, string.Join("\n", messages));

        // Ready removes the rollout start, so a later rollout gets its own deadline.
        Assert.Null(Annotation(api.Deployment(Ns, "checkout-green")));
        var writes = api.Writes.Count;
        Assert.Equal(SlotDeployStatus.Ready, (await deployer.DeployAsync(Binding(), Slot.Green, "2.0.0", Ct)).Status);
        Assert.Equal(writes, api.Writes.Count);

        var observed = await deployer.ObserveAsync(Binding(), Slot.Green, Ct);
        Assert.Equal((true, "2.0.0", true), (observed.Running, observed.Version, observed.Healthy));
    }

    [Fact]
    public async Task Rollout_deadline_exceeded_fails_even_after_a_restart_of_controlplane()
    {
        api.StallRollout(Ns, "checkout-green");
        Assert.Equal(SlotDeployStatus.Pending, (await Deployer().DeployAsync(Binding(), Slot.Green, "2.0.0", Ct)).Status);
        var (stillPending, _) = await DeployUntilSettledAsync(Deployer(), Slot.Green, "2.0.0");
        Assert.Equal(SlotDeployStatus.Pending, stillPending.Status);
        Assert.Equal(clock.GetUtcNow(), DateTimeOffset.Parse(Annotation(api.Deployment(Ns, "checkout-green"))!));

        // A new ControlPlane process (new client, new deployer) 5 minutes later: the start is read back from the Deployment.
        clock.Advance(TimeSpan.FromSeconds(301));
        using var restartedClients = new KubernetesClientFactory(_ => new KubernetesClientConfiguration { Host = api.Url.AbsoluteUri });
        var failed = await Deployer(restartedClients).DeployAsync(Binding(), Slot.Green, "2.0.0", Ct);

        Assert.Equal(SlotDeployStatus.Failed, failed.Status);
        Assert.Contains("did not finish rolling out registry/checkout:2.0.0 within 300s", failed.Message);
        Assert.Contains("1 of 3 replicas updated, 0 available", failed.Message);
        // Cleared, so that trying the release again starts a fresh deadline instead of failing at once.
        Assert.Null(Annotation(api.Deployment(Ns, "checkout-green")));
        Assert.Equal(SlotDeployStatus.Pending, (await Deployer().DeployAsync(Binding(), Slot.Green, "2.0.0", Ct)).Status);
    }

    [Fact]
    public async Task Progress_deadline_exceeded_reported_by_kubernetes_fails_with_its_message()
    {
        api.ExceedProgressDeadline(Ns, "checkout-green");

        var (result, _) = await DeployUntilSettledAsync(Deployer(), Slot.Green, "2.0.0");

        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.Contains("exceeded its progress deadline", result.Message);
        Assert.Contains("ReplicaSet \"checkout-green-7c9b\" has timed out progressing.", result.Message);
    }

    [Fact]
    public async Task Deploy_retries_a_resource_version_conflict()
    {
        api.WriteConcurrentlyBeforeNextWrites("deployments", 1);

        var result = await Deployer().DeployAsync(Binding(), Slot.Green, "2.0.0", Ct);

        Assert.Equal(SlotDeployStatus.Pending, result.Status);
        Assert.Equal([409, 200], api.Writes.Select(w => w.Status));
        Assert.NotEqual(api.Writes[0].Json!["metadata"]!["resourceVersion"]!.GetValue<string>(),
            api.Writes[1].Json!["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(Deployer(), Slot.Green, "2.0.0")).Result.Status);
    }

    [Fact]
    public async Task Forbidden_deployment_patch_fails_naming_the_verb_resource_and_rbac()
    {
        api.Forbid("patch", "deployments");

        var result = await Deployer().DeployAsync(Binding(), Slot.Green, "2.0.0", Ct);

        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.Contains("ControlPlane may not patch deployments.apps in namespace shop", result.Message);
        Assert.Contains("deploy/kubernetes/rbac.yaml", result.Message);
        Assert.Equal(403, Assert.Single(api.Writes).Status);
    }

    [Fact]
    public async Task Stop_scales_to_zero_through_the_scale_subresource_and_is_a_no_op_when_stopped()
    {
        var deployer = Deployer();

        await deployer.StopAsync(Binding(), Slot.Blue, Ct);

        var write = Assert.Single(api.Writes);
        Assert.Equal(("PATCH", "/apis/apps/v1/namespaces/shop/deployments/checkout-blue/scale"), (write.Method, write.Path));
        Assert.StartsWith("application/merge-patch+json", write.ContentType);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"spec":{"replicas":0}}"""), write.Json));
        Assert.Equal(0, api.Deployment(Ns, "checkout-blue")["spec"]!["replicas"]!.GetValue<int>());

        await deployer.StopAsync(Binding(), Slot.Green, Ct);
        await deployer.StopAsync(Binding(), Slot.Blue, Ct);
        Assert.Single(api.Writes);
        var observed = await deployer.ObserveAsync(Binding(), Slot.Green, Ct);
        Assert.False(observed.Healthy);
        Assert.Contains("scaled to 0", observed.Message);
    }

    [Fact]
    public async Task Forbidden_scale_fails_stop_with_the_rbac_hint()
    {
        api.Forbid("patch", "deployments/scale");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Deployer().StopAsync(Binding(), Slot.Blue, Ct));

        Assert.Contains("ControlPlane may not patch deployments.apps/scale in namespace shop", error.Message);
        Assert.Contains("deploy/kubernetes/rbac.yaml", error.Message);
    }

    [Fact]
    public async Task A_missing_deployment_or_container_fails_with_what_to_fix()
    {
        var missing = new DeployerBinding("payments", JsonSerializer.SerializeToElement(new
        {
            @namespace = Ns, deployment = "{app}-{slot}", image = "registry/payments:{version}", previewUrl = "http://{app}-{slot}.shop.svc/",
        }));
        var notFound = await Deployer().DeployAsync(missing, Slot.Green, "2.0.0", Ct);
        Assert.Equal(SlotDeployStatus.Failed, notFound.Status);
        Assert.Contains("Deployment shop/payments-green does not exist", notFound.Message);

        var wrongContainer = new DeployerBinding(App, JsonSerializer.SerializeToElement(new
        {
            @namespace = Ns, deployment = "checkout-{slot}", container = "web", image = "registry/checkout:{version}", previewUrl = "http://checkout-{slot}.shop.svc/",
        }));
        var noContainer = await Deployer().DeployAsync(wrongContainer, Slot.Green, "2.0.0", Ct);
        Assert.Equal(SlotDeployStatus.Failed, noContainer.Status);
        Assert.Contains("has no container named web (it has: app, log-shipper)", noContainer.Message);
        Assert.Empty(api.Writes);
    }

    [Fact]
    public void Endpoint_and_settings_come_from_the_templates()
    {
        var deployer = Deployer();
        Assert.Equal(new Uri("http://checkout-green.shop.svc:8080/"), deployer.EndpointOf(Binding(), Slot.Green));

        var errors = deployer.ValidateSettings(JsonSerializer.SerializeToElement(new
        {
            @namespace = "shop", deployment = "checkout", image = "registry/checkout:latest", rolloutTimeoutSeconds = 0, previewUrl = "not a url {slot}",
        }));
        Assert.Equal(["deployment", "image", "previewUrl", "rolloutTimeoutSeconds"], errors.Select(e => e.Field).Order());
        Assert.Empty(deployer.ValidateSettings(Binding().Settings));
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset now = start;
        public override DateTimeOffset GetUtcNow() => now;
        public void Advance(TimeSpan by) => now += by;
    }
}
