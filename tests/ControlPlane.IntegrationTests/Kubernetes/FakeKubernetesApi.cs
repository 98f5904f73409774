using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Kubernetes;

/// <summary>One request as the fake API server received it.</summary>
/// <param name="Status">The HTTP status code the fake answered with.</param>
/// <param name="Permission">What RBAC would check, e.g. (patch, apps, deployments/scale); null outside the API.</param>
public sealed record RecordedRequest(string Method, string Path, string Query, string? ContentType, string Body, int Status,
    (string Verb, string Group, string Resource)? Permission)
{
    public JsonNode? Json => Body.Length == 0 ? null : JsonNode.Parse(Body);
    public override string ToString() => $"{Method} {Path}{Query} [{ContentType}] {Body} -> {Status}";
}

/// <summary>
/// A loopback Kubernetes API server (Kestrel, port 0) for the resources ControlPlane uses: Services, Pods, EndpointSlices
/// (discovery.k8s.io/v1), Deployments and their scale subresource (apps/v1). It speaks the real REST protocol: paths, GET/PATCH/PUT,
/// the three patch content types, resourceVersion preconditions answered with 409 Conflict, 403 Forbidden and 404 Not Found as
/// <c>Status</c> objects. Two controllers are simulated: the EndpointSlice controller (ready and not-ready pods the Service
/// selects; its updates can lag or stall) and the Deployment controller (a spec change bumps the generation; after each GET of the
/// Deployment the rollout advances one step unless stalled). <c>/public/{ns}/{service}/…</c> answers like kube-proxy would: from
/// a ready endpoint of the current slices, with that pod's <c>version</c> and <c>slot</c> labels. batch/v1 Jobs too, with a simulated
/// Job controller (see FakeKubernetesApi.Jobs.cs) and the pods/log subresource. Every request is recorded.
/// </summary>
public sealed partial class FakeKubernetesApi : IAsyncDisposable
{
    public const string User = "system:serviceaccount:controlplane:controlplane";

    private readonly WebApplication app;
    private readonly Lock gate = new();
    private readonly List<RecordedRequest> requests = [];
    private readonly Dictionary<string, JsonObject> services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonObject> deployments = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonObject> pods = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EndpointController> endpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RolloutController> rollouts = new(StringComparer.Ordinal);
    private readonly HashSet<(string Verb, string Resource)> forbidden = [];
    private readonly Dictionary<string, int> concurrentWrites = new(StringComparer.Ordinal);
    private long resourceVersion = 1000;
    private int podIp = 10;

    private FakeKubernetesApi(WebApplication app) => this.app = app;

    public Uri Url { get; private set; } = null!;

    public static async Task<FakeKubernetesApi> StartAsync(CancellationToken cancellationToken)
    {
        var app = LoopbackServer.Create();
        var fake = new FakeKubernetesApi(app);
        app.Run(fake.HandleAsync);
        fake.Url = await LoopbackServer.StartAsync(app, cancellationToken);
        return fake;
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();

    // ---- what the test sets up and inspects ----------------------------------------------------------------------

    public IReadOnlyList<RecordedRequest> Requests
    {
        get { lock (gate) return requests.ToList(); }
    }

    public IReadOnlyList<RecordedRequest> Writes => Requests.Where(r => r.Method is "PATCH" or "PUT" or "POST" or "DELETE").ToList();

    public Uri PublicUrl(string ns, string service) => new(Url, $"public/{ns}/{service}/");

    public void AddService(string ns, string name, IReadOnlyDictionary<string, string> selector)
    {
        lock (gate)
        {
            services[Key(ns, name)] = new JsonObject
            {
                ["kind"] = "Service", ["apiVersion"] = "v1",
                ["metadata"] = Metadata(ns, name, new Dictionary<string, string> { ["app"] = name }),
                ["spec"] = new JsonObject
                {
                    ["selector"] = Labels(selector), ["type"] = "ClusterIP", ["clusterIP"] = "10.96.0.20",
                    ["ports"] = new JsonArray(new JsonObject { ["name"] = "http", ["port"] = 80, ["targetPort"] = 8080, ["protocol"] = "TCP" }),
                },
            };
            endpoints[Key(ns, name)] = new EndpointController();
            SyncEndpoints();
        }
    }

    public void AddPod(string ns, string name, IReadOnlyDictionary<string, string> labels, bool ready)
    {
        lock (gate)
        {
            pods[Key(ns, name)] = new JsonObject
            {
                ["kind"] = "Pod", ["apiVersion"] = "v1",
                ["metadata"] = Metadata(ns, name, labels),
                ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "app", ["image"] = "registry/app" }) },
                ["status"] = new JsonObject { ["phase"] = "Running", ["podIP"] = $"10.0.0.{podIp++}" },
            };
            SetReadyLocked(ns, name, ready);
        }
    }

    public void SetPodReady(string ns, string name, bool ready)
    {
        lock (gate) SetReadyLocked(ns, name, ready);
    }

    public void DeletePod(string ns, string name)
    {
        lock (gate)
        {
            pods.Remove(Key(ns, name));
            SyncEndpoints();
        }
    }

    /// <summary>The next <paramref name="polls"/> lists of EndpointSlices still show the endpoints from before the next change.</summary>
    public void DelayEndpointUpdates(string ns, string service, int polls)
    {
        lock (gate) endpoints[Key(ns, service)].LagPolls = polls;
    }

    /// <summary>The EndpointSlice controller stops updating the Service's slices (as when it is down or the selector matches nothing ready).</summary>
    public void FreezeEndpoints(string ns, string service)
    {
        lock (gate) endpoints[Key(ns, service)].Frozen = true;
    }

    public IReadOnlyList<string> EndpointPods(string ns, string service)
    {
        lock (gate)
            return SliceEndpoints(endpoints[Key(ns, service)].Slice!).Where(e => e.Ready).Select(e => e.Pod).Order().ToList();
    }

    /// <summary>A Deployment whose rollout is complete (status matches spec).</summary>
    public void AddDeployment(string ns, string name, IReadOnlyDictionary<string, string> labels, string image, int replicas,
        string container = "app", IReadOnlyDictionary<string, string>? annotations = null)
    {
        lock (gate)
        {
            var selector = labels.Where(l => l.Key is "app" or "slot").ToDictionary();
            var metadata = Metadata(ns, name, labels);
            metadata["generation"] = 1;
            if (annotations is not null)
                metadata["annotations"] = Labels(annotations);
            deployments[Key(ns, name)] = new JsonObject
            {
                ["kind"] = "Deployment", ["apiVersion"] = "apps/v1",
                ["metadata"] = metadata,
                ["spec"] = new JsonObject
                {
                    ["replicas"] = replicas,
                    ["selector"] = new JsonObject { ["matchLabels"] = Labels(selector) },
                    ["progressDeadlineSeconds"] = 600,
                    ["template"] = new JsonObject
                    {
                        ["metadata"] = new JsonObject { ["labels"] = Labels(labels) },
                        ["spec"] = new JsonObject
                        {
                            ["containers"] = new JsonArray(
                                new JsonObject { ["name"] = container, ["image"] = image, ["ports"] = new JsonArray(new JsonObject { ["containerPort"] = 8080 }) },
                                new JsonObject { ["name"] = "log-shipper", ["image"] = "registry/fluent-bit:3" }),
                        },
                    },
                },
                ["status"] = new JsonObject
                {
                    ["observedGeneration"] = 1, ["replicas"] = replicas, ["updatedReplicas"] = replicas,
                    ["readyReplicas"] = replicas, ["availableReplicas"] = replicas,
                    ["conditions"] = new JsonArray(Condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                        Condition("Progressing", "True", "NewReplicaSetAvailable", $"ReplicaSet \"{name}-5d8f\" has successfully progressed.")),
                },
            };
            rollouts[Key(ns, name)] = new RolloutController();
        }
    }

    public JsonObject Deployment(string ns, string name)
    {
        lock (gate) return (JsonObject)deployments[Key(ns, name)].DeepClone();
    }

    public JsonObject Service(string ns, string name)
    {
        lock (gate) return (JsonObject)services[Key(ns, name)].DeepClone();
    }

    /// <summary>The Deployment controller makes no more progress for it: new pods never become available (CrashLoopBackOff).</summary>
    public void StallRollout(string ns, string name)
    {
        lock (gate) rollouts[Key(ns, name)].Stalled = true;
    }

    /// <summary>The controller reports <c>ProgressDeadlineExceeded</c> once it has observed the current generation.</summary>
    public void ExceedProgressDeadline(string ns, string name)
    {
        lock (gate) rollouts[Key(ns, name)].DeadlineExceeded = true;
    }

    /// <summary>RBAC denies <paramref name="verb"/> on <paramref name="resource"/> (e.g. <c>patch</c>, <c>services</c> or <c>deployments/scale</c>).</summary>
    public void Forbid(string verb, string resource)
    {
        lock (gate) forbidden.Add((verb, resource));
    }

    /// <summary>
    /// Someone else writes the object just before each of the next <paramref name="count"/> writes to <paramref name="resource"/>
    /// arrive, so a write conditional on the resourceVersion it read gets a genuine 409 Conflict.
    /// </summary>
    public void WriteConcurrentlyBeforeNextWrites(string resource, int count)
    {
        lock (gate) concurrentWrites[resource] = count;
    }

    // ---- the HTTP side ----------------------------------------------------------------------------------------------

    [GeneratedRegex("^/api/v1/namespaces/(?<ns>[^/]+)/(?<res>services|pods)(/(?<name>[^/]+))?$")]
    private static partial Regex CorePath();

    [GeneratedRegex("^/api/v1/namespaces/(?<ns>[^/]+)$")]
    private static partial Regex NamespacePath();

    [GeneratedRegex("^/apis/apps/v1/namespaces/(?<ns>[^/]+)/(?<res>deployments)(/(?<name>[^/]+)(?<sub>/scale)?)?$")]
    private static partial Regex AppsPath();

    [GeneratedRegex("^/apis/discovery\\.k8s\\.io/v1/namespaces/(?<ns>[^/]+)/(?<res>endpointslices)(/(?<name>[^/]+))?$")]
    private static partial Regex DiscoveryPath();

    [GeneratedRegex("^/public/(?<ns>[^/]+)/(?<svc>[^/]+)(/.*)?$")]
    private static partial Regex PublicPath();

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var body = await new StreamReader(request.Body, Encoding.UTF8).ReadToEndAsync(context.RequestAborted);
        (string, string, string)? permission = null;
        context.Response.OnStarting(() =>
        {
            lock (gate)
                requests.Add(new RecordedRequest(request.Method, request.Path.Value ?? "", Uri.UnescapeDataString(request.QueryString.Value ?? ""),
                    request.ContentType, body, context.Response.StatusCode, permission));
            return Task.CompletedTask;
        });

        var path = request.Path.Value ?? "";
        if (PublicPath().Match(path) is { Success: true } pub)
        {
            await AnswerPublicAsync(context, pub.Groups["ns"].Value, pub.Groups["svc"].Value);
            return;
        }

        if (Discovery(path) is { } resources)
        {
            await WriteAsync(context, 200, resources);
            return;
        }

        // kubectl asks for the namespace after a NotFound, to tell a missing object from a missing namespace.
        if (request.Method == "GET" && NamespacePath().Match(path) is { Success: true } namespacePath)
        {
            var namespaceName = namespacePath.Groups["ns"].Value;
            bool exists;
            lock (gate)
                exists = services.Keys.Concat(pods.Keys).Concat(deployments.Keys).Concat(jobs.Keys).Any(k => InNamespace(k, namespaceName));
            await WriteAsync(context, exists ? 200 : 404, exists
                ? new JsonObject
                {
                    ["kind"] = "Namespace", ["apiVersion"] = "v1",
                    ["metadata"] = new JsonObject { ["name"] = namespaceName, ["labels"] = new JsonObject { ["kubernetes.io/metadata.name"] = namespaceName } },
                    ["spec"] = new JsonObject { ["finalizers"] = new JsonArray("kubernetes") },
                    ["status"] = new JsonObject { ["phase"] = "Active" },
                }
                : Status(404, "NotFound", $"namespaces \"{namespaceName}\" not found", namespaceName, "", "namespaces"));
            return;
        }

        if (JobsPath().Match(path) is { Success: true } jobsPath)
        {
            var jobName = jobsPath.Groups["name"].Length > 0 ? jobsPath.Groups["name"].Value : null;
            var jobVerb = (request.Method, jobName) switch
            {
                ("GET", null) => "list", ("GET", _) => "get", ("POST", null) => "create", ("DELETE", not null) => "delete", _ => null,
            };
            permission = (jobVerb ?? request.Method.ToLowerInvariant(), "batch", "jobs");
            int jobCode;
            JsonObject jobAnswer;
            lock (gate)
                (jobCode, jobAnswer) = HandleJob(jobVerb, jobsPath.Groups["ns"].Value, jobName, request.Query["labelSelector"].ToString(), body);
            await WriteAsync(context, jobCode, jobAnswer);
            return;
        }
        if (request.Method == "GET" && PodLogPath().Match(path) is { Success: true } logPath)
        {
            permission = ("get", "", "pods/log");
            await AnswerPodLogAsync(context, logPath.Groups["ns"].Value, logPath.Groups["name"].Value, request.Query["container"].ToString());
            return;
        }

        var (match, group) = CorePath().Match(path) is { Success: true } core ? (core, "")
            : AppsPath().Match(path) is { Success: true } apps ? (apps, "apps")
            : DiscoveryPath().Match(path) is { Success: true } discovery ? (discovery, "discovery.k8s.io")
            : (null, "");
        if (match is null)
        {
            await WriteAsync(context, 404, Status(404, "NotFound", "the server could not find the requested resource", null, "", ""));
            return;
        }

        var ns = match.Groups["ns"].Value;
        var resource = match.Groups["res"].Value + (match.Groups["sub"].Success && match.Groups["sub"].Length > 0 ? "/scale" : "");
        var name = match.Groups["name"].Success && match.Groups["name"].Length > 0 ? match.Groups["name"].Value : null;
        var verb = (request.Method, name) switch
        {
            ("GET", null) => "list",
            ("GET", _) => "get",
            ("PATCH", _) => "patch",
            ("PUT", _) => "update",
            _ => null,
        };
        permission = (verb ?? request.Method.ToLowerInvariant(), group, resource);
        if (verb is null)
        {
            await WriteAsync(context, 405, Status(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource", name, group, resource));
            return;
        }

        JsonObject answer;
        int code;
        lock (gate)
            (code, answer) = Handle(verb, group, resource, ns, name, request.Query["labelSelector"].ToString(), request.ContentType, body);
        await WriteAsync(context, code, answer);
    }

    /// <summary>
    /// Legacy (unaggregated) discovery, which clients such as kubectl read to map a resource name to its group and version:
    /// an aggregated-discovery Accept header gets plain <c>application/json</c>, and kubectl falls back as it does with older servers.
    /// </summary>
    private static JsonObject? Discovery(string path)
    {
        static JsonObject Resource(string name, string singular, string kind, string[] verbs, string[]? shortNames = null, string? group = null, string? version = null,
            bool namespaced = true)
        {
            var resource = new JsonObject
            {
                ["name"] = name, ["singularName"] = singular, ["namespaced"] = namespaced, ["kind"] = kind,
                ["verbs"] = new JsonArray([.. verbs.Select(v => (JsonNode)v)]),
            };
            if (shortNames is not null) resource["shortNames"] = new JsonArray([.. shortNames.Select(v => (JsonNode)v)]);
            if (group is not null) { resource["group"] = group; resource["version"] = version; }
            return resource;
        }
        static JsonObject Group(string name) => new()
        {
            ["name"] = name,
            ["versions"] = new JsonArray(new JsonObject { ["groupVersion"] = $"{name}/v1", ["version"] = "v1" }),
            ["preferredVersion"] = new JsonObject { ["groupVersion"] = $"{name}/v1", ["version"] = "v1" },
        };
        static JsonObject Resources(string groupVersion, params JsonObject[] resources) => new()
        {
            ["kind"] = "APIResourceList", ["apiVersion"] = "v1", ["groupVersion"] = groupVersion,
            ["resources"] = new JsonArray(resources),
        };
        string[] all = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
        return path.TrimEnd('/') switch
        {
            "/api" => new JsonObject
            {
                ["kind"] = "APIVersions", ["versions"] = new JsonArray("v1"),
                ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = "10.0.0.1:6443" }),
            },
            "/apis" => new JsonObject
            {
                ["kind"] = "APIGroupList", ["apiVersion"] = "v1",
                ["groups"] = new JsonArray(Group("apps"), Group("batch"), Group("discovery.k8s.io")),
            },
            "/api/v1" => Resources("v1",
                Resource("namespaces", "namespace", "Namespace", ["create", "delete", "get", "list", "patch", "update", "watch"], ["ns"], namespaced: false),
                Resource("pods", "pod", "Pod", all, ["po"]),
                Resource("pods/log", "", "Pod", ["get"]),
                Resource("services", "service", "Service", all, ["svc"])),
            "/apis/apps/v1" => Resources("apps/v1",
                Resource("deployments", "deployment", "Deployment", all, ["deploy"]),
                Resource("deployments/scale", "", "Scale", ["get", "patch", "update"], group: "autoscaling", version: "v1")),
            "/apis/batch/v1" => Resources("batch/v1",
                Resource("jobs", "job", "Job", all),
                Resource("jobs/status", "", "Job", ["get", "patch", "update"])),
            "/apis/discovery.k8s.io/v1" => Resources("discovery.k8s.io/v1",
                Resource("endpointslices", "endpointslice", "EndpointSlice", all)),
            _ => null,
        };
    }

    private (int Code, JsonObject Body) Handle(string verb, string group, string resource, string ns, string? name, string labelSelector, string? contentType, string body)
    {
        if (forbidden.Contains((verb, resource)))
        {
            // As the API server words it: the group-qualified resource (deployments.apps), without the subresource.
            var qualified = group.Length == 0 ? resource.Split('/')[0] : $"{resource.Split('/')[0]}.{group}";
            var subject = name is null ? qualified : $"{qualified} \"{name}\"";
            return (403, Status(403, "Forbidden",
                $"{subject} is forbidden: User \"{User}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\"",
                name, group, resource.Split('/')[0]));
        }

        if (verb == "list")
        {
            var selector = ParseSelector(labelSelector);
            return resource switch
            {
                "pods" => (200, List("PodList", "v1", pods.Where(p => InNamespace(p.Key, ns) && Matches(LabelsOf(p.Value), selector)).Select(p => p.Value))),
                "endpointslices" => (200, List("EndpointSliceList", "discovery.k8s.io/v1", ListEndpointSlices(ns, selector))),
                "services" => (200, List("ServiceList", "v1", services.Where(s => InNamespace(s.Key, ns)).Select(s => s.Value))),
                "deployments" => (200, List("DeploymentList", "apps/v1", deployments.Where(d => InNamespace(d.Key, ns)).Select(d => d.Value))),
                _ => (404, Status(404, "NotFound", "the server could not find the requested resource", null, group, resource)),
            };
        }

        var store = resource switch
        {
            "services" => services,
            "pods" => pods,
            "deployments" or "deployments/scale" => deployments,
            _ => null,
        };
        var kind = resource.Split('/')[0];
        if (store is null || !store.TryGetValue(Key(ns, name!), out var current))
            return (404, Status(404, "NotFound", $"{kind}.{(group.Length == 0 ? "" : group)}".TrimEnd('.') + $" \"{name}\" not found", name, group, kind));

        var isScale = resource == "deployments/scale";
        if (verb == "get")
        {
            var answer = (JsonObject)(isScale ? ScaleOf(current) : current).DeepClone();
            // The controller catches up between polls: the next GET sees one more step.
            if (store == deployments)
                rollouts[Key(ns, name!)].Tick(current);
            return (200, answer);
        }

        // A write: first the concurrent writer the test asked for, then the request's own precondition.
        if (concurrentWrites.TryGetValue(resource, out var pending) && pending > 0)
        {
            concurrentWrites[resource] = pending - 1;
            var annotations = (JsonObject)(current["metadata"]!["annotations"] ??= new JsonObject());
            annotations["other-writer/touched"] = (pending).ToString(CultureInfo.InvariantCulture);
            current["metadata"]!["resourceVersion"] = NextResourceVersion();
        }

        var before = isScale ? ScaleOf(current) : current;
        JsonNode? updated;
        try
        {
            updated = verb == "update" ? JsonNode.Parse(body) : ApplyPatch(before.DeepClone(), contentType, body);
        }
        catch (UnsupportedMediaType)
        {
            return (415, Status(415, "UnsupportedMediaType",
                $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
                name, group, kind));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return (400, Status(400, "BadRequest", $"error decoding patch: {ex.Message}", name, group, kind));
        }
        if (updated is not JsonObject result)
            return (400, Status(400, "BadRequest", "the request body is not a JSON object", name, group, kind));

        var wantedVersion = result["metadata"]?["resourceVersion"]?.GetValue<string>();
        var currentVersion = current["metadata"]!["resourceVersion"]!.GetValue<string>();
        if (wantedVersion is not null && wantedVersion != currentVersion)
            return (409, Status(409, "Conflict",
                $"Operation cannot be fulfilled on {kind}{(group.Length == 0 ? "" : "." + group)} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                name, group, kind));

        if (isScale)
        {
            var replicas = (int)Number(result["spec"]?["replicas"]);
            var merged = (JsonObject)current.DeepClone();
            merged["spec"]!["replicas"] = replicas;
            result = merged;
        }
        Store(store, ns, name!, current, result);
        return (200, (JsonObject)(isScale ? ScaleOf(store[Key(ns, name!)]) : store[Key(ns, name!)]).DeepClone());
    }

    /// <summary>Keeps what a client may not change (status, identity), bumps resourceVersion and, on a spec change, generation.</summary>
    private void Store(Dictionary<string, JsonObject> store, string ns, string name, JsonObject current, JsonObject result)
    {
        var metadata = (JsonObject)(result["metadata"] ??= new JsonObject());
        metadata["name"] = name;
        metadata["namespace"] = ns;
        metadata["uid"] = current["metadata"]!["uid"]!.DeepClone();
        metadata["resourceVersion"] = NextResourceVersion();
        result["status"] = current["status"]?.DeepClone();
        var specChanged = !JsonNode.DeepEquals(current["spec"], result["spec"]);
        if (store == deployments && specChanged)
        {
            var generation = Math.Max(1, Number(current["metadata"]!["generation"])) + 1;
            metadata["generation"] = generation;
            var templateChanged = !JsonNode.DeepEquals(current["spec"]!["template"], result["spec"]!["template"]);
            rollouts[Key(ns, name)].SpecChanged(templateChanged);
        }
        else
            metadata["generation"] = current["metadata"]!["generation"]?.DeepClone();
        if (metadata["generation"] is null)
            metadata.Remove("generation");
        store[Key(ns, name)] = result;
        if (store != deployments)
            SyncEndpoints();
    }

    private static JsonNode ScaleOf(JsonObject deployment) => new JsonObject
    {
        ["kind"] = "Scale", ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject
        {
            ["name"] = deployment["metadata"]!["name"]!.DeepClone(), ["namespace"] = deployment["metadata"]!["namespace"]!.DeepClone(),
            ["resourceVersion"] = deployment["metadata"]!["resourceVersion"]!.DeepClone(), ["uid"] = deployment["metadata"]!["uid"]!.DeepClone(),
        },
        ["spec"] = new JsonObject { ["replicas"] = deployment["spec"]!["replicas"]!.DeepClone() },
        ["status"] = new JsonObject
        {
            ["replicas"] = deployment["status"]?["replicas"]?.DeepClone() ?? 0,
            ["selector"] = string.Join(",", ((JsonObject)deployment["spec"]!["selector"]!["matchLabels"]!).Select(p => $"{p.Key}={p.Value}")),
        },
    };

    // ---- patches ------------------------------------------------------------------------------------------------------

    private sealed class UnsupportedMediaType : Exception;

    private static JsonNode? ApplyPatch(JsonNode target, string? contentType, string body)
    {
        var mediaType = contentType?.Split(';')[0].Trim();
        var patch = JsonNode.Parse(body);
        return mediaType switch
        {
            "application/merge-patch+json" => MergePatch(target, patch, strategic: false),
            "application/strategic-merge-patch+json" => MergePatch(target, patch, strategic: true),
            "application/json-patch+json" => JsonPatch(target, (JsonArray)patch!),
            _ => throw new UnsupportedMediaType(),
        };
    }

    /// <summary>RFC 7386; with <paramref name="strategic"/>, lists of objects with a <c>name</c> merge by name as Kubernetes does for containers.</summary>
    private static JsonNode? MergePatch(JsonNode? target, JsonNode? patch, bool strategic)
    {
        if (patch is JsonArray patchList && strategic && target is JsonArray targetList
            && patchList.All(p => p is JsonObject o && o["name"] is not null) && targetList.All(t => t is JsonObject o && o["name"] is not null))
        {
            var merged = (JsonArray)targetList.DeepClone();
            foreach (var item in patchList)
            {
                var name = item!["name"]!.GetValue<string>();
                var existing = merged.FirstOrDefault(t => t!["name"]!.GetValue<string>() == name);
                if (existing is null)
                    merged.Add(item.DeepClone());
                else
                    merged[merged.IndexOf(existing)] = MergePatch(existing.DeepClone(), item, strategic);
            }
            return merged;
        }
        if (patch is not JsonObject patchObject)
            return patch?.DeepClone();
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
                result.Remove(key);
            else
                result[key] = MergePatch(result[key]?.DeepClone(), value, strategic);
        }
        return result;
    }

    /// <summary>RFC 6902: add, replace, remove and test on object members and array indexes.</summary>
    private static JsonNode JsonPatch(JsonNode target, JsonArray operations)
    {
        foreach (var operation in operations)
        {
            var op = operation!["op"]!.GetValue<string>();
            var pointer = operation["path"]!.GetValue<string>().Split('/').Skip(1).Select(s => s.Replace("~1", "/").Replace("~0", "~")).ToArray();
            var parent = pointer[..^1].Aggregate(target, (node, segment) =>
                (node is JsonArray array ? array[int.Parse(segment, CultureInfo.InvariantCulture)] : node[segment])
                ?? throw new InvalidOperationException($"path {operation["path"]} does not exist"));
            var last = pointer[^1];
            var value = operation["value"]?.DeepClone();
            switch (op, parent)
            {
                case ("test", _):
                    var actual = parent is JsonArray a ? a[int.Parse(last, CultureInfo.InvariantCulture)] : parent[last];
                    if (!JsonNode.DeepEquals(actual, value))
                        throw new InvalidOperationException($"test operation failed at {operation["path"]}");
                    break;
                case ("add" or "replace", JsonArray array):
                    if (last == "-") array.Add(value);
                    else if (op == "add") array.Insert(int.Parse(last, CultureInfo.InvariantCulture), value);
                    else array[int.Parse(last, CultureInfo.InvariantCulture)] = value;
                    break;
                case ("add" or "replace", JsonObject obj):
                    if (op == "replace" && !obj.ContainsKey(last))
                        throw new InvalidOperationException($"replace operation does not apply: doc is missing key {operation["path"]}");
                    obj[last] = value;
                    break;
                case ("remove", JsonArray array):
                    array.RemoveAt(int.Parse(last, CultureInfo.InvariantCulture));
                    break;
                case ("remove", JsonObject obj):
                    obj.Remove(last);
                    break;
                default:
                    throw new InvalidOperationException($"unsupported operation {op}");
            }
        }
        return target;
    }

    // ---- the simulated controllers --------------------------------------------------------------------------------------

    private sealed class EndpointController
    {
        public JsonObject? Slice;
        public bool Dirty;
        public int LagPolls;
        public bool Frozen;
    }

    /// <summary>Recomputes every Service's slice now, unless its controller lags (then the next lists catch up) or is frozen.</summary>
    private void SyncEndpoints()
    {
        foreach (var (key, controller) in endpoints)
        {
            if (controller.Slice is not null && (controller.Frozen || controller.LagPolls > 0))
            {
                controller.Dirty = true;
                continue;
            }
            controller.Slice = ComputeSlice(key);
            controller.Dirty = false;
        }
    }

    private IEnumerable<JsonObject> ListEndpointSlices(string ns, IReadOnlyList<Requirement> selector)
    {
        foreach (var (key, controller) in endpoints.Where(e => InNamespace(e.Key, ns)))
        {
            if (controller.Dirty && !controller.Frozen)
            {
                if (controller.LagPolls > 0)
                    controller.LagPolls--;
                else
                {
                    controller.Slice = ComputeSlice(key);
                    controller.Dirty = false;
                }
            }
            if (Matches(LabelsOf(controller.Slice!), selector))
                yield return controller.Slice!;
        }
    }

    private JsonObject ComputeSlice(string serviceKey)
    {
        var service = services[serviceKey];
        var ns = service["metadata"]!["namespace"]!.GetValue<string>();
        var name = service["metadata"]!["name"]!.GetValue<string>();
        var selector = ((JsonObject)service["spec"]!["selector"]!).Select(p => new Requirement(p.Key, "=", p.Value!.GetValue<string>())).ToList();
        var selected = pods.Where(p => InNamespace(p.Key, ns) && Matches(LabelsOf(p.Value), selector)).OrderBy(p => p.Key, StringComparer.Ordinal);
        var list = new JsonArray();
        foreach (var (_, pod) in selected)
        {
            var ready = IsReady(pod);
            list.Add(new JsonObject
            {
                ["addresses"] = new JsonArray(pod["status"]!["podIP"]!.DeepClone()),
                ["conditions"] = new JsonObject { ["ready"] = ready, ["serving"] = ready, ["terminating"] = false },
                ["nodeName"] = "node-1",
                ["targetRef"] = new JsonObject
                {
                    ["kind"] = "Pod", ["namespace"] = ns, ["name"] = pod["metadata"]!["name"]!.DeepClone(), ["uid"] = pod["metadata"]!["uid"]!.DeepClone(),
                },
            });
        }
        var metadata = Metadata(ns, $"{name}-x7k2p", new Dictionary<string, string>
        {
            ["kubernetes.io/service-name"] = name, ["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io",
        });
        metadata["resourceVersion"] = NextResourceVersion();
        return new JsonObject
        {
            ["kind"] = "EndpointSlice", ["apiVersion"] = "discovery.k8s.io/v1",
            ["metadata"] = metadata,
            ["addressType"] = "IPv4",
            ["endpoints"] = list,
            ["ports"] = new JsonArray(new JsonObject { ["name"] = "http", ["port"] = 8080, ["protocol"] = "TCP" }),
        };
    }

    private static IEnumerable<(string Pod, bool Ready)> SliceEndpoints(JsonObject slice) =>
        ((JsonArray)slice["endpoints"]!).Select(e => (e!["targetRef"]!["name"]!.GetValue<string>(), e["conditions"]!["ready"]!.GetValue<bool>()));

    private async Task AnswerPublicAsync(HttpContext context, string ns, string service)
    {
        JsonObject? pod = null;
        lock (gate)
        {
            if (endpoints.TryGetValue(Key(ns, service), out var controller))
            {
                var ready = SliceEndpoints(controller.Slice!).Where(e => e.Ready).Select(e => e.Pod).FirstOrDefault();
                if (ready is not null && pods.TryGetValue(Key(ns, ready), out var found))
                    pod = (JsonObject)found.DeepClone();
            }
        }
        if (pod is null)
        {
            context.Response.StatusCode = 503;
            await context.Response.WriteAsync("no healthy upstream");
            return;
        }
        var labels = LabelsOf(pod);
        await context.Response.WriteAsJsonAsync(new { app = service, version = labels.GetValueOrDefault("version"), slot = labels.GetValueOrDefault("slot") });
    }

    /// <summary>Advances a Deployment's status one step per GET, like the controller catching up between polls.</summary>
    private sealed class RolloutController
    {
        public bool Stalled;
        public bool DeadlineExceeded;
        private bool templateChanged;

        public void SpecChanged(bool template) => templateChanged |= template;

        public void Tick(JsonObject deployment)
        {
            var status = (JsonObject)deployment["status"]!;
            var name = deployment["metadata"]!["name"]!.GetValue<string>();
            var generation = Number(deployment["metadata"]!["generation"]);
            var wanted = (int)Number(deployment["spec"]!["replicas"]);
            int Get(string field) => (int)Number(status[field]);

            if (Number(status["observedGeneration"]) < generation)
            {
                status["observedGeneration"] = generation;
                if (templateChanged)
                {
                    // A new ReplicaSet: none of the current pods run the new template.
                    status["updatedReplicas"] = 0;
                    templateChanged = false;
                }
                status["conditions"] = new JsonArray(
                    Condition("Available", Get("availableReplicas") >= wanted ? "True" : "False", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                    DeadlineExceeded
                        ? Condition("Progressing", "False", "ProgressDeadlineExceeded", $"ReplicaSet \"{name}-7c9b\" has timed out progressing.")
                        : Condition("Progressing", "True", "ReplicaSetUpdated", $"ReplicaSet \"{name}-7c9b\" is progressing."));
                return;
            }
            if (Stalled || DeadlineExceeded)
            {
                // The first new pod is created but never becomes available.
                if (Get("updatedReplicas") == 0 && wanted > 0)
                {
                    status["updatedReplicas"] = 1;
                    status["replicas"] = Get("replicas") + 1;
                }
                return;
            }
            if (Get("updatedReplicas") < wanted)
            {
                status["updatedReplicas"] = Get("updatedReplicas") + 1;
                status["replicas"] = Math.Max(Get("replicas"), Get("updatedReplicas"));
            }
            else if (Get("updatedReplicas") > wanted)
            {
                status["updatedReplicas"] = wanted;
            }
            else if (Get("replicas") != wanted)
            {
                status["replicas"] = wanted;
                status["availableReplicas"] = Math.Min(Get("availableReplicas"), wanted);
                status["readyReplicas"] = Math.Min(Get("readyReplicas"), wanted);
            }
            else if (Get("availableReplicas") != wanted)
            {
                status["availableReplicas"] = wanted;
                status["readyReplicas"] = wanted;
                status["conditions"] = new JsonArray(
                    Condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                    Condition("Progressing", "True", "NewReplicaSetAvailable", $"ReplicaSet \"{name}-7c9b\" has successfully progressed."));
            }
        }
    }

    // ---- helpers --------------------------------------------------------------------------------------------------------

    private void SetReadyLocked(string ns, string name, bool ready)
    {
        var status = (JsonObject)pods[Key(ns, name)]["status"]!;
        status["conditions"] = new JsonArray(
            Condition("Initialized", "True", null, null),
            Condition("Ready", ready ? "True" : "False", ready ? null : "ContainersNotReady", ready ? null : "containers with unready status: [app]"),
            Condition("ContainersReady", ready ? "True" : "False", null, null),
            Condition("PodScheduled", "True", null, null));
        SyncEndpoints();
    }

    private static bool IsReady(JsonObject pod) =>
        pod["status"]?["conditions"] is JsonArray conditions
        && conditions.Any(c => c!["type"]!.GetValue<string>() == "Ready" && c["status"]!.GetValue<string>() == "True");

    private static JsonObject Condition(string type, string status, string? reason, string? message)
    {
        var condition = new JsonObject
        {
            ["type"] = type, ["status"] = status,
            ["lastTransitionTime"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        };
        if (reason is not null) condition["reason"] = reason;
        if (message is not null) condition["message"] = message;
        return condition;
    }

    private JsonObject Metadata(string ns, string name, IReadOnlyDictionary<string, string> labels) => new()
    {
        ["name"] = name, ["namespace"] = ns, ["uid"] = Guid.NewGuid().ToString(),
        ["resourceVersion"] = NextResourceVersion(),
        ["creationTimestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        ["labels"] = Labels(labels),
    };

    private string NextResourceVersion() => (++resourceVersion).ToString(CultureInfo.InvariantCulture);

    private static JsonObject Labels(IEnumerable<KeyValuePair<string, string>> labels) =>
        new(labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)JsonValue.Create(l.Value))));

    private static Dictionary<string, string> LabelsOf(JsonObject item) =>
        item["metadata"]?["labels"] is JsonObject labels
            ? labels.ToDictionary(l => l.Key, l => l.Value!.GetValue<string>(), StringComparer.Ordinal)
            : [];

    private JsonObject List(string kind, string apiVersion, IEnumerable<JsonObject> items) => new()
    {
        ["kind"] = kind, ["apiVersion"] = apiVersion,
        ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion.ToString(CultureInfo.InvariantCulture) },
        ["items"] = new JsonArray(items.Select(i => (JsonNode)i.DeepClone()).ToArray()),
    };

    private static JsonObject Status(int code, string reason, string message, string? name, string group, string kind)
    {
        var details = new JsonObject { ["kind"] = kind };
        if (name is not null) details["name"] = name;
        if (group.Length > 0) details["group"] = group;
        return new JsonObject
        {
            ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(),
            ["status"] = "Failure", ["message"] = message, ["reason"] = reason, ["details"] = details, ["code"] = code,
        };
    }

    private static async Task WriteAsync(HttpContext context, int code, JsonObject body)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    /// <summary>A JSON number whether it was parsed from a request or set from C# (JsonValue does not convert int to long).</summary>
    private static long Number(JsonNode? node) => node is null ? 0 : long.Parse(node.ToJsonString(), CultureInfo.InvariantCulture);

    private static string Key(string ns, string name) => $"{ns}/{name}";

    private static bool InNamespace(string key, string ns) => key.StartsWith(ns + "/", StringComparison.Ordinal);

    private sealed record Requirement(string Key, string Operator, string? Value);

    /// <summary>Equality-based selectors as the API accepts them: <c>a=b</c>, <c>a==b</c>, <c>a!=b</c>, <c>a</c>, <c>!a</c>.</summary>
    private static List<Requirement> ParseSelector(string selector) =>
        selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(part =>
        {
            if (part.Contains("!=", StringComparison.Ordinal)) { var kv = part.Split("!=", 2); return new Requirement(kv[0], "!=", kv[1]); }
            if (part.Contains("==", StringComparison.Ordinal)) { var kv = part.Split("==", 2); return new Requirement(kv[0], "=", kv[1]); }
            if (part.Contains('=')) { var kv = part.Split('=', 2); return new Requirement(kv[0], "=", kv[1]); }
            return part.StartsWith('!') ? new Requirement(part[1..], "!", null) : new Requirement(part, "exists", null);
        }).ToList();

    private static bool Matches(IReadOnlyDictionary<string, string> labels, IReadOnlyList<Requirement> selector) =>
        selector.All(r => r.Operator switch
        {
            "=" => labels.TryGetValue(r.Key, out var v) && v == r.Value,
            "!=" => !labels.TryGetValue(r.Key, out var v) || v != r.Value,
            "exists" => labels.ContainsKey(r.Key),
            _ => !labels.ContainsKey(r.Key),
        });
}
