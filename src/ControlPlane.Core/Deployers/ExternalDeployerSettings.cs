using System.Text.Json;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Deployers;

/// <summary>Settings of the <c>external</c> deployer: where each slot answers, and how long a pipeline may take to deploy.</summary>
/// <param name="VersionPath">Path on each slot that reports its version (plain text, or JSON with a <c>version</c> property).</param>
/// <param name="DeadlineSeconds">How long to wait for the slot to report the expected version.</param>
public sealed record ExternalDeployerSettings(Uri BlueUrl, Uri GreenUrl, string VersionPath, int DeadlineSeconds)
{
    public const string DefaultVersionPath = "/version";
    public const int DefaultDeadlineSeconds = 600;
    private static readonly string[] KnownFields = ["blueUrl", "greenUrl", "versionPath", "deadlineSeconds"];

    public Uri UrlOf(Slot slot) => slot == Slot.Blue ? BlueUrl : GreenUrl;

    public Uri VersionUrlOf(Slot slot) => new(UrlOf(slot).AbsoluteUri.TrimEnd('/') + VersionPath);

    public TimeSpan Deadline => TimeSpan.FromSeconds(DeadlineSeconds);

    /// <summary>Parses and validates; <paramref name="settings"/> is null exactly when errors are returned.</summary>
    public static IReadOnlyList<SettingsError> TryParse(JsonElement json, out ExternalDeployerSettings? settings)
    {
        settings = null;
        if (json.ValueKind != JsonValueKind.Object)
            return [new SettingsError("", "must be a JSON object such as {\"blueUrl\":\"http://shop-blue.internal/\",\"greenUrl\":\"http://shop-green.internal/\"}")];

        var errors = new List<SettingsError>();
        foreach (var property in json.EnumerateObject())
            if (!KnownFields.Contains(property.Name, StringComparer.Ordinal))
                errors.Add(new SettingsError(property.Name, $"is not a setting of the external deployer (known: {string.Join(", ", KnownFields)})"));

        var blue = Url(json, "blueUrl", errors);
        var green = Url(json, "greenUrl", errors);
        if (blue is not null && green is not null && Uri.Compare(blue, green, UriComponents.AbsoluteUri, UriFormat.SafeUnescaped, StringComparison.OrdinalIgnoreCase) == 0)
            errors.Add(new SettingsError("greenUrl", "must differ from blueUrl: each slot needs its own address so that the standby can be checked before the switch"));

        var versionPath = DefaultVersionPath;
        if (json.TryGetProperty("versionPath", out var path) && path.ValueKind != JsonValueKind.Null)
        {
            if (path.ValueKind != JsonValueKind.String || path.GetString() is not { Length: > 0 } text || !text.StartsWith('/') || text.Any(char.IsWhiteSpace))
                errors.Add(new SettingsError("versionPath", "must be a path starting with '/', such as /version"));
            else
                versionPath = text;
        }

        var deadline = DefaultDeadlineSeconds;
        if (json.TryGetProperty("deadlineSeconds", out var deadlineJson) && deadlineJson.ValueKind != JsonValueKind.Null &&
            !(deadlineJson.ValueKind == JsonValueKind.Number && deadlineJson.TryGetInt32(out deadline) && deadline is >= 1 and <= 86_400))
            errors.Add(new SettingsError("deadlineSeconds", "must be a whole number of seconds from 1 to 86400 (default 600)"));

        if (errors.Count == 0)
            settings = new ExternalDeployerSettings(blue!, green!, versionPath, deadline);
        return errors;
    }

    private static Uri? Url(JsonElement json, string field, List<SettingsError> errors)
    {
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            errors.Add(new SettingsError(field, "is required"));
            return null;
        }
        if (value.ValueKind == JsonValueKind.String && Uri.TryCreate(value.GetString(), UriKind.Absolute, out var url) &&
            url.Scheme is "http" or "https" && string.IsNullOrEmpty(url.Query) && string.IsNullOrEmpty(url.Fragment))
            return url;
        errors.Add(new SettingsError(field, "must be an absolute http or https URL without query, such as http://shop-blue.internal:8080/"));
        return null;
    }
}
