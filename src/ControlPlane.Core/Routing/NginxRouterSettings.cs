using System.Text.Json;
using System.Text.RegularExpressions;

namespace ControlPlane.Core.Routing;

/// <summary>How the <c>nginx</c> router moves traffic.</summary>
public enum NginxSwitchMode
{
    /// <summary>Rewrite the upstream file, <c>nginx -t</c>, <c>nginx -s reload</c>. Works on any nginx; drops idle keep-alive connections.</summary>
    Reload,

    /// <summary>Set a Lua shared dict through a loopback location (as ingress-nginx does): no reload, no dropped connection.</summary>
    Lua,
}

/// <summary>
/// Settings of the <c>nginx</c> router: which include file ControlPlane owns inside an nginx it does not run, how to
/// reach that nginx, and where users reach the application.
/// </summary>
/// <param name="Mode"><c>reload</c> or <c>lua</c>.</param>
/// <param name="PublicUrl">Where nginx serves the application; the data plane is verified through it.</param>
/// <param name="UpstreamFile">Absolute path of the include file ControlPlane writes (nginx includes it in its <c>http</c> block).</param>
/// <param name="UpstreamName">
/// Name of the upstream (<c>reload</c>), or prefix of the two upstreams <c>NAME_blue</c>/<c>NAME_green</c>, the variable
/// <c>$NAME_default_slot</c> and the shared-dict key (<c>lua</c>).
/// </param>
/// <param name="NginxBinary">The nginx executable (or a wrapper that runs it, e.g. through sudo).</param>
/// <param name="NginxArguments">Given before <c>-t</c> / <c>-s reload</c>, e.g. <c>["-c", "/etc/nginx/nginx.conf"]</c>.</param>
/// <param name="LuaEndpoint">The loopback-only location that reads and sets the shared dict; required in <c>lua</c> mode.</param>
/// <param name="TrafficEndpoint">
/// The loopback-only location that reports the per-slot traffic nginx's Lua counted (docs/nginx.md); <c>lua</c> mode only.
/// Without it traffic checks on the application are inconclusive.
/// </param>
public sealed partial record NginxRouterSettings(
    NginxSwitchMode Mode,
    Uri PublicUrl,
    string UpstreamFile,
    string UpstreamName,
    string NginxBinary,
    IReadOnlyList<string> NginxArguments,
    Uri? LuaEndpoint,
    Uri? TrafficEndpoint = null)
{
    public const string DefaultNginxBinary = "/usr/sbin/nginx";

    public const string ModeField = "mode";
    public const string PublicUrlField = "publicUrl";
    public const string UpstreamFileField = "upstreamFile";
    public const string UpstreamNameField = "upstreamName";
    public const string NginxBinaryField = "nginxBinary";
    public const string NginxArgumentsField = "nginxArguments";
    public const string LuaEndpointField = "luaEndpoint";
    public const string TrafficEndpointField = "trafficEndpoint";

    private static readonly string[] KnownFields =
        [ModeField, PublicUrlField, UpstreamFileField, UpstreamNameField, NginxBinaryField, NginxArgumentsField, LuaEndpointField, TrafficEndpointField];

    // Also used as an nginx variable name and a Lua table key, so nothing nginx or Lua would need to quote.
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]{0,63}\z")]
    private static partial Regex UpstreamNamePattern();

    /// <summary>Field-level errors (field names relative to the settings object); empty when valid.</summary>
    public static IReadOnlyList<SettingsError> Validate(JsonElement settings) => Read(settings).Errors;

    /// <summary>Reads valid settings or throws a <see cref="RouterException"/> listing what is wrong.</summary>
    public static NginxRouterSettings Parse(JsonElement settings)
    {
        var (parsed, errors) = Read(settings);
        if (parsed is null || errors.Count > 0)
            throw new RouterException("Invalid nginx router settings: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
        return parsed;
    }

    private static (NginxRouterSettings? Settings, IReadOnlyList<SettingsError> Errors) Read(JsonElement json)
    {
        var errors = new List<SettingsError>();
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new SettingsError("", "must be a JSON object such as " +
                "{\"mode\":\"lua\",\"publicUrl\":\"http://127.0.0.1:8088/\",\"upstreamFile\":\"/etc/nginx/controlplane/shop.conf\"," +
                "\"upstreamName\":\"shop\",\"luaEndpoint\":\"http://127.0.0.1:8089/controlplane/slot\"}"));
            return (null, errors);
        }

        foreach (var property in json.EnumerateObject())
            if (!KnownFields.Contains(property.Name, StringComparer.Ordinal))
                errors.Add(new SettingsError(property.Name, $"is not a setting of the nginx router (known: {string.Join(", ", KnownFields)})"));

        NginxSwitchMode? mode = String(json, ModeField) switch
        {
            "reload" => NginxSwitchMode.Reload,
            "lua" => NginxSwitchMode.Lua,
            _ => null,
        };
        if (mode is null)
            errors.Add(new SettingsError(ModeField, "is required: \"lua\" (switch without reload; needs nginx's Lua module) or \"reload\" (rewrite + graceful reload)"));

        var publicUrl = HttpUrl(json, PublicUrlField, errors, required: true);

        var upstreamFile = String(json, UpstreamFileField);
        if (string.IsNullOrWhiteSpace(upstreamFile) || !Path.IsPathFullyQualified(upstreamFile) || Path.EndsInDirectorySeparator(upstreamFile))
            errors.Add(new SettingsError(UpstreamFileField, "is required: the absolute path of the file ControlPlane writes, e.g. /etc/nginx/controlplane/shop.conf"));

        var upstreamName = String(json, UpstreamNameField);
        if (upstreamName is null || !UpstreamNamePattern().IsMatch(upstreamName))
            errors.Add(new SettingsError(UpstreamNameField, "is required: 1-64 letters, digits or '_', not starting with a digit (it names nginx upstreams and variables)"));

        var nginxBinary = DefaultNginxBinary;
        if (json.TryGetProperty(NginxBinaryField, out var binary))
        {
            if (binary.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(binary.GetString()))
                nginxBinary = binary.GetString()!;
            else
                errors.Add(new SettingsError(NginxBinaryField, $"must be the path of the nginx executable (default {DefaultNginxBinary})"));
        }

        var arguments = new List<string>();
        if (json.TryGetProperty(NginxArgumentsField, out var args))
        {
            if (args.ValueKind != JsonValueKind.Array)
                errors.Add(new SettingsError(NginxArgumentsField, "must be an array of strings such as [\"-c\", \"/etc/nginx/nginx.conf\"]"));
            else
            {
                var i = 0;
                foreach (var arg in args.EnumerateArray())
                {
                    if (arg.ValueKind != JsonValueKind.String)
                        errors.Add(new SettingsError($"{NginxArgumentsField}[{i}]", "must be a string"));
                    else if (arg.GetString() is "-t" or "-T" or "-s" or "-q")
                        errors.Add(new SettingsError($"{NginxArgumentsField}[{i}]", "must not be -t, -T, -s or -q: ControlPlane adds -t and -s reload itself"));
                    else
                        arguments.Add(arg.GetString()!);
                    i++;
                }
            }
        }

        var luaEndpoint = HttpUrl(json, LuaEndpointField, errors, required: mode == NginxSwitchMode.Lua);
        var trafficEndpoint = HttpUrl(json, TrafficEndpointField, errors, required: false);
        // Counting per slot happens in nginx's Lua; reload mode has no Lua to count with.
        if (trafficEndpoint is not null && mode == NginxSwitchMode.Reload)
            errors.Add(new SettingsError(TrafficEndpointField, "is only for lua mode: nginx counts traffic per slot in Lua (docs/nginx.md)"));

        if (errors.Count > 0)
            return (null, errors);
        return (new NginxRouterSettings(mode!.Value, publicUrl!, upstreamFile!, upstreamName!, nginxBinary, arguments, luaEndpoint, trafficEndpoint), errors);
    }

    private static string? String(JsonElement json, string name) =>
        json.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static Uri? HttpUrl(JsonElement json, string field, List<SettingsError> errors, bool required)
    {
        var present = json.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null;
        if (present && value.ValueKind == JsonValueKind.String && Uri.TryCreate(value.GetString(), UriKind.Absolute, out var url) &&
            (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps))
            return url;
        if (present || required)
            errors.Add(new SettingsError(field, field switch
            {
                LuaEndpointField => "is required in lua mode: the http:// URL of the loopback-only location that sets the slot, e.g. http://127.0.0.1:8089/controlplane/slot",
                TrafficEndpointField => "must be the http:// URL of the loopback-only location that reports traffic, e.g. http://127.0.0.1:8089/controlplane/traffic",
                _ => "is required: an absolute http:// or https:// URL such as http://127.0.0.1:8088/",
            }));
        return null;
    }
}
