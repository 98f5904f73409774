using System.Text.Json;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// Settings of the <c>process</c> deployer. <c>{port}</c>, <c>{version}</c>, <c>{slot}</c> and <c>{app}</c> are substituted
/// in <see cref="Arguments"/> and <see cref="Environment"/> values.
/// </summary>
public sealed record ProcessDeployerSettings
{
    public string Command { get; init; } = "";
    public IReadOnlyList<string> Arguments { get; init; } = [];
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    public string? WorkingDirectory { get; init; }
    public int BluePort { get; init; }
    public int GreenPort { get; init; }
    public string HealthPath { get; init; } = "/healthz";
    public int StartTimeoutSeconds { get; init; } = 30;

    public int PortOf(Slot slot) => slot == Slot.Blue ? BluePort : GreenPort;

    public TimeSpan StartTimeout => TimeSpan.FromSeconds(StartTimeoutSeconds);

    public static string Substitute(string template, string app, Slot slot, string version, int port) =>
        template
            .Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{version}", version, StringComparison.Ordinal)
            .Replace("{slot}", slot.Name(), StringComparison.Ordinal)
            .Replace("{app}", app, StringComparison.Ordinal);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static readonly HashSet<string> KnownFields = new(StringComparer.OrdinalIgnoreCase)
    {
        "command", "arguments", "environment", "workingDirectory", "bluePort", "greenPort", "healthPath", "startTimeoutSeconds",
    };

    /// <summary>Parses and validates; <paramref name="settings"/> is null exactly when errors are returned.</summary>
    public static IReadOnlyList<SettingsError> TryParse(JsonElement json, out ProcessDeployerSettings? settings)
    {
        settings = null;
        if (json.ValueKind != JsonValueKind.Object)
            return [new SettingsError("", "must be a JSON object")];

        var errors = new List<SettingsError>();
        foreach (var property in json.EnumerateObject())
        {
            if (!KnownFields.Contains(property.Name))
                errors.Add(new SettingsError(property.Name, "is not a setting of the process deployer"));
        }

        ProcessDeployerSettings? parsed;
        try
        {
            parsed = json.Deserialize<ProcessDeployerSettings>(JsonOptions);
        }
        catch (JsonException e)
        {
            // Path is like "$.bluePort" or "$.arguments[2]".
            var field = e.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : "";
            errors.Add(new SettingsError(field, "has the wrong type"));
            return errors;
        }
        if (parsed is null)
            return [new SettingsError("", "must be a JSON object")];

        // JSON nulls arrive as nulls despite the annotations.
        parsed = parsed with
        {
            Arguments = parsed.Arguments ?? [],
            Environment = parsed.Environment ?? new Dictionary<string, string>(),
            HealthPath = parsed.HealthPath ?? "",
            Command = parsed.Command ?? "",
        };
        errors.AddRange(parsed.Validate());
        if (errors.Count == 0)
            settings = parsed;
        return errors;
    }

    public IReadOnlyList<SettingsError> Validate()
    {
        var errors = new List<SettingsError>();
        if (string.IsNullOrWhiteSpace(Command))
            errors.Add(new SettingsError("command", "is required"));
        for (var i = 0; i < Arguments.Count; i++)
        {
            if (Arguments[i] is null)
                errors.Add(new SettingsError($"arguments[{i}]", "must be a string"));
        }
        foreach (var (name, value) in Environment)
        {
            if (string.IsNullOrEmpty(name) || name.Contains('='))
                errors.Add(new SettingsError("environment", $"'{name}' is not a valid variable name"));
            else if (value is null)
                errors.Add(new SettingsError($"environment.{name}", "must be a string"));
        }
        if (BluePort is < 1 or > 65535)
            errors.Add(new SettingsError("bluePort", "is required and must be between 1 and 65535"));
        if (GreenPort is < 1 or > 65535)
            errors.Add(new SettingsError("greenPort", "is required and must be between 1 and 65535"));
        else if (GreenPort == BluePort)
            errors.Add(new SettingsError("greenPort", "must differ from bluePort"));
        if (string.IsNullOrEmpty(HealthPath) || !HealthPath.StartsWith('/'))
            errors.Add(new SettingsError("healthPath", "must start with '/'"));
        if (StartTimeoutSeconds is < 1 or > 600)
            errors.Add(new SettingsError("startTimeoutSeconds", "must be between 1 and 600"));
        return errors;
    }
}
