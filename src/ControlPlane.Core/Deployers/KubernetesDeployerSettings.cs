using System.Text.Json;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Kubernetes;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// Settings of the <c>kubernetes</c> deployer: one Deployment per slot. <c>{slot}</c>, <c>{app}</c> (and in
/// <see cref="Image"/> <c>{version}</c>) are substituted, e.g. deployment <c>checkout-{slot}</c>, image
/// <c>registry/checkout:{version}</c>, previewUrl <c>http://checkout-{slot}.shop.svc:8080/</c>.
/// </summary>
/// <param name="PreviewUrl">The slot's own in-cluster URL, checked before the switch (a per-slot Service).</param>
/// <param name="RolloutTimeoutSeconds">How long a rollout may take before the deployment fails; counted from the first change.</param>
public sealed record KubernetesDeployerSettings(
    string Namespace,
    string Deployment,
    string Image,
    string PreviewUrl,
    string Container = "app",
    string VersionLabel = "version",
    int RolloutTimeoutSeconds = 300,
    string? Kubeconfig = null,
    string? Context = null)
{
    public KubernetesConnection Connection => new(Kubeconfig, Context);

    public TimeSpan RolloutTimeout => TimeSpan.FromSeconds(RolloutTimeoutSeconds);

    public string DeploymentOf(string app, Slot slot) => Substitute(Deployment, app, slot, "");

    public string ImageOf(string app, Slot slot, string version) => Substitute(Image, app, slot, version);

    public Uri PreviewUrlOf(string app, Slot slot) => new(Substitute(PreviewUrl, app, slot, ""));

    private static string Substitute(string template, string app, Slot slot, string version) =>
        template.Replace("{slot}", slot.Name(), StringComparison.Ordinal)
            .Replace("{app}", app, StringComparison.Ordinal)
            .Replace("{version}", version, StringComparison.Ordinal);

    private static readonly string[] KnownFields =
        ["namespace", "deployment", "container", "image", "versionLabel", "rolloutTimeoutSeconds", "previewUrl", "kubeconfig", "context"];

    /// <summary>Parses and validates; <paramref name="settings"/> is null exactly when errors are returned. Field names are relative.</summary>
    public static IReadOnlyList<SettingsError> TryParse(JsonElement json, out KubernetesDeployerSettings? settings)
    {
        settings = null;
        if (json.ValueKind != JsonValueKind.Object)
            return [new SettingsError("", "must be a JSON object such as {\"namespace\":\"shop\",\"deployment\":\"checkout-{slot}\",\"image\":\"registry/checkout:{version}\",\"previewUrl\":\"http://checkout-{slot}.shop.svc:8080/\"}")];

        var errors = new List<SettingsError>();
        foreach (var property in json.EnumerateObject())
            if (!KnownFields.Contains(property.Name, StringComparer.Ordinal))
                errors.Add(new SettingsError(property.Name, $"is not a setting of the kubernetes deployer (known: {string.Join(", ", KnownFields)})"));

        var @namespace = KubernetesNames.RequiredDnsLabel(json, "namespace", errors);
        var deployment = Required(json, "deployment", errors);
        if (deployment is not null)
        {
            // "app" stands in for the application name, which is not known here.
            if (!deployment.Contains("{slot}", StringComparison.Ordinal))
                errors.Add(new SettingsError("deployment", "must contain {slot} so that blue and green are two Deployments, e.g. checkout-{slot}"));
            else if (!KubernetesNames.IsDnsSubdomain(Substitute(deployment, "app", Slot.Green, "")))
                errors.Add(new SettingsError("deployment", "must give a Kubernetes name (lower-case letters, digits, '-' and '.') once {slot} is substituted"));
        }
        var container = KubernetesNames.OptionalString(json, "container", errors) ?? "app";
        if (!KubernetesNames.IsDnsLabel(container))
            errors.Add(new SettingsError("container", "must be a container name: lower-case letters, digits and '-'"));
        var image = Required(json, "image", errors);
        if (image is not null && !image.Contains("{version}", StringComparison.Ordinal))
            errors.Add(new SettingsError("image", "must contain {version}, e.g. registry.example/checkout:{version}"));
        var versionLabel = KubernetesNames.OptionalString(json, "versionLabel", errors) ?? "version";
        if (!KubernetesNames.IsLabelKey(versionLabel))
            errors.Add(new SettingsError("versionLabel", "must be a Kubernetes label key such as version or app.kubernetes.io/version"));

        var timeout = 300;
        if (json.TryGetProperty("rolloutTimeoutSeconds", out var t) && t.ValueKind != JsonValueKind.Null
            && (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out timeout) || timeout is < 1 or > 3600))
            errors.Add(new SettingsError("rolloutTimeoutSeconds", "must be a whole number of seconds from 1 to 3600"));

        var previewUrl = Required(json, "previewUrl", errors);
        if (previewUrl is not null)
        {
            var sample = Substitute(previewUrl, "app", Slot.Green, "");
            if (!previewUrl.Contains("{slot}", StringComparison.Ordinal))
                errors.Add(new SettingsError("previewUrl", "must contain {slot}: each slot is checked on its own URL, e.g. http://checkout-{slot}.shop.svc:8080/"));
            else if (!Uri.TryCreate(sample, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                errors.Add(new SettingsError("previewUrl", "must be an absolute http:// or https:// URL once {slot} is substituted"));
        }

        var kubeconfig = KubernetesNames.OptionalString(json, "kubeconfig", errors);
        var context = KubernetesNames.OptionalString(json, "context", errors);

        if (errors.Count == 0)
            settings = new KubernetesDeployerSettings(@namespace!, deployment!, image!, previewUrl!, container, versionLabel, timeout, kubeconfig, context);
        return errors;
    }

    private static string? Required(JsonElement json, string field, List<SettingsError> errors)
    {
        var value = KubernetesNames.OptionalString(json, field, errors);
        if (value is null && !errors.Any(e => e.Field == field))
            errors.Add(new SettingsError(field, "is required"));
        return value;
    }
}
