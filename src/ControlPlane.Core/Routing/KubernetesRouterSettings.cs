using System.Text.Json;
using ControlPlane.Core.Kubernetes;

namespace ControlPlane.Core.Routing;

/// <summary>
/// Settings of the <c>kubernetes</c> router: the Service whose selector's <see cref="SlotLabel"/> picks the live slot.
/// </summary>
/// <param name="PublicUrl">Where users reach the Service (Ingress, LoadBalancer); when set, verification also requests it.</param>
/// <param name="Kubeconfig">A kubeconfig file; null = the in-cluster service account, else <c>$KUBECONFIG</c> / <c>~/.kube/config</c>.</param>
public sealed record KubernetesRouterSettings(
    string Namespace,
    string Service,
    string SlotLabel = "slot",
    string? Kubeconfig = null,
    string? Context = null,
    Uri? PublicUrl = null,
    int VerifyTimeoutSeconds = 60)
{
    public KubernetesConnection Connection => new(Kubeconfig, Context);

    private static readonly string[] KnownFields = ["namespace", "service", "slotLabel", "kubeconfig", "context", "publicUrl", "verifyTimeoutSeconds"];

    /// <summary>Field-level errors (field names relative to the settings object); empty when valid.</summary>
    public static IReadOnlyList<SettingsError> Validate(JsonElement settings) => Read(settings).Errors;

    /// <summary>Reads valid settings or throws a <see cref="RouterException"/> listing what is wrong.</summary>
    public static KubernetesRouterSettings Parse(JsonElement settings)
    {
        var (parsed, errors) = Read(settings);
        if (parsed is null)
            throw new RouterException("Invalid kubernetes router settings: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
        return parsed;
    }

    private static (KubernetesRouterSettings? Settings, IReadOnlyList<SettingsError> Errors) Read(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object)
            return (null, [new SettingsError("", "must be a JSON object such as {\"namespace\":\"shop\",\"service\":\"checkout\"}")]);

        var errors = new List<SettingsError>();
        foreach (var property in json.EnumerateObject())
            if (!KnownFields.Contains(property.Name, StringComparer.Ordinal))
                errors.Add(new SettingsError(property.Name, $"is not a setting of the kubernetes router (known: {string.Join(", ", KnownFields)})"));

        var @namespace = KubernetesNames.RequiredDnsLabel(json, "namespace", errors);
        var service = KubernetesNames.RequiredDnsLabel(json, "service", errors);
        var slotLabel = KubernetesNames.OptionalString(json, "slotLabel", errors) ?? "slot";
        if (!KubernetesNames.IsLabelKey(slotLabel))
            errors.Add(new SettingsError("slotLabel", "must be a Kubernetes label key such as slot or example.com/slot"));
        var kubeconfig = KubernetesNames.OptionalString(json, "kubeconfig", errors);
        var context = KubernetesNames.OptionalString(json, "context", errors);

        Uri? publicUrl = null;
        if (KubernetesNames.OptionalString(json, "publicUrl", errors) is { } url)
        {
            if (Uri.TryCreate(url, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https")
                publicUrl = parsed;
            else
                errors.Add(new SettingsError("publicUrl", "must be an absolute http:// or https:// URL such as http://checkout.shop.example/"));
        }

        var timeout = 60;
        if (json.TryGetProperty("verifyTimeoutSeconds", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out timeout) || timeout is < 1 or > 600)
                errors.Add(new SettingsError("verifyTimeoutSeconds", "must be a whole number of seconds from 1 to 600"));
        }

        return errors.Count > 0
            ? (null, errors)
            : (new KubernetesRouterSettings(@namespace!, service!, slotLabel, kubeconfig, context, publicUrl, timeout), errors);
    }
}
