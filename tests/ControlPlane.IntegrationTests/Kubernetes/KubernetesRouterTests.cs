using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Kubernetes;
using ControlPlane.Core.Routing;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.IntegrationTests.Kubernetes;

/// <summary>The kubernetes router through the real KubernetesClient against a fake API server speaking the REST protocol.</summary>
public sealed class KubernetesRouterTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private const string Service = "checkout";
    private const string ServicePath = "/api/v1/namespaces/shop/services/checkout";
    private FakeKubernetesApi api = null!;
    private KubernetesClientFactory clients = null!;
    private DataPlaneProbe probe = null!;
    private KubernetesRouter router = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        api = await FakeKubernetesApi.StartAsync(Ct);
        clients = new KubernetesClientFactory(_ => new KubernetesClientConfiguration { Host = api.Url.AbsoluteUri });
        probe = new DataPlaneProbe(deadline: TimeSpan.FromSeconds(1));
        router = new KubernetesRouter(clients, probe, TimeProvider.System, NullLogger<KubernetesRouter>.Instance, pollInterval: TimeSpan.FromMilliseconds(20));

        api.AddService(Ns, Service, new Dictionary<string, string> { ["app"] = Service, ["slot"] = "blue" });
        for (var i = 1; i <= 3; i++)
        {
            api.AddPod(Ns, $"checkout-blue-{i}", PodLabels("blue", "1.0.0"), ready: true);
            api.AddPod(Ns, $"checkout-green-{i}", PodLabels("green", "2.0.0"), ready: true);
        }
        // Another application's pods in the same namespace must never count.
        api.AddPod(Ns, "cart-green-1", new Dictionary<string, string> { ["app"] = "cart", ["slot"] = "green", ["version"] = "9.9.9" }, ready: false);
    }

    public async ValueTask DisposeAsync()
    {
        clients.Dispose();
        probe.Dispose();
        await api.DisposeAsync();
    }

    private static Dictionary<string, string> PodLabels(string slot, string version) =>
        new() { ["app"] = Service, ["slot"] = slot, ["version"] = version, ["pod-template-hash"] = slot == "blue" ? "5d8f" : "7c9b" };

    private RouterBinding Binding(bool publicUrl = false, int verifyTimeoutSeconds = 5, string slotLabel = "slot") =>
        new(Service, JsonSerializer.SerializeToElement(new
        {
            @namespace = Ns,
            service = Service,
            slotLabel,
            kubeconfig = (string?)null,
            context = (string?)null,
            publicUrl = publicUrl ? api.PublicUrl(Ns, Service).AbsoluteUri : null,
            verifyTimeoutSeconds,
        }), new Uri("http://checkout-blue.shop.svc:8080/"), new Uri("http://checkout-green.shop.svc:8080/"));

    private string SelectorSlot() => api.Service(Ns, Service)["spec"]!["selector"]!["slot"]!.GetValue<string>();

    [Fact]
    public async Task Switch_patches_the_slot_label_of_the_selector_with_a_merge_patch_conditional_on_the_resource_version()
    {
        var readVersion = api.Service(Ns, Service)["metadata"]!["resourceVersion"]!.GetValue<string>();

        await router.SwitchAsync(Binding(), Slot.Green, Ct);

        var write = Assert.Single(api.Writes);
        Assert.Equal("PATCH", write.Method);
        Assert.Equal(ServicePath, write.Path);
        Assert.StartsWith("application/merge-patch+json", write.ContentType);
        Assert.True(JsonNode.DeepEquals(
            JsonNode.Parse("""{"metadata":{"resourceVersion":"RV"},"spec":{"selector":{"slot":"green"}}}""".Replace("RV", readVersion)), write.Json),
            $"unexpected patch body {write.Body}");
        Assert.Equal(200, write.Status);
        // The readiness check asked for exactly the target slot's pods: the Service's selector with the slot label replaced.
        Assert.Contains(api.Requests, r => r.Method == "GET" && r.Path == "/api/v1/namespaces/shop/pods" && r.Query.Contains("labelSelector=app=checkout,slot=green"));

        var selector = api.Service(Ns, Service)["spec"]!["selector"]!;
        Assert.Equal("checkout", selector["app"]!.GetValue<string>());
        Assert.Equal("green", selector["slot"]!.GetValue<string>());
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(Binding(), Ct));
        Assert.Equal(["checkout-green-1", "checkout-green-2", "checkout-green-3"], api.EndpointPods(Ns, Service));
    }

    [Fact]
    public async Task Switch_is_a_no_op_when_the_selector_already_points_at_the_target()
    {
        await router.SwitchAsync(Binding(), Slot.Blue, Ct);

        Assert.Empty(api.Writes);
        Assert.Equal("blue", SelectorSlot());
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(Binding(), Ct));
    }

    [Fact]
    public async Task Switch_refuses_while_not_all_target_pods_are_ready()
    {
        api.SetPodReady(Ns, "checkout-green-1", false);
        api.SetPodReady(Ns, "checkout-green-3", false);

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("green has 1 of 3 pods ready — not switching", error.Message);
        Assert.Empty(api.Writes);
        Assert.Equal("blue", SelectorSlot());
    }

    [Fact]
    public async Task Switch_refuses_when_the_target_slot_has_no_pods()
    {
        for (var i = 1; i <= 3; i++)
            api.DeletePod(Ns, $"checkout-green-{i}");

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("green has no pods matching app=checkout,slot=green — not switching", error.Message);
        Assert.Empty(api.Writes);
    }

    [Fact]
    public async Task Switch_retries_a_resource_version_conflict_with_a_fresh_read()
    {
        api.WriteConcurrentlyBeforeNextWrites("services", 2);

        await router.SwitchAsync(Binding(), Slot.Green, Ct);

        var patches = api.Writes;
        Assert.Equal([409, 409, 200], patches.Select(p => p.Status));
        // Each retry is conditional on the resourceVersion it has just read, never on a stale one.
        var versions = patches.Select(p => p.Json!["metadata"]!["resourceVersion"]!.GetValue<string>()).ToList();
        Assert.Equal(3, versions.Distinct().Count());
        Assert.Equal("green", SelectorSlot());
    }

    [Fact]
    public async Task Switch_gives_up_after_repeated_conflicts_and_says_so()
    {
        api.WriteConcurrentlyBeforeNextWrites("services", 100);

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("kept changing", error.Message);
        Assert.Contains("the object has been modified", error.Message);
        Assert.Equal(5, api.Writes.Count);
        Assert.Equal("blue", SelectorSlot());
    }

    [Fact]
    public async Task Forbidden_patch_names_the_verb_the_resource_and_the_rbac_role()
    {
        api.Forbid("patch", "services");

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("ControlPlane may not patch services in namespace shop", error.Message);
        Assert.Contains(FakeKubernetesApi.User, error.Message);
        Assert.Contains("deploy/kubernetes/rbac.yaml", error.Message);
        Assert.Equal(403, Assert.Single(api.Writes).Status);
        Assert.Equal("blue", SelectorSlot());
    }

    [Fact]
    public async Task Verify_waits_for_lagging_endpoint_slices_then_proves_the_public_url()
    {
        api.DelayEndpointUpdates(Ns, Service, polls: 3);
        var binding = Binding(publicUrl: true);

        await router.SwitchAsync(binding, Slot.Green, Ct);
        // Traffic has not moved yet: the Service's endpoints (and so its public URL) are still blue.
        Assert.Equal(["checkout-blue-1", "checkout-blue-2", "checkout-blue-3"], api.EndpointPods(Ns, Service));

        var proof = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);

        Assert.True(proof.Verified, proof.Message);
        Assert.Contains("EndpointSlices of Service shop/checkout list exactly the 3 ready green pods", proof.Message);
        Assert.Contains("answered 2.0.0 from green", proof.Message);
        var sliceLists = api.Requests.Where(r => r.Path == "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices").ToList();
        Assert.Equal(4, sliceLists.Count);
        Assert.All(sliceLists, r => Assert.Contains("labelSelector=kubernetes.io/service-name=checkout", r.Query));
        Assert.Contains(api.Requests, r => r.Path == "/public/shop/checkout/");
    }

    [Fact]
    public async Task Verify_without_a_public_url_says_only_the_endpoints_were_verified()
    {
        await router.SwitchAsync(Binding(), Slot.Green, Ct);

        var proof = await router.VerifyDataPlaneAsync(Binding(), Slot.Green, "2.0.0", Ct);

        Assert.True(proof.Verified, proof.Message);
        Assert.Contains("no publicUrl is set, so no request was sent through the Service", proof.Message);
    }

    [Fact]
    public async Task Verify_fails_clearly_when_the_endpoints_never_move_to_the_new_slot()
    {
        api.FreezeEndpoints(Ns, Service);
        var binding = Binding(publicUrl: true, verifyTimeoutSeconds: 1);
        await router.SwitchAsync(binding, Slot.Green, Ct);

        var proof = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);

        Assert.False(proof.Verified);
        Assert.Contains("did not converge on the green pods within 1 s", proof.Message);
        Assert.Contains("ready endpoints are checkout-blue-1, checkout-blue-2, checkout-blue-3", proof.Message);
        Assert.Contains("missing checkout-green-1, checkout-green-2, checkout-green-3", proof.Message);
        // The public URL is only asked once the endpoints are right: it would answer blue here.
        Assert.DoesNotContain(api.Requests, r => r.Path.StartsWith("/public/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verify_fails_when_the_new_slots_pods_stop_being_ready_after_the_switch()
    {
        await router.SwitchAsync(Binding(), Slot.Green, Ct);
        // CrashLoopBackOff right after the flip: the selector now matches no ready pod and the Service is empty.
        for (var i = 1; i <= 3; i++)
            api.SetPodReady(Ns, $"checkout-green-{i}", false);

        var proof = await router.VerifyDataPlaneAsync(Binding(verifyTimeoutSeconds: 1), Slot.Green, "2.0.0", Ct);

        Assert.False(proof.Verified);
        Assert.Contains("the Service has no ready endpoints", proof.Message);
        Assert.Contains("green has no ready pods (0 of 3)", proof.Message);
    }

    [Fact]
    public async Task Verify_reports_a_forbidden_endpoint_slice_list_with_the_rbac_hint()
    {
        api.Forbid("list", "endpointslices");

        var proof = await router.VerifyDataPlaneAsync(Binding(), Slot.Blue, "1.0.0", Ct);

        Assert.False(proof.Verified);
        Assert.Contains("ControlPlane may not list endpointslices.discovery.k8s.io in namespace shop", proof.Message);
        Assert.Contains("deploy/kubernetes/rbac.yaml", proof.Message);
    }

    [Fact]
    public async Task Attach_returns_the_public_url_or_a_k8s_uri_without_calling_the_api()
    {
        Assert.Equal(api.PublicUrl(Ns, Service), await router.AttachAsync(Binding(publicUrl: true), Slot.Blue, Ct));
        Assert.Equal(new Uri("k8s://shop/checkout"), await router.AttachAsync(Binding(), Slot.Blue, Ct));
        Assert.Empty(api.Requests);
    }

    [Fact]
    public async Task A_missing_service_or_slot_label_is_reported_plainly()
    {
        var otherLabel = Binding(slotLabel: "color");
        var noLabel = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(otherLabel, Slot.Green, Ct));
        Assert.Contains("Service shop/checkout has no selector label 'color'", noLabel.Message);
        Assert.Null(await router.ReadLiveSlotAsync(otherLabel, Ct));

        var missing = Binding() with
        {
            Settings = JsonSerializer.SerializeToElement(new { @namespace = Ns, service = "payments" }),
        };
        var notFound = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(missing, Slot.Green, Ct));
        Assert.Contains("Service shop/payments does not exist", notFound.Message);
        Assert.Null(await router.ReadLiveSlotAsync(missing, Ct));
    }

    [Fact]
    public void Settings_are_validated_with_relative_field_names()
    {
        var errors = router.ValidateSettings(JsonSerializer.SerializeToElement(new
        {
            service = "Checkout_API",
            slotLabel = "not a label",
            publicUrl = "ftp://x",
            verifyTimeoutSeconds = 0,
            colour = "blue",
        }));

        Assert.Equal(["colour", "namespace", "publicUrl", "service", "slotLabel", "verifyTimeoutSeconds"], errors.Select(e => e.Field).Order());
        Assert.Contains(errors, e => e.Field == "namespace" && e.Message == "is required");
        Assert.Empty(router.ValidateSettings(JsonSerializer.SerializeToElement(new { @namespace = "shop", service = "checkout" })));
        Assert.Empty(router.ValidateSettings(Binding(publicUrl: true).Settings));
    }
}
