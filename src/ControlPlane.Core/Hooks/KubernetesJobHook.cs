using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Kubernetes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Hooks;

/// <summary>Where a kubernetesJob hook runs: the cluster and namespace of the application's <c>kubernetes</c> deployer settings.</summary>
public sealed record KubernetesJobTarget(KubernetesConnection Connection, string Namespace)
{
    /// <summary>From the application's deployer settings (the kubernetes deployer's typed contract); null for another deployer.</summary>
    public static KubernetesJobTarget? Of(string deployerKind, System.Text.Json.JsonElement deployerSettings)
    {
        if (deployerKind != KubernetesDeployer.KindName) return null;
        return KubernetesDeployerSettings.TryParse(deployerSettings, out var settings).Count == 0 && settings is not null
            ? new(settings.Connection, settings.Namespace) : null;
    }
}

/// <summary>
/// Runs a <c>kubernetesJob</c> hook as a batch/v1 Job named after the release and the hook point
/// (<see cref="JobName"/>), so a ControlPlane that died while it ran finds the same Job again and waits for it instead of
/// starting a second one. The Job gets <c>backoffLimit: 0</c> (a failed run is the hook's failure, not retried behind our
/// back), <c>activeDeadlineSeconds</c> = the hook's timeout (Kubernetes ends it even while no ControlPlane watches), the
/// CONTROLPLANE_* variables and the hook's own <c>env</c>. The pod's log is the step's output. A Job that timed out, or whose
/// release was aborted, is deleted with its pods.
/// </summary>
public sealed partial class KubernetesJobHook(IKubernetesClientFactory clients, ILogger<KubernetesJobHook> logger)
{
    public const string Container = "hook";
    public const string AttemptAnnotation = "controlplane.io/hook-attempt";
    public const string ReleaseLabel = "controlplane.io/release";
    public const string HookLabel = "controlplane.io/hook";
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    /// <summary>Deterministic per release and hook point: <c>cp-&lt;point&gt;-&lt;release id&gt;</c> (a DNS label, at most 63 characters).</summary>
    public static string JobName(Guid releaseId, string step) => $"cp-{step.ToLowerInvariant()}-{releaseId:N}";

    public static bool IsEnvName(string name) => EnvName().IsMatch(name);

    [GeneratedRegex("^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    private static partial Regex EnvName();

    /// <param name="cancellationToken">ControlPlane stops: the Job goes on and the next ControlPlane finds it.</param>
    /// <param name="abort">The release was aborted: the Job is deleted with its pods.</param>
    public async Task<HookResult> RunAsync(LifecycleHook hook, HookContext context, CancellationToken stopping, CancellationToken abort)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(stopping, abort);
        var cancellationToken = either.Token;
        if (context.Kubernetes is not { } target)
            return new(false, null, "", "kubernetesJob hooks need the application's kubernetes deployer settings (namespace, cluster); they could not be read");
        var ns = target.Namespace;
        var name = JobName(context.ReleaseId, context.Step);
        var client = clients.ClientFor(target.Connection);
        var attempt = context.Attempt.ToString(CultureInfo.InvariantCulture);
        var watch = Stopwatch.StartNew();
        try
        {
            var job = await TryReadAsync(client, ns, name, cancellationToken);
            if (job is not null && AttemptOf(job) != attempt)
            {
                // A finished earlier attempt (a retry, or "run again" after an interruption): this attempt gets a fresh Job.
                logger.LogInformation("Deleting Job {Namespace}/{Job} of attempt {Old} before attempt {Attempt}", ns, name,
                    AttemptOf(job), attempt);
                await DeleteAndWaitAsync(client, ns, name, cancellationToken);
                job = null;
            }
            var adopted = job is not null;
            if (job is null)
            {
                try
                {
                    job = await KubernetesApiException.CallAsync(() => client.BatchV1.CreateNamespacedJobAsync(Build(hook, context, name, ns), ns,
                        cancellationToken: cancellationToken), "create", "jobs", "batch", ns, name, cancellationToken);
                }
                catch (KubernetesApiException ex) when (ex.IsConflict)
                {
                    // AlreadyExists: created for this attempt between our read and our create (another replica's takeover).
                    job = await TryReadAsync(client, ns, name, cancellationToken) ?? throw new KubernetesApiException(ex.Message, 409, transient: true, ex);
                    adopted = true;
                }
            }
            if (adopted) logger.LogWarning("Found Job {Namespace}/{Job} of attempt {Attempt} already created; waiting for it instead of starting another", ns, name, attempt);
            var what = $"Job {ns}/{name}{(adopted ? " (found running from before, not started again)" : "")}";

            var deadline = hook.Timeout + TimeSpan.FromSeconds(5);
            while (true)
            {
                var (finished, succeeded, reason, message) = Outcome(job);
                if (finished)
                {
                    var (log, exitCode) = await PodLogAsync(client, ns, name, cancellationToken);
                    if (reason == "DeadlineExceeded")
                    {
                        await DeleteAsync(client, ns, name);
                        return new(false, exitCode, log, $"{what} did not finish within {hook.Timeout.TotalSeconds:0} s (timed out: {message}); the Job was deleted");
                    }
                    return succeeded
                        ? new(true, exitCode ?? 0, log, $"{what} completed in {watch.Elapsed.TotalSeconds:0.0} s")
                        : new(false, exitCode, log, $"{what} failed{(exitCode is { } c ? $": its container exited with {c}" : "")} ({reason}: {message})");
                }
                if (watch.Elapsed > deadline)
                {
                    var (log, _) = await PodLogAsync(client, ns, name, cancellationToken);
                    await DeleteAsync(client, ns, name);
                    return new(false, null, log, $"{what} did not finish within {hook.Timeout.TotalSeconds:0} s (timed out); the Job was deleted");
                }
                await Task.Delay(Poll, cancellationToken);
                job = await TryReadAsync(client, ns, name, cancellationToken)
                      ?? throw new KubernetesApiException($"Job {ns}/{name} was deleted by someone else before it finished.", 404, transient: false);
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested && !stopping.IsCancellationRequested)
        {
            var (log, _) = await PodLogAsync(client, ns, name, CancellationToken.None);
            await DeleteAsync(client, ns, name);
            return new(false, null, log, $"stopped: the release was aborted while Job {ns}/{name} ran; the Job and its pods were deleted");
        }
        catch (KubernetesApiException ex)
        {
            return new(false, null, "", ex.Message);
        }
    }

    private static V1Job Build(LifecycleHook hook, HookContext context, string name, string ns)
    {
        var labels = new Dictionary<string, string>
        {
            ["app.kubernetes.io/managed-by"] = "controlplane",
            ["app.kubernetes.io/name"] = context.Application,
            [ReleaseLabel] = context.ReleaseId.ToString("N"),
            [HookLabel] = context.Step,
        };
        var env = HookEnvironment.For(context, hook.Env).OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => new V1EnvVar { Name = e.Key, Value = e.Value }).ToList();
        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta
            {
                Name = name, NamespaceProperty = ns, Labels = labels,
                Annotations = new Dictionary<string, string> { [AttemptAnnotation] = context.Attempt.ToString(CultureInfo.InvariantCulture) },
            },
            Spec = new V1JobSpec
            {
                BackoffLimit = 0,
                ActiveDeadlineSeconds = (long)hook.Timeout.TotalSeconds,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = new V1PodSpec
                    {
                        RestartPolicy = "Never",
                        ServiceAccountName = hook.ServiceAccountName,
                        Containers =
                        [
                            new V1Container
                            {
                                Name = Container,
                                Image = hook.Image!.Replace("{version}", context.Version, StringComparison.Ordinal),
                                Command = hook.Command is { Count: > 0 } ? [.. hook.Command] : null,
                                Env = env,
                            },
                        ],
                    },
                },
            },
        };
    }

    private static string? AttemptOf(V1Job job) =>
        job.Metadata.Annotations is { } annotations && annotations.TryGetValue(AttemptAnnotation, out var value) ? value : null;

    /// <summary>As <c>kubectl wait --for=condition=complete|failed</c> reads a Job.</summary>
    private static (bool Finished, bool Succeeded, string? Reason, string? Message) Outcome(V1Job job)
    {
        var conditions = job.Status?.Conditions ?? [];
        if (conditions.FirstOrDefault(c => c.Type == "Complete" && c.Status == "True") is { } complete)
            return (true, true, complete.Reason, complete.Message);
        if (conditions.FirstOrDefault(c => c.Type == "Failed" && c.Status == "True") is { } failed)
            return (true, false, failed.Reason, failed.Message);
        return (false, false, null, null);
    }

    /// <summary>The log of the Job's newest pod (head and tail kept) and its container's exit code, when Kubernetes still has them.</summary>
    private async Task<(string Log, int? ExitCode)> PodLogAsync(IKubernetes client, string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            var pods = await KubernetesApiException.CallAsync(() => client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: $"job-name={name}",
                cancellationToken: cancellationToken), "list", "pods", "", ns, null, cancellationToken);
            var pod = pods.Items.OrderByDescending(p => p.Metadata.CreationTimestamp).FirstOrDefault();
            if (pod is null) return ("", null);
            var exitCode = pod.Status?.ContainerStatuses?.FirstOrDefault(c => c.Name == Container)?.State?.Terminated?.ExitCode;
            await using var stream = await KubernetesApiException.CallAsync(() => client.CoreV1.ReadNamespacedPodLogAsync(pod.Metadata.Name, ns,
                container: Container, cancellationToken: cancellationToken), "get", "pods/log", "", ns, pod.Metadata.Name, cancellationToken);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var output = new HookRunner.OutputBuffer();
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer, cancellationToken)) > 0) output.Append(buffer.AsSpan(0, n));
            return (output.ToString(), exitCode);
        }
        catch (KubernetesApiException ex)
        {
            logger.LogWarning("Could not read the log of Job {Namespace}/{Job}: {Reason}", ns, name, ex.Message);
            return ($"(the pod's log could not be read: {ex.Message})", null);
        }
    }

    /// <summary>
    /// After ControlPlane died while the hook ran: whether the Job of this attempt exists (then it is waited for, not started
    /// again). Null when the API cannot tell now.
    /// </summary>
    public async Task<bool?> ExistsAsync(HookContext context, CancellationToken cancellationToken)
    {
        if (context.Kubernetes is not { } target) return false;
        try
        {
            var job = await TryReadAsync(clients.ClientFor(target.Connection), target.Namespace, JobName(context.ReleaseId, context.Step), cancellationToken);
            return (job is null ? null : AttemptOf(job)) == context.Attempt.ToString(CultureInfo.InvariantCulture);
        }
        catch (KubernetesApiException ex)
        {
            logger.LogWarning("Cannot tell whether the Job of the interrupted {Step} hook exists: {Reason}", context.Step, ex.Message);
            return null;
        }
    }

    private static async Task<V1Job?> TryReadAsync(IKubernetes client, string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await KubernetesApiException.CallAsync(() => client.BatchV1.ReadNamespacedJobAsync(name, ns, cancellationToken: cancellationToken),
                "get", "jobs", "batch", ns, name, cancellationToken);
        }
        catch (KubernetesApiException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <summary>Deletes the Job and (background propagation, as kubectl does) its pods; a Job already gone is fine.</summary>
    public async Task DeleteAsync(IKubernetes client, string ns, string name)
    {
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await KubernetesApiException.CallAsync(() => client.BatchV1.DeleteNamespacedJobAsync(name, ns,
                new V1DeleteOptions { PropagationPolicy = "Background" }, cancellationToken: bounded.Token), "delete", "jobs", "batch", ns, name, bounded.Token);
            logger.LogInformation("Deleted Job {Namespace}/{Job} and its pods", ns, name);
        }
        catch (KubernetesApiException ex) when (ex.IsNotFound) { }
        catch (KubernetesApiException ex)
        {
            logger.LogError("Could not delete Job {Namespace}/{Job}; it may go on until its activeDeadlineSeconds: {Reason}", ns, name, ex.Message);
        }
    }

    private async Task DeleteAndWaitAsync(IKubernetes client, string ns, string name, CancellationToken cancellationToken)
    {
        await DeleteAsync(client, ns, name);
        for (var i = 0; i < 60 && await TryReadAsync(client, ns, name, cancellationToken) is not null; i++)
            await Task.Delay(Poll, cancellationToken);
    }
}
