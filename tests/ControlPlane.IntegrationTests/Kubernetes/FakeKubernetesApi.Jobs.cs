using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.IntegrationTests.Kubernetes;

/// <summary>What the simulated Job controller makes of a Job: its pod's exit code (null: runs until deleted or its deadline), log, and
/// after how many GETs of the Job the pod finishes.</summary>
public sealed record FakeJobRun(int? ExitCode, string Log, int Polls = 1)
{
    public static FakeJobRun Succeeds(string log, int polls = 1) => new(0, log, polls);
    public static FakeJobRun Fails(int exitCode, string log, int polls = 1) => new(exitCode, log, polls);
    public static FakeJobRun RunsForever(string log) => new(null, log);
}

/// <summary>
/// batch/v1 Jobs as the API server and the Job controller answer them: create (201, 409 AlreadyExists), get, list by label
/// selector, delete with background propagation (200 Status Success; the pods go too); the server fills in the selector and pod
/// template labels (controller-uid, job-name), the controller starts one pod per Job, and the pod ends as <see cref="JobBehaviour"/>
/// says — the Job then gets the conditions a 1.31+ controller sets (SuccessCriteriaMet+Complete, FailureTarget+Failed with
/// BackoffLimitExceeded) — or is ended by <c>activeDeadlineSeconds</c> (DeadlineExceeded, pod deleted). Pod logs are served as text.
/// </summary>
public sealed partial class FakeKubernetesApi
{
    private readonly Dictionary<string, JsonObject> jobs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JobController> jobControllers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> podLogs = new(StringComparer.Ordinal);

    /// <summary>What each new Job's pod does, by Job name.</summary>
    public Func<string, FakeJobRun> JobBehaviour { get; set; } = _ => FakeJobRun.Succeeds("done\n");

    public JsonObject? Job(string ns, string name)
    {
        lock (gate) return jobs.TryGetValue(Key(ns, name), out var job) ? (JsonObject)job.DeepClone() : null;
    }

    /// <summary>Names of the pods that exist for the Job (its <c>job-name</c> label).</summary>
    public IReadOnlyList<string> JobPods(string ns, string job)
    {
        lock (gate)
            return [.. pods.Where(p => InNamespace(p.Key, ns) && LabelsOf(p.Value).GetValueOrDefault("job-name") == job)
                .Select(p => p.Value["metadata"]!["name"]!.GetValue<string>())];
    }

    [GeneratedRegex("^/apis/batch/v1/namespaces/(?<ns>[^/]+)/jobs(/(?<name>[^/]+))?$")]
    private static partial Regex JobsPath();

    [GeneratedRegex("^/api/v1/namespaces/(?<ns>[^/]+)/pods/(?<name>[^/]+)/log$")]
    private static partial Regex PodLogPath();

    private sealed class JobController(FakeJobRun run, string pod)
    {
        public FakeJobRun Run { get; } = run;
        public string Pod { get; } = pod;
        public int Gets;
    }

    private (int Code, JsonObject Body) HandleJob(string? verb, string ns, string? name, string labelSelector, string body)
    {
        if (verb is null)
            return (405, Status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", name, "batch", "jobs"));
        if (forbidden.Contains((verb, "jobs")))
            return (403, Status(403, "Forbidden",
                $"jobs.batch{(name is null ? "" : $" \"{name}\"")} is forbidden: User \"{User}\" cannot {verb} resource \"jobs\" in API group \"batch\" in the namespace \"{ns}\"",
                name, "batch", "jobs"));
        switch (verb)
        {
            case "list":
                var selector = ParseSelector(labelSelector);
                return (200, List("JobList", "batch/v1", jobs.Where(j => InNamespace(j.Key, ns) && Matches(LabelsOf(j.Value), selector)).Select(j => j.Value)));
            case "create":
                return CreateJob(ns, body);
        }
        if (!jobs.TryGetValue(Key(ns, name!), out var job))
            return (404, Status(404, "NotFound", $"jobs.batch \"{name}\" not found", name, "batch", "jobs"));
        if (verb == "get")
        {
            TickJob(ns, name!, job);
            return (200, (JsonObject)job.DeepClone());
        }
        // delete: background propagation (kubectl's default, and what ControlPlane asks for) removes the Job now and its pods after.
        jobs.Remove(Key(ns, name!));
        if (jobControllers.Remove(Key(ns, name!), out var controller))
        {
            pods.Remove(Key(ns, controller.Pod));
            SyncEndpoints();
        }
        return (200, new JsonObject
        {
            ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success",
            ["details"] = new JsonObject { ["name"] = name, ["group"] = "batch", ["kind"] = "jobs", ["uid"] = job["metadata"]!["uid"]!.DeepClone() },
        });
    }

    private (int Code, JsonObject Body) CreateJob(string ns, string body)
    {
        JsonObject job;
        try
        {
            job = JsonNode.Parse(body) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException ex)
        {
            return (400, Status(400, "BadRequest", $"error decoding body: {ex.Message}", null, "batch", "jobs"));
        }
        var name = job["metadata"]?["name"]?.GetValue<string>();
        var containers = job["spec"]?["template"]?["spec"]?["containers"] as JsonArray;
        var restart = job["spec"]?["template"]?["spec"]?["restartPolicy"]?.GetValue<string>();
        if (name is null || containers is not { Count: > 0 } || restart is not ("Never" or "OnFailure"))
            return (422, Status(422, "Invalid",
                $"Job.batch \"{name}\" is invalid: {(name is null ? "metadata.name: Required value" : containers is not { Count: > 0 } ? "spec.template.spec.containers: Required value" : $"spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"")}",
                name, "batch", "jobs"));
        if (jobs.ContainsKey(Key(ns, name)))
            return (409, Status(409, "AlreadyExists", $"jobs.batch \"{name}\" already exists", name, "batch", "jobs"));

        var uid = Guid.NewGuid().ToString();
        var metadata = (JsonObject)job["metadata"]!;
        metadata["namespace"] = ns;
        metadata["uid"] = uid;
        metadata["resourceVersion"] = NextResourceVersion();
        metadata["generation"] = 1;
        metadata["creationTimestamp"] = Now();
        var spec = (JsonObject)job["spec"]!;
        spec["parallelism"] ??= 1;
        spec["completions"] ??= 1;
        spec["backoffLimit"] ??= 6;
        spec["completionMode"] ??= "NonIndexed";
        spec["suspend"] ??= false;
        spec["podReplacementPolicy"] ??= "TerminatingOrFailed";
        spec["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["batch.kubernetes.io/controller-uid"] = uid } };
        var template = (JsonObject)spec["template"]!;
        var templateMetadata = (JsonObject)(template["metadata"] ??= new JsonObject());
        var templateLabels = (JsonObject)(templateMetadata["labels"] ??= new JsonObject());
        templateLabels["batch.kubernetes.io/controller-uid"] = uid;
        templateLabels["batch.kubernetes.io/job-name"] = name;
        templateLabels["controller-uid"] = uid;
        templateLabels["job-name"] = name;
        job["status"] = new JsonObject();
        jobs[Key(ns, name)] = job;
        var created = (JsonObject)job.DeepClone();

        // The Job controller reacts at once: one pod from the template, the Job active.
        var podName = $"{name}-{Guid.NewGuid().ToString("N")[..5]}";
        var podSpec = (JsonObject)template["spec"]!.DeepClone();
        var podLabels = templateLabels.ToDictionary(l => l.Key, l => l.Value!.GetValue<string>());
        var pod = new JsonObject
        {
            ["kind"] = "Pod", ["apiVersion"] = "v1",
            ["metadata"] = Metadata(ns, podName, podLabels),
            ["spec"] = podSpec,
            ["status"] = new JsonObject
            {
                ["phase"] = "Running", ["podIP"] = $"10.0.1.{podIp++}", ["startTime"] = Now(),
                ["containerStatuses"] = new JsonArray([.. containers.Select(c => (JsonNode)new JsonObject
                {
                    ["name"] = c!["name"]!.DeepClone(), ["image"] = c["image"]?.DeepClone(), ["ready"] = true, ["restartCount"] = 0,
                    ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Now() } },
                })]),
            },
        };
        pod["metadata"]!["ownerReferences"] = new JsonArray(new JsonObject
        {
            ["apiVersion"] = "batch/v1", ["kind"] = "Job", ["name"] = name, ["uid"] = uid, ["controller"] = true, ["blockOwnerDeletion"] = true,
        });
        pods[Key(ns, podName)] = pod;
        SyncEndpoints();
        var run = JobBehaviour(name);
        jobControllers[Key(ns, name)] = new JobController(run, podName);
        podLogs[Key(ns, podName)] = run.Log;
        job["status"] = new JsonObject { ["active"] = 1, ["ready"] = 1, ["terminating"] = 0, ["startTime"] = Now(), ["uncountedTerminatedPods"] = new JsonObject() };
        metadata["resourceVersion"] = NextResourceVersion();
        return (201, created);
    }

    /// <summary>The controller catches up between polls: a GET may find the pod finished, or the deadline passed.</summary>
    private void TickJob(string ns, string name, JsonObject job)
    {
        var status = (JsonObject)job["status"]!;
        if (status["conditions"] is JsonArray { Count: > 0 } || !jobControllers.TryGetValue(Key(ns, name), out var controller))
            return;
        var deadline = job["spec"]?["activeDeadlineSeconds"] is { } d ? Number(d) : (long?)null;
        var started = DateTimeOffset.Parse(status["startTime"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        if (deadline is { } seconds && DateTimeOffset.UtcNow - started >= TimeSpan.FromSeconds(seconds))
        {
            pods.Remove(Key(ns, controller.Pod));
            SyncEndpoints();
            Finish(status, succeeded: false, "DeadlineExceeded", "Job was active longer than specified deadline");
        }
        else if (controller.Run.ExitCode is { } exitCode && ++controller.Gets >= controller.Run.Polls && pods.TryGetValue(Key(ns, controller.Pod), out var pod))
        {
            var podStatus = (JsonObject)pod["status"]!;
            podStatus["phase"] = exitCode == 0 ? "Succeeded" : "Failed";
            foreach (var container in (JsonArray)podStatus["containerStatuses"]!)
            {
                container!["ready"] = false;
                container["state"] = new JsonObject
                {
                    ["terminated"] = new JsonObject
                    {
                        ["exitCode"] = exitCode, ["reason"] = exitCode == 0 ? "Completed" : "Error", ["startedAt"] = status["startTime"]!.DeepClone(), ["finishedAt"] = Now(),
                    },
                };
            }
            if (exitCode == 0)
            {
                status["succeeded"] = 1;
                status["completionTime"] = Now();
                Finish(status, succeeded: true, "CompletionsReached", "Reached expected number of succeeded pods");
            }
            else
                Finish(status, succeeded: false, "BackoffLimitExceeded", "Job has reached the specified backoff limit");
        }
        else
            return;
        job["metadata"]!["resourceVersion"] = NextResourceVersion();
    }

    private static void Finish(JsonObject status, bool succeeded, string reason, string message)
    {
        status["active"] = 0;
        status["ready"] = 0;
        if (!succeeded) status["failed"] = 1;
        status["conditions"] = succeeded
            ? new JsonArray(JobCondition("SuccessCriteriaMet", reason, message), JobCondition("Complete", reason, message))
            : new JsonArray(JobCondition("FailureTarget", reason, message), JobCondition("Failed", reason, message));
    }

    private static JsonObject JobCondition(string type, string reason, string message) => new()
    {
        ["type"] = type, ["status"] = "True", ["lastProbeTime"] = Now(), ["lastTransitionTime"] = Now(), ["reason"] = reason, ["message"] = message,
    };

    private async Task AnswerPodLogAsync(HttpContext context, string ns, string name, string container)
    {
        string? log;
        JsonObject? pod;
        lock (gate)
        {
            pod = pods.TryGetValue(Key(ns, name), out var found) ? found : null;
            log = podLogs.GetValueOrDefault(Key(ns, name));
        }
        if (pod is null)
        {
            await WriteAsync(context, 404, Status(404, "NotFound", $"pods \"{name}\" not found", name, "", "pods"));
            return;
        }
        var names = ((JsonArray)pod["spec"]!["containers"]!).Select(c => c!["name"]!.GetValue<string>()).ToList();
        if (container.Length > 0 && !names.Contains(container))
        {
            await WriteAsync(context, 400, Status(400, "BadRequest", $"container {container} is not valid for pod {name}", name, "", "pods"));
            return;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync(log ?? "", context.RequestAborted);
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
}
