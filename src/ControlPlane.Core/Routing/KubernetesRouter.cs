using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Kubernetes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Routing;

/// <summary>
/// The <c>kubernetes</c> router: a Service selects one slot's pods through its selector's slot label (e.g.
/// <c>app: checkout, slot: blue</c>); a switch is one merge patch of that label, guarded by the Service's resourceVersion.
/// It refuses to select a slot whose pods are not all ready, and verification waits until the Service's EndpointSlices list
/// exactly the new slot's ready pods — a patched selector alone does not prove traffic moved (endpoints lag, or a
/// selector matching crash-looping pods empties the Service).
/// </summary>
public sealed class KubernetesRouter(
    IKubernetesClientFactory clients,
    DataPlaneProbe probe,
    TimeProvider time,
    ILogger<KubernetesRouter> logger,
    TimeSpan? pollInterval = null) : ITrafficRouter
{
    public const string KindName = "kubernetes";
    public const string ServiceNameLabel = "kubernetes.io/service-name";
    private const int MaxAttempts = 5;

    private readonly TimeSpan poll = pollInterval ?? TimeSpan.FromSeconds(1);

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => KubernetesRouterSettings.Validate(settings);

    public string DescribeSwitch(RouterBinding binding, Slot from, Slot to)
    {
        var s = KubernetesRouterSettings.Parse(binding.Settings);
        return $"Service {s.Namespace}/{s.Service}: selector label {s.SlotLabel} changes from {from.Name()} to {to.Name()} (only once {to.Name()}'s pods are ready); " +
               "then the Service's EndpointSlices must list exactly the new pods.";
    }

    /// <summary>Nothing to start: the Service is the cluster's. Returns the public URL, or <c>k8s://namespace/service</c>.</summary>
    public Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken)
    {
        var settings = KubernetesRouterSettings.Parse(binding.Settings);
        return Task.FromResult(settings.PublicUrl ?? new Uri($"k8s://{settings.Namespace}/{settings.Service}"));
    }

    public async Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken)
    {
        var settings = KubernetesRouterSettings.Parse(binding.Settings);
        try
        {
            var service = await ReadServiceAsync(ClientFor(settings), settings, cancellationToken);
            string? value = null;
            service.Spec?.Selector?.TryGetValue(settings.SlotLabel, out value);
            return SlotExtensions.TryParse(value, out var slot) ? slot : null;
        }
        catch (KubernetesApiException ex)
        {
            logger.LogWarning("Cannot tell which slot Service {Namespace}/{Service} of {Application} selects: {Reason}",
                settings.Namespace, settings.Service, binding.Application, ex.Message);
            return null;
        }
    }

    public async Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken)
    {
        var settings = KubernetesRouterSettings.Parse(binding.Settings);
        var (ns, name, label) = (settings.Namespace, settings.Service, settings.SlotLabel);
        try
        {
            var client = ClientFor(settings);
            for (var attempt = 1; ; attempt++)
            {
                var service = await ReadServiceAsync(client, settings, cancellationToken);
                var selector = SelectorOf(service, settings);
                if (selector[label] == target.Name())
                {
                    logger.LogInformation("Service {Namespace}/{Service} of {Application} already selects {Slot}; nothing to switch",
                        ns, name, binding.Application, target.Name());
                    return;
                }

                var targetSelector = new Dictionary<string, string>(selector) { [label] = target.Name() };
                var pods = await ReadPodsAsync(client, settings, targetSelector, cancellationToken);
                if (pods.Total == 0 || pods.Ready.Count < pods.Total)
                {
                    var reason = pods.Total == 0
                        ? $"{target.Name()} has no pods matching {FormatSelector(targetSelector)} — not switching"
                        : $"{target.Name()} has {pods.Ready.Count} of {pods.Total} pods ready — not switching";
                    logger.LogWarning("Not switching {Application}: {Reason}", binding.Application, reason);
                    throw new RouterException($"{reason} (Service {ns}/{name}).");
                }

                // The resourceVersion makes the patch conditional: the selector we checked the pods against is the one we change.
                var patch = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["resourceVersion"] = service.Metadata.ResourceVersion },
                    ["spec"] = new JsonObject { ["selector"] = new JsonObject { [label] = target.Name() } },
                }.ToJsonString();
                try
                {
                    await KubernetesApiException.CallAsync(
                        () => client.CoreV1.PatchNamespacedServiceAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), name, ns, cancellationToken: cancellationToken),
                        "patch", "services", "", ns, name, cancellationToken);
                    logger.LogInformation("Service {Namespace}/{Service} of {Application} now selects {Slot} ({Ready} ready pods)",
                        ns, name, binding.Application, target.Name(), pods.Ready.Count);
                    return;
                }
                catch (KubernetesApiException ex) when (ex.IsConflict && attempt < MaxAttempts)
                {
                    logger.LogInformation("Service {Namespace}/{Service} changed while switching {Application} (attempt {Attempt}); reading it again",
                        ns, name, binding.Application, attempt);
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), time, cancellationToken);
                }
            }
        }
        catch (KubernetesApiException ex)
        {
            var message = ex.IsConflict ? $"Service {ns}/{name} kept changing while switching to {target.Name()} ({MaxAttempts} conflicts): {ex.Message}" : ex.Message;
            throw new RouterException(message, ex);
        }
    }

    /// <summary>
    /// First the EndpointSlices (polled until they list exactly the expected slot's ready pods, within verifyTimeoutSeconds),
    /// then, when a publicUrl is set, a request through it. The message says which of the two was proven.
    /// </summary>
    public async Task<DataPlaneVerification> VerifyDataPlaneAsync(
        RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        var settings = KubernetesRouterSettings.Parse(binding.Settings);
        var (ns, name) = (settings.Namespace, settings.Service);
        var started = time.GetTimestamp();
        var deadline = TimeSpan.FromSeconds(settings.VerifyTimeoutSeconds);
        string seen;
        var polls = 0;
        try
        {
            var client = ClientFor(settings);
            while (true)
            {
                polls++;
                var (converged, endpoints, observation) = await ObserveEndpointsAsync(client, settings, expectedSlot, cancellationToken);
                if (converged)
                {
                    var endpointProof = $"EndpointSlices of Service {ns}/{name} list exactly the {endpoints} ready {expectedSlot.Name()} pods";
                    if (settings.PublicUrl is null)
                        return DataPlaneVerification.Ok($"{endpointProof}; no publicUrl is set, so no request was sent through the Service");
                    var request = await probe.VerifyAsync(settings.PublicUrl, binding.VerifyPath, expectedSlot, expectedVersion, cancellationToken);
                    return request.Verified
                        ? DataPlaneVerification.Ok($"{endpointProof}, and {request.Message}")
                        : DataPlaneVerification.Fail($"{endpointProof}, but the request through the public URL failed: {request.Message}");
                }

                seen = observation;
                var remaining = deadline - time.GetElapsedTime(started);
                if (remaining <= TimeSpan.Zero)
                    break;
                logger.LogDebug("EndpointSlices of {Namespace}/{Service} not converged on {Slot} yet: {Observation}", ns, name, expectedSlot.Name(), observation);
                await Task.Delay(remaining < poll ? remaining : poll, time, cancellationToken);
            }
        }
        catch (KubernetesApiException ex)
        {
            return DataPlaneVerification.Fail($"Cannot verify Service {ns}/{name}: {ex.Message}");
        }
        catch (RouterException ex)
        {
            return DataPlaneVerification.Fail(ex.Message);
        }

        logger.LogWarning("Data plane of {Application} not verified on {Slot}: {Observation}", binding.Application, expectedSlot.Name(), seen);
        return DataPlaneVerification.Fail(
            $"EndpointSlices of Service {ns}/{name} did not converge on the {expectedSlot.Name()} pods within {settings.VerifyTimeoutSeconds} s " +
            $"({polls} polls): {seen}");
    }

    public Task DetachAsync(string application, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <returns>Whether the ready endpoints are exactly the expected slot's ready pods, how many, and otherwise what was seen.</returns>
    private async Task<(bool Converged, int Endpoints, string Observation)> ObserveEndpointsAsync(
        IKubernetes client, KubernetesRouterSettings settings, Slot expectedSlot, CancellationToken cancellationToken)
    {
        var (ns, name, label) = (settings.Namespace, settings.Service, settings.SlotLabel);
        var service = await ReadServiceAsync(client, settings, cancellationToken);
        var selector = SelectorOf(service, settings);
        if (selector[label] != expectedSlot.Name())
            return (false, 0, $"the Service selector's {label} is {selector[label]}, not {expectedSlot.Name()}");

        var pods = await ReadPodsAsync(client, settings, selector, cancellationToken);
        var slices = await KubernetesApiException.CallAsync(
            () => client.DiscoveryV1.ListNamespacedEndpointSliceAsync(ns, labelSelector: $"{ServiceNameLabel}={name}", cancellationToken: cancellationToken),
            "list", "endpointslices", "discovery.k8s.io", ns, null, cancellationToken);

        var endpoints = new HashSet<string>(StringComparer.Ordinal);
        var unnamed = 0;
        foreach (var endpoint in slices.Items.SelectMany(s => s.Endpoints ?? []))
        {
            // Discovery v1: a nil "ready" means unknown and is to be treated as ready.
            if (endpoint.Conditions?.Ready == false)
                continue;
            if (endpoint.TargetRef is { Kind: "Pod", Name: { } pod })
                endpoints.Add(pod);
            else
                unnamed++;
        }

        var expected = pods.Ready.ToHashSet(StringComparer.Ordinal);
        if (expected.Count > 0 && unnamed == 0 && endpoints.SetEquals(expected))
            return (true, expected.Count, "");

        var missing = expected.Except(endpoints).Order().ToList();
        var extra = endpoints.Except(expected).Order().ToList();
        var parts = new List<string>
        {
            endpoints.Count + unnamed == 0 ? "the Service has no ready endpoints" : $"ready endpoints are {Names(endpoints, unnamed)}",
            expected.Count == 0 ? $"{expectedSlot.Name()} has no ready pods ({pods.Ready.Count} of {pods.Total})" : $"expected the ready {expectedSlot.Name()} pods {Names(expected, 0)}",
        };
        if (missing.Count > 0) parts.Add($"missing {string.Join(", ", missing)}");
        if (extra.Count > 0) parts.Add($"not of {expectedSlot.Name()}: {string.Join(", ", extra)}");
        return (false, 0, string.Join("; ", parts));

        static string Names(IEnumerable<string> names, int unnamed) =>
            string.Join(", ", names.Order()) + (unnamed > 0 ? $" and {unnamed} endpoint(s) without a pod reference" : "");
    }

    private async Task<V1Service> ReadServiceAsync(IKubernetes client, KubernetesRouterSettings settings, CancellationToken cancellationToken) =>
        await KubernetesApiException.CallAsync(
            () => client.CoreV1.ReadNamespacedServiceAsync(settings.Service, settings.Namespace, cancellationToken: cancellationToken),
            "get", "services", "", settings.Namespace, settings.Service, cancellationToken);

    /// <summary>Pods the selector matches that will stay (not terminating, not finished), and which of them are Ready.</summary>
    private static async Task<(int Total, IReadOnlyList<string> Ready)> ReadPodsAsync(
        IKubernetes client, KubernetesRouterSettings settings, IReadOnlyDictionary<string, string> selector, CancellationToken cancellationToken)
    {
        var list = await KubernetesApiException.CallAsync(
            () => client.CoreV1.ListNamespacedPodAsync(settings.Namespace, labelSelector: FormatSelector(selector), cancellationToken: cancellationToken),
            "list", "pods", "", settings.Namespace, null, cancellationToken);
        var live = list.Items
            .Where(p => p.Metadata.DeletionTimestamp is null && p.Status?.Phase is not ("Succeeded" or "Failed"))
            .ToList();
        var ready = live
            .Where(p => p.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true)
            .Select(p => p.Metadata.Name)
            .ToList();
        return (live.Count, ready);
    }

    private static IReadOnlyDictionary<string, string> SelectorOf(V1Service service, KubernetesRouterSettings settings)
    {
        var selector = service.Spec?.Selector;
        if (selector is null || !selector.ContainsKey(settings.SlotLabel))
            throw new RouterException(
                $"Service {settings.Namespace}/{settings.Service} has no selector label '{settings.SlotLabel}' " +
                $"(selector: {(selector is null || selector.Count == 0 ? "none" : FormatSelector(selector))}). " +
                $"ControlPlane switches slots by that label: add it, e.g. {settings.SlotLabel}: blue (see deploy/kubernetes/).");
        return selector.AsReadOnly();
    }

    private static string FormatSelector(IEnumerable<KeyValuePair<string, string>> selector) =>
        string.Join(",", selector.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));

    private IKubernetes ClientFor(KubernetesRouterSettings settings)
    {
        try
        {
            return clients.ClientFor(settings.Connection);
        }
        catch (KubernetesApiException ex)
        {
            throw new RouterException(ex.Message, ex);
        }
    }
}
