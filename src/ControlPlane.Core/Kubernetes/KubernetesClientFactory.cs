using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using k8s;
using k8s.Autorest;
using k8s.Exceptions;

namespace ControlPlane.Core.Kubernetes;

/// <summary>Which cluster and credentials: a kubeconfig file and context, or (both null) in-cluster / the default kubeconfig.</summary>
public sealed record KubernetesConnection(string? Kubeconfig, string? Context)
{
    public override string ToString() =>
        Kubeconfig is null && Context is null ? "the in-cluster service account or the default kubeconfig"
        : $"kubeconfig {Kubeconfig ?? "(default)"}{(Context is null ? "" : $", context {Context}")}";
}

public interface IKubernetesClientFactory
{
    /// <summary>A client for the connection; throws <see cref="KubernetesApiException"/> when no configuration can be loaded.</summary>
    IKubernetes ClientFor(KubernetesConnection connection);
}

/// <summary>
/// Builds and caches one <see cref="IKubernetes"/> per connection. With no kubeconfig named, the in-cluster service account is
/// used when ControlPlane runs in a pod, else <c>$KUBECONFIG</c> or <c>~/.kube/config</c>. Tests pass <paramref name="configure"/>
/// to point every client at a fake API server.
/// </summary>
public sealed class KubernetesClientFactory(Func<KubernetesConnection, KubernetesClientConfiguration>? configure = null)
    : IKubernetesClientFactory, IDisposable
{
    private readonly ConcurrentDictionary<KubernetesConnection, IKubernetes> clients = new();
    private readonly Lock gate = new();

    public IKubernetes ClientFor(KubernetesConnection connection)
    {
        if (clients.TryGetValue(connection, out var existing))
            return existing;
        // Not GetOrAdd with a Lazy: a missing kubeconfig must not be cached as a permanent failure.
        lock (gate)
        {
            if (clients.TryGetValue(connection, out existing))
                return existing;
            var client = new k8s.Kubernetes((configure ?? Load)(connection));
            clients[connection] = client;
            return client;
        }
    }

    private static KubernetesClientConfiguration Load(KubernetesConnection connection)
    {
        try
        {
            KubernetesClientConfiguration config;
            if (connection.Kubeconfig is { } path)
            {
                var file = new FileInfo(Environment.ExpandEnvironmentVariables(path.StartsWith("~/", StringComparison.Ordinal)
                    ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..]) : path));
                if (!file.Exists)
                    throw new KubernetesApiException($"The kubeconfig file {file.FullName} does not exist.", null, transient: false);
                config = KubernetesClientConfiguration.BuildConfigFromConfigFile(file, connection.Context);
            }
            else if (connection.Context is null && KubernetesClientConfiguration.IsInCluster())
                config = KubernetesClientConfiguration.InClusterConfig();
            else if (Environment.GetEnvironmentVariable("KUBECONFIG") is { Length: > 0 } list)
            {
                // The client merges a KUBECONFIG list only without a context override; with one, the first file is used.
                var first = list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)[0];
                config = connection.Context is null
                    ? KubernetesClientConfiguration.BuildDefaultConfig()
                    : KubernetesClientConfiguration.BuildConfigFromConfigFile(first, connection.Context);
            }
            else if (File.Exists(KubernetesClientConfiguration.KubeConfigDefaultLocation))
                config = KubernetesClientConfiguration.BuildConfigFromConfigFile(KubernetesClientConfiguration.KubeConfigDefaultLocation, connection.Context);
            else
                throw new KubernetesApiException(
                    $"No Kubernetes credentials: ControlPlane does not run in a pod with a service account, $KUBECONFIG is not set and " +
                    $"{KubernetesClientConfiguration.KubeConfigDefaultLocation} does not exist. Set the kubeconfig setting or run ControlPlane in the cluster.",
                    null, transient: false);
            config.HttpClientTimeout = TimeSpan.FromSeconds(30);
            return config;
        }
        catch (KubeConfigException ex)
        {
            throw new KubernetesApiException($"Cannot load Kubernetes credentials from {connection}: {ex.Message}", null, transient: false, ex);
        }
    }

    public void Dispose()
    {
        foreach (var client in clients.Values)
            client.Dispose();
        clients.Clear();
    }
}

/// <summary>
/// A Kubernetes API call that failed, with a message an operator can act on (403 names the verb, the resource and the RBAC
/// Role to apply). <see cref="Transient"/>: worth retrying as is (unreachable, 429, 5xx).
/// </summary>
public sealed class KubernetesApiException(string message, int? statusCode, bool transient, Exception? inner = null) : Exception(message, inner)
{
    public const string RbacManifest = "deploy/kubernetes/rbac.yaml";

    public int? StatusCode { get; } = statusCode;
    public bool Transient { get; } = transient;
    public bool IsConflict => StatusCode == 409;
    public bool IsNotFound => StatusCode == 404;

    /// <summary>Runs one API call; failures become a <see cref="KubernetesApiException"/> describing <paramref name="verb"/> on the object.</summary>
    /// <param name="resource">As RBAC spells it, e.g. <c>services</c>, <c>deployments/scale</c>.</param>
    /// <param name="apiGroup">"" for the core group, e.g. <c>apps</c>, <c>discovery.k8s.io</c>.</param>
    public static async Task<T> CallAsync<T>(
        Func<Task<T>> call, string verb, string resource, string apiGroup, string @namespace, string? name, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (HttpOperationException ex)
        {
            throw FromResponse(ex, verb, resource, apiGroup, @namespace, name);
        }
        catch (HttpRequestException ex)
        {
            var socket = ex.InnerException as SocketException ?? ex.InnerException?.InnerException as SocketException;
            throw new KubernetesApiException(
                $"Cannot reach the Kubernetes API to {verb} {Describe(resource, @namespace, name)}: {socket?.Message ?? ex.Message}", null, transient: true, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KubernetesApiException(
                $"The Kubernetes API did not answer in time to {verb} {Describe(resource, @namespace, name)}.", null, transient: true, ex);
        }
    }

    private static KubernetesApiException FromResponse(HttpOperationException ex, string verb, string resource, string apiGroup, string @namespace, string? name)
    {
        var code = (int)ex.Response.StatusCode;
        var detail = StatusMessage(ex.Response.Content) ?? ex.Response.ReasonPhrase ?? "";
        var what = Describe(resource, @namespace, name);
        var qualified = apiGroup.Length == 0 ? resource : $"{resource.Split('/')[0]}.{apiGroup}{(resource.Contains('/') ? "/" + resource.Split('/', 2)[1] : "")}";
        var message = code switch
        {
            403 => $"Forbidden: ControlPlane may not {verb} {qualified} in namespace {@namespace} ({detail}). " +
                   $"Grant it with the Role and RoleBinding in {RbacManifest} (verb \"{verb}\" on resource \"{resource}\" in API group \"{apiGroup}\").",
            401 => $"The Kubernetes API rejected ControlPlane's credentials (HTTP 401) when trying to {verb} {what}: {detail}. " +
                   "Check the kubeconfig/context or the service-account token.",
            404 => $"{Capitalise(what)} does not exist ({detail}).",
            409 => $"Conflict while trying to {verb} {what}: {detail}",
            _ => $"The Kubernetes API answered HTTP {code} to {verb} {what}: {detail}",
        };
        return new KubernetesApiException(message, code, transient: code is 409 or 429 or >= 500, ex);
    }

    private static string Describe(string resource, string @namespace, string? name)
    {
        var kind = resource.Split('/')[0].TrimEnd('s') switch { "endpointslice" => "EndpointSlice", var k => char.ToUpperInvariant(k[0]) + k[1..] };
        var sub = resource.Contains('/') ? $" ({resource.Split('/', 2)[1]})" : "";
        return name is null ? $"{resource} in namespace {@namespace}" : $"{kind} {@namespace}/{name}{sub}";
    }

    private static string Capitalise(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    /// <summary>The <c>message</c> of a Kubernetes <c>Status</c> body, when the body is one.</summary>
    private static string? StatusMessage(string? body)
    {
        if (string.IsNullOrWhiteSpace(body)) return null;
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("message", out var m)
                   && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        }
        catch (JsonException)
        {
            return body.Length > 200 ? body[..200] + "…" : body;
        }
    }
}

/// <summary>Kubernetes naming rules for the kubernetes router's and deployer's settings.</summary>
internal static partial class KubernetesNames
{
    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
    private static partial Regex LabelName();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    public static bool IsDnsLabel(string value) => value.Length <= 63 && DnsLabel().IsMatch(value);

    public static bool IsDnsSubdomain(string value) => value.Length <= 253 && DnsSubdomain().IsMatch(value);

    /// <summary>A label value: empty, or up to 63 alphanumerics with <c>-_.</c> inside.</summary>
    public static bool IsLabelValue(string value) => value.Length == 0 || (value.Length <= 63 && LabelName().IsMatch(value));

    public static bool IsLabelKey(string key)
    {
        var slash = key.LastIndexOf('/');
        var name = slash < 0 ? key : key[(slash + 1)..];
        var prefix = slash < 0 ? null : key[..slash];
        return name.Length is > 0 and <= 63 && LabelName().IsMatch(name)
               && (prefix is null || (prefix.Length <= 253 && DnsSubdomain().IsMatch(prefix)));
    }

    public static string? RequiredDnsLabel(JsonElement json, string field, List<SettingsError> errors)
    {
        var value = OptionalString(json, field, errors);
        if (value is null)
        {
            if (!errors.Any(e => e.Field == field))
                errors.Add(new SettingsError(field, "is required"));
            return null;
        }
        if (!IsDnsLabel(value))
        {
            errors.Add(new SettingsError(field, "must be a Kubernetes name: lower-case letters, digits and '-', at most 63 characters"));
            return null;
        }
        return value;
    }

    /// <summary>A string property, null when absent or JSON null; an error when present with another type or blank.</summary>
    public static string? OptionalString(JsonElement json, string field, List<SettingsError> errors)
    {
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            errors.Add(new SettingsError(field, "must be a non-empty string"));
            return null;
        }
        return value.GetString();
    }
}
