using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Kubernetes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// The <c>kubernetes</c> deployer: each slot is a Deployment (e.g. <c>checkout-blue</c>). A deploy sets the container image
/// and the version label and scales it like the other slot in one conditional patch, then reports Pending until the rollout
/// completes (as <c>kubectl rollout status</c> judges it) or fails. When the rollout started is stored in an annotation on the
/// Deployment, so the deadline survives a restart of ControlPlane.
/// </summary>
public sealed class KubernetesDeployer(
    IKubernetesClientFactory clients,
    TimeProvider time,
    ILogger<KubernetesDeployer> logger,
    TimeSpan? pollInterval = null) : ISlotDeployer
{
    public const string KindName = "kubernetes";
    public const string RolloutStartedAnnotation = "controlplane.io/rollout-started";
    private const int MaxAttempts = 5;
    private static readonly TimeSpan TransientRetry = TimeSpan.FromSeconds(5);

    private readonly TimeSpan poll = pollInterval ?? TimeSpan.FromSeconds(2);

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => KubernetesDeployerSettings.TryParse(settings, out _);

    public Uri EndpointOf(DeployerBinding binding, Slot slot) => SettingsOf(binding).PreviewUrlOf(binding.Application, slot);

    public async Task<SlotDeployResult> DeployAsync(DeployerBinding binding, Slot slot, string version, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        var errors = KubernetesDeployerSettings.TryParse(binding.Settings, out var settings);
        if (settings is null)
            return SlotDeployResult.Failed("Invalid kubernetes deployer settings: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")));
        if (!KubernetesNames.IsLabelValue(version))
            return SlotDeployResult.Failed($"The version '{version}' cannot be the Kubernetes label {settings.VersionLabel}: " +
                                           "at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit.");

        var ns = settings.Namespace;
        var name = settings.DeploymentOf(binding.Application, slot);
        var image = settings.ImageOf(binding.Application, slot, version);
        try
        {
            var client = clients.ClientFor(settings.Connection);
            for (var attempt = 1; ; attempt++)
            {
                var deployment = await ReadAsync(client, ns, name, cancellationToken);
                var containers = deployment.Spec.Template.Spec.Containers ?? [];
                var container = containers.FirstOrDefault(c => c.Name == settings.Container);
                if (container is null)
                    return SlotDeployResult.Failed($"Deployment {ns}/{name} has no container named {settings.Container} " +
                                                   $"(it has: {string.Join(", ", containers.Select(c => c.Name))}); set the container setting.");

                var replicas = await DesiredReplicasAsync(client, settings, binding.Application, slot, deployment, cancellationToken);
                var started = StartedAt(deployment);
                var progress = Progress.Of(deployment);
                var outdated = container.Image != image
                               || LabelOf(deployment.Spec.Template.Metadata, settings.VersionLabel) != version
                               || LabelOf(deployment.Metadata, settings.VersionLabel) != version
                               || deployment.Spec.Replicas != replicas;
                if (outdated || (started is null && !progress.Complete))
                {
                    try
                    {
                        await PatchAsync(client, deployment, settings, image, version, replicas, cancellationToken);
                    }
                    catch (KubernetesApiException ex) when (ex.IsConflict && attempt < MaxAttempts)
                    {
                        logger.LogInformation("Deployment {Namespace}/{Deployment} changed while deploying {Version} (attempt {Attempt}); reading it again",
                            ns, name, version, attempt);
                        await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), time, cancellationToken);
                        continue;
                    }
                    logger.LogInformation("Rolling out {Image} to {Namespace}/{Deployment} ({App}/{Slot}) with {Replicas} replicas",
                        image, ns, name, binding.Application, slot.Name(), replicas);
                    return SlotDeployResult.Pending($"Rolling out {image} to Deployment {ns}/{name} with {replicas} replicas.", poll);
                }

                var what = $"Deployment {ns}/{name}";
                if (progress.Complete)
                {
                    if (started is not null)
                        await ClearStartedAsync(client, ns, name, cancellationToken);
                    return SlotDeployResult.Ready($"{what} runs {image}: {progress.Detail}.");
                }
                if (progress.DeadlineExceeded is { } kubernetesMessage)
                {
                    await ClearStartedAsync(client, ns, name, cancellationToken);
                    logger.LogWarning("Deploying {Version} to {Namespace}/{Deployment} failed: {Reason}", version, ns, name, kubernetesMessage);
                    return SlotDeployResult.Failed($"{what} exceeded its progress deadline rolling out {image}: {kubernetesMessage} ({progress.Detail}).");
                }
                var elapsed = time.GetUtcNow() - started!.Value;
                if (elapsed > settings.RolloutTimeout)
                {
                    // Cleared so that a later attempt of the same version gets a fresh deadline instead of failing at once.
                    await ClearStartedAsync(client, ns, name, cancellationToken);
                    logger.LogWarning("Deploying {Version} to {Namespace}/{Deployment} failed: not rolled out within {Timeout}s ({Detail})",
                        version, ns, name, settings.RolloutTimeoutSeconds, progress.Detail);
                    return SlotDeployResult.Failed(
                        $"{what} did not finish rolling out {image} within {settings.RolloutTimeoutSeconds}s " +
                        $"(started {started:u}): {progress.Detail}. Look at its pods (kubectl -n {ns} describe deployment {name}).");
                }
                return SlotDeployResult.Pending($"Waiting for {what} to roll out {image}: {progress.Detail} ({elapsed.TotalSeconds:0}s of {settings.RolloutTimeoutSeconds}s).", poll);
            }
        }
        catch (KubernetesApiException ex) when (ex.Transient && !ex.IsConflict)
        {
            logger.LogWarning("Deploying {Version} to {Namespace}/{Deployment} waits: {Reason}", version, ns, name, ex.Message);
            return SlotDeployResult.Pending($"{ex.Message} Trying again.", TransientRetry);
        }
        catch (KubernetesApiException ex)
        {
            logger.LogWarning("Deploying {Version} to {Namespace}/{Deployment} failed: {Reason}", version, ns, name, ex.Message);
            return SlotDeployResult.Failed(ex.IsConflict ? $"Deployment {ns}/{name} kept changing while ControlPlane updated it: {ex.Message}" : ex.Message);
        }
    }

    public async Task<SlotObservation> ObserveAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        var settings = SettingsOf(binding);
        var ns = settings.Namespace;
        var name = settings.DeploymentOf(binding.Application, slot);
        try
        {
            var deployment = await ReadAsync(clients.ClientFor(settings.Connection), ns, name, cancellationToken);
            var version = LabelOf(deployment.Spec.Template.Metadata, settings.VersionLabel);
            var replicas = deployment.Spec.Replicas ?? 1;
            var available = deployment.Status?.AvailableReplicas ?? 0;
            if (replicas == 0)
                return new SlotObservation((deployment.Status?.Replicas ?? 0) > 0, version, false,
                    $"Deployment {ns}/{name} is scaled to 0 ({available} replicas still available).");
            var progress = Progress.Of(deployment);
            return new SlotObservation(true, version, progress.Complete,
                $"Deployment {ns}/{name} runs {version ?? "an unlabelled version"}: {progress.Detail}.");
        }
        catch (KubernetesApiException ex) when (ex.IsNotFound)
        {
            return new SlotObservation(false, null, false, ex.Message);
        }
        catch (KubernetesApiException ex)
        {
            return new SlotObservation(false, null, false, $"Cannot observe Deployment {ns}/{name}: {ex.Message}");
        }
    }

    /// <summary>Scales the slot's Deployment to 0 through its scale subresource; a no-op when it is already 0 or missing.</summary>
    public async Task StopAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        var settings = SettingsOf(binding);
        var ns = settings.Namespace;
        var name = settings.DeploymentOf(binding.Application, slot);
        try
        {
            var client = clients.ClientFor(settings.Connection);
            var deployment = await ReadAsync(client, ns, name, cancellationToken);
            if (deployment.Spec.Replicas == 0)
                return;
            await KubernetesApiException.CallAsync(
                () => client.AppsV1.PatchNamespacedDeploymentScaleAsync(
                    new V1Patch("""{"spec":{"replicas":0}}""", V1Patch.PatchType.MergePatch), name, ns, cancellationToken: cancellationToken),
                "patch", "deployments/scale", "apps", ns, name, cancellationToken);
            logger.LogInformation("Scaled {Namespace}/{Deployment} ({App}/{Slot}) from {Replicas} to 0 replicas",
                ns, name, binding.Application, slot.Name(), deployment.Spec.Replicas);
        }
        catch (KubernetesApiException ex) when (ex.IsNotFound)
        {
            logger.LogInformation("Nothing to stop for {App}/{Slot}: {Reason}", binding.Application, slot.Name(), ex.Message);
        }
        catch (KubernetesApiException ex)
        {
            throw new InvalidOperationException($"Cannot scale down the {slot.Name()} slot of {binding.Application}: {ex.Message}", ex);
        }
    }

    /// <summary>The live slot's replica count (the other slot's Deployment), else this one's, at least 1.</summary>
    private static async Task<int> DesiredReplicasAsync(
        IKubernetes client, KubernetesDeployerSettings settings, string app, Slot slot, V1Deployment own, CancellationToken cancellationToken)
    {
        int? other;
        try
        {
            other = (await ReadAsync(client, settings.Namespace, settings.DeploymentOf(app, slot.Other()), cancellationToken)).Spec.Replicas;
        }
        catch (KubernetesApiException ex) when (ex.IsNotFound)
        {
            other = null;
        }
        return other > 0 ? other.Value : own.Spec.Replicas > 0 ? own.Spec.Replicas.Value : 1;
    }

    /// <summary>
    /// One strategic merge patch (containers merge by name, so the other containers stay as they are), conditional on the
    /// resourceVersion read: the image, the version label on the Deployment and its pod template, the replicas and the start.
    /// </summary>
    private async Task PatchAsync(IKubernetes client, V1Deployment deployment, KubernetesDeployerSettings settings,
        string image, string version, int replicas, CancellationToken cancellationToken)
    {
        var ns = settings.Namespace;
        var name = deployment.Metadata.Name;
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = deployment.Metadata.ResourceVersion,
                ["labels"] = new JsonObject { [settings.VersionLabel] = version },
                ["annotations"] = new JsonObject { [RolloutStartedAnnotation] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture) },
            },
            ["spec"] = new JsonObject
            {
                ["replicas"] = replicas,
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = new JsonObject { [settings.VersionLabel] = version } },
                    ["spec"] = new JsonObject
                    {
                        ["containers"] = new JsonArray(new JsonObject { ["name"] = settings.Container, ["image"] = image }),
                    },
                },
            },
        }.ToJsonString();
        await KubernetesApiException.CallAsync(
            () => client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch, V1Patch.PatchType.StrategicMergePatch), name, ns, cancellationToken: cancellationToken),
            "patch", "deployments", "apps", ns, name, cancellationToken);
    }

    private async Task ClearStartedAsync(IKubernetes client, string ns, string name, CancellationToken cancellationToken)
    {
        var patch = new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [RolloutStartedAnnotation] = null } } }.ToJsonString();
        try
        {
            await KubernetesApiException.CallAsync(
                () => client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), name, ns, cancellationToken: cancellationToken),
                "patch", "deployments", "apps", ns, name, cancellationToken);
        }
        catch (KubernetesApiException ex)
        {
            // Only bookkeeping: a stale start time is replaced by the next rollout's patch anyway.
            logger.LogWarning("Could not remove {Annotation} from {Namespace}/{Deployment}: {Reason}", RolloutStartedAnnotation, ns, name, ex.Message);
        }
    }

    private static Task<V1Deployment> ReadAsync(IKubernetes client, string ns, string name, CancellationToken cancellationToken) =>
        KubernetesApiException.CallAsync(
            () => client.AppsV1.ReadNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken),
            "get", "deployments", "apps", ns, name, cancellationToken);

    private static DateTimeOffset? StartedAt(V1Deployment deployment) =>
        deployment.Metadata.Annotations?.TryGetValue(RolloutStartedAnnotation, out var value) == true
        && DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started)
            ? started : null;

    private static string? LabelOf(V1ObjectMeta? metadata, string label) =>
        metadata?.Labels?.TryGetValue(label, out var value) == true ? value : null;

    private static KubernetesDeployerSettings SettingsOf(DeployerBinding binding)
    {
        var errors = KubernetesDeployerSettings.TryParse(binding.Settings, out var settings);
        return settings ?? throw new ArgumentException(
            $"Invalid kubernetes deployer settings for {binding.Application}: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")),
            nameof(binding));
    }

    /// <summary>Rollout progress as <c>kubectl rollout status</c> judges it.</summary>
    private sealed record Progress(bool Complete, string Detail, string? DeadlineExceeded)
    {
        public static Progress Of(V1Deployment deployment)
        {
            var generation = deployment.Metadata.Generation ?? 0;
            var status = deployment.Status;
            var observed = status?.ObservedGeneration ?? 0;
            if (observed < generation)
                return new(false, $"the Deployment controller has not observed generation {generation} yet (observed {observed})", null);

            var deadline = status?.Conditions?.FirstOrDefault(c => c.Type == "Progressing" && c.Reason == "ProgressDeadlineExceeded");
            var wanted = deployment.Spec.Replicas ?? 1;
            var updated = status?.UpdatedReplicas ?? 0;
            var total = status?.Replicas ?? 0;
            var available = status?.AvailableReplicas ?? 0;
            var counts = $"{updated} of {wanted} replicas updated, {available} available";
            if (updated < wanted)
                return new(false, counts, deadline?.Message ?? deadline?.Reason);
            if (total > updated)
                return new(false, $"{counts}, {total - updated} old replicas pending termination", deadline?.Message ?? deadline?.Reason);
            if (available < updated)
                return new(false, counts, deadline?.Message ?? deadline?.Reason);
            return new(true, $"{updated} of {wanted} replicas updated and available", null);
        }
    }
}
