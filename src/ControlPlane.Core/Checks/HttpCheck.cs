using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Checks;

/// <summary>An HTTP probe run against a slot's own endpoint: before approval (the standby) and while monitoring (the new live slot).</summary>
public sealed record HttpCheck
{
    public string Name { get; init; } = "http";
    public string Path { get; init; } = "/";
    public int ExpectedStatus { get; init; } = 200;
    public int TimeoutSeconds { get; init; } = 5;

    /// <summary>Further attempts after a failed one before the check counts as failed.</summary>
    public int Retries { get; init; } = 2;

    public IEnumerable<SettingsError> Validate(string prefix)
    {
        if (string.IsNullOrWhiteSpace(Name) || Name.Length > 64)
            yield return new($"{prefix}.name", "is required (at most 64 characters)");
        if (string.IsNullOrEmpty(Path) || !Path.StartsWith('/') || Path.StartsWith("//") || Path.Contains(".."))
            yield return new($"{prefix}.path", "must be an absolute path such as /healthz");
        if (ExpectedStatus is < 100 or > 599)
            yield return new($"{prefix}.expectedStatus", "must be an HTTP status code (100-599)");
        if (TimeoutSeconds is < 1 or > 120)
            yield return new($"{prefix}.timeoutSeconds", "must be between 1 and 120");
        if (Retries is < 0 or > 10)
            yield return new($"{prefix}.retries", "must be between 0 and 10");
    }
}

public sealed record CheckResult(string Name, bool Passed, string Message);
