namespace ControlPlane.Core.Checks;

/// <summary>Fills <c>{slot}</c>, <c>{version}</c> and <c>{application}</c> in a check's url or query, each value escaped for where it goes.</summary>
public static class CheckPlaceholders
{
    public static string Fill(string template, string slot, string version, string application, Func<string, string> escape) =>
        template.Replace("{slot}", escape(slot), StringComparison.Ordinal)
            .Replace("{version}", escape(version), StringComparison.Ordinal)
            .Replace("{application}", escape(application), StringComparison.Ordinal);

    /// <summary>For the inside of a PromQL double-quoted string (label matchers): backslash and quote escaped.</summary>
    public static string PromQlString(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
