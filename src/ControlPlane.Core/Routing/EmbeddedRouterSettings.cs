using System.Net;
using System.Text.Json;

namespace ControlPlane.Core.Routing;

/// <summary>Settings of the <c>embedded</c> router: where its own listener accepts public traffic.</summary>
/// <param name="ListenAddress">An IP address to listen on, e.g. <c>127.0.0.1</c>.</param>
/// <param name="ListenPort">The port; 0 picks a free one at attach time.</param>
/// <param name="MeasureTraffic">Count requests, 5xx and latency per slot for traffic checks (on by default; off to compare its cost).</param>
public sealed record EmbeddedRouterSettings(string ListenAddress = "127.0.0.1", int ListenPort = 8080, bool MeasureTraffic = true)
{
    public const string ListenAddressField = "listenAddress";
    public const string ListenPortField = "listenPort";
    public const string MeasureTrafficField = "measureTraffic";

    public IPAddress Address => IPAddress.Parse(ListenAddress);

    /// <summary>
    /// For a router of this kind whose stored <c>listenPort</c> is 0: the same settings with the port it was given
    /// (from <paramref name="publicUrl"/>), to be stored so the URL never changes. Null when nothing is to be pinned.
    /// </summary>
    public static string? PinnedPort(string routerKind, JsonElement settings, Uri publicUrl)
    {
        if (routerKind != EmbeddedRouter.KindName || Read(settings) is not ({ ListenPort: 0 }, { Count: 0 })) return null;
        var pinned = settings.ValueKind == JsonValueKind.Object
            ? System.Text.Json.Nodes.JsonObject.Create(settings)!
            : [];
        pinned[ListenPortField] = publicUrl.Port;
        return pinned.ToJsonString();
    }

    /// <summary>Field-level errors (field names relative to the settings object); empty when valid.</summary>
    public static IReadOnlyList<SettingsError> Validate(JsonElement settings) => Read(settings).Errors;

    /// <summary>Reads valid settings or throws a <see cref="RouterException"/> listing what is wrong.</summary>
    public static EmbeddedRouterSettings Parse(JsonElement settings)
    {
        var (parsed, errors) = Read(settings);
        if (errors.Count > 0)
            throw new RouterException("Invalid embedded router settings: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
        return parsed;
    }

    private static (EmbeddedRouterSettings Settings, IReadOnlyList<SettingsError> Errors) Read(JsonElement settings)
    {
        var result = new EmbeddedRouterSettings();
        var errors = new List<SettingsError>();

        // Missing settings mean "all defaults"; anything else must be an object.
        if (settings.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
            return (result, errors);
        if (settings.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new SettingsError("", "must be a JSON object such as {\"listenAddress\":\"127.0.0.1\",\"listenPort\":8080}"));
            return (result, errors);
        }

        foreach (var property in settings.EnumerateObject())
        {
            if (property.NameEquals(ListenAddressField))
            {
                if (property.Value.ValueKind == JsonValueKind.String && IPAddress.TryParse(property.Value.GetString(), out _))
                    result = result with { ListenAddress = property.Value.GetString()! };
                else
                    errors.Add(new SettingsError(ListenAddressField, "must be an IP address such as 127.0.0.1 (host names are not accepted)"));
            }
            else if (property.NameEquals(ListenPortField))
            {
                if (property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetInt32(out var port) && port is >= 0 and <= 65535)
                    result = result with { ListenPort = port };
                else
                    errors.Add(new SettingsError(ListenPortField, "must be a whole number from 0 to 65535 (0 picks a free port)"));
            }
            else if (property.NameEquals(MeasureTrafficField))
            {
                if (property.Value.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    result = result with { MeasureTraffic = property.Value.GetBoolean() };
                else
                    errors.Add(new SettingsError(MeasureTrafficField, "must be true or false"));
            }
            else
                errors.Add(new SettingsError(property.Name,
                    $"is not a setting of the embedded router (known: {ListenAddressField}, {ListenPortField}, {MeasureTrafficField})"));
        }
        return (result, errors);
    }
}
