using System.Text.Json;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Kubernetes;
using ControlPlane.Core.Routing;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.IntegrationTests.Kubernetes;

/// <summary>The example manifests under deploy/kubernetes: they parse, fit the router and deployer, and the Role grants what the code calls.</summary>
public sealed class ManifestTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string ManifestDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "deploy", "kubernetes");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("deploy/kubernetes not found above " + AppContext.BaseDirectory);
    }

    private static List<object> Load(string file) =>
        KubernetesYaml.LoadAllFromString(File.ReadAllText(Path.Combine(ManifestDirectory(), file))).ToList();

    [Fact]
    public void Example_app_has_a_slot_selecting_service_and_one_deployment_per_slot()
    {
        var objects = Load("checkout.yaml");

        var service = objects.OfType<V1Service>().Single(s => s.Metadata.Name == "checkout");
        Assert.Equal(new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = "blue" }, service.Spec.Selector);
        Assert.All(objects.OfType<V1Service>().Concat<IMetadata<V1ObjectMeta>>(objects.OfType<V1Deployment>()), o => Assert.Null(o.Metadata.NamespaceProperty));
        foreach (var slot in new[] { "blue", "green" })
        {
            var deployment = objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == $"checkout-{slot}");
            Assert.Equal(new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = slot }, deployment.Spec.Selector.MatchLabels);
            foreach (var labels in new[] { deployment.Metadata.Labels, deployment.Spec.Template.Metadata.Labels })
                Assert.Equal(("checkout", slot, "1.0.0"), (labels["app"], labels["slot"], labels["version"]));
            Assert.Contains(deployment.Spec.Template.Spec.Containers, c => c.Name == "app");
            Assert.Contains(objects.OfType<V1Service>(), s => s.Metadata.Name == $"checkout-{slot}" && s.Spec.Selector["slot"] == slot);
        }
    }

    [Fact]
    public async Task Rbac_role_grants_every_call_the_router_deployer_and_job_hooks_make()
    {
        var objects = Load("rbac.yaml");
        var role = objects.OfType<V1Role>().Single();
        var binding = objects.OfType<V1RoleBinding>().Single();
        var account = objects.OfType<V1ServiceAccount>().Single();
        Assert.Equal((role.Metadata.Name, account.Metadata.Name), (binding.RoleRef.Name, Assert.Single(binding.Subjects).Name));
        var granted = role.Rules
            .SelectMany(r => r.ApiGroups.SelectMany(g => r.Resources.SelectMany(res => r.Verbs.Select(v => (v, g, res)))))
            .ToHashSet();

        // Drive every operation against the fake and collect what RBAC would check.
        await using var api = await FakeKubernetesApi.StartAsync(Ct);
        using var clients = new KubernetesClientFactory(_ => new KubernetesClientConfiguration { Host = api.Url.AbsoluteUri });
        using var probe = new DataPlaneProbe(deadline: TimeSpan.FromSeconds(1));
        api.AddService("shop", "checkout", new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = "blue" });
        api.AddDeployment("shop", "checkout-blue", new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = "blue", ["version"] = "1.0.0" }, "r/checkout:1.0.0", 1);
        api.AddDeployment("shop", "checkout-green", new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = "green", ["version"] = "1.0.0" }, "r/checkout:1.0.0", 0);
        api.AddPod("shop", "checkout-green-1", new Dictionary<string, string> { ["app"] = "checkout", ["slot"] = "green", ["version"] = "2.0.0" }, ready: true);
        var router = new KubernetesRouter(clients, probe, TimeProvider.System, NullLogger<KubernetesRouter>.Instance, TimeSpan.FromMilliseconds(10));
        var deployer = new KubernetesDeployer(clients, TimeProvider.System, NullLogger<KubernetesDeployer>.Instance, TimeSpan.FromMilliseconds(10));
        var routerBinding = new RouterBinding("checkout", JsonSerializer.SerializeToElement(new
        {
            @namespace = "shop", service = "checkout", publicUrl = api.PublicUrl("shop", "checkout").AbsoluteUri,
        }), new Uri("http://blue/"), new Uri("http://green/"));
        var deployerBinding = new DeployerBinding("checkout", JsonSerializer.SerializeToElement(new
        {
            @namespace = "shop", deployment = "checkout-{slot}", image = "r/checkout:{version}", previewUrl = "http://checkout-{slot}.shop.svc:8080/",
        }));

        SlotDeployResult result;
        var calls = 0;
        do result = await deployer.DeployAsync(deployerBinding, Slot.Green, "2.0.0", Ct);
        while (result.Status == SlotDeployStatus.Pending && ++calls < 30);
        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        await deployer.ObserveAsync(deployerBinding, Slot.Green, Ct);
        await router.ReadLiveSlotAsync(routerBinding, Ct);
        await router.SwitchAsync(routerBinding, Slot.Green, Ct);
        Assert.True((await router.VerifyDataPlaneAsync(routerBinding, Slot.Green, "2.0.0", Ct)).Verified);
        await deployer.StopAsync(deployerBinding, Slot.Blue, Ct);
        // A kubernetesJob hook: create, follow, read the pod log; then one that times out and is deleted.
        var jobs = new ControlPlane.Core.Hooks.KubernetesJobHook(clients, NullLogger<ControlPlane.Core.Hooks.KubernetesJobHook>.Instance);
        var hook = new ControlPlane.Core.Hooks.LifecycleHook { Kind = "kubernetesJob", Image = "r/migrate:{version}", TimeoutSeconds = 1 };
        var target = new ControlPlane.Core.Hooks.KubernetesJobTarget(new KubernetesConnection(null, null), "shop");
        Assert.True((await jobs.RunAsync(hook with { TimeoutSeconds = 60 }, new(Guid.NewGuid(), "checkout", "2.0.0", "1.0.0", "green", "preDeploy", 1, null, target), Ct, CancellationToken.None)).Succeeded);
        api.JobBehaviour = _ => FakeJobRun.RunsForever("");
        Assert.Contains("timed out", (await jobs.RunAsync(hook, new(Guid.NewGuid(), "checkout", "2.0.0", "1.0.0", "green", "preDeploy", 1, null, target), Ct, CancellationToken.None)).Message);

        var used = api.Requests.Where(r => r.Permission is not null).Select(r => r.Permission!.Value).ToHashSet();
        Assert.Empty(used.Except(granted));
        // Beyond what the code calls, only two read-only grants (handy for kubectl with the same identity); anything more is a finding.
        Assert.Equal([("get", "apps", "deployments/scale"), ("get", "discovery.k8s.io", "endpointslices")], granted.Except(used).Order());
    }
}
