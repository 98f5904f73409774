using System.Text.Json.Serialization;

namespace ControlPlane.Core.Hooks;

/// <summary>
/// One thing ControlPlane runs at a point of a release: an HTTP call (<c>http</c>), a program on the runtime host
/// (<c>command</c>), a Kubernetes Job in the namespace and cluster of the application's <c>kubernetes</c> deployer
/// (<c>kubernetesJob</c>), or — only as a release's <c>schema.expand</c>/<c>contract</c> — a SQL script (<c>sql</c>) against the
/// application's named schema database. Bound from JSON like checks and policies (unknown fields refused by the serializer);
/// fields that belong to another kind are refused by <see cref="Validate"/>.
/// </summary>
public sealed record LifecycleHook
{
    public string? Kind { get; init; }

    // http
    public string? Url { get; init; }
    public int? ExpectedStatus { get; init; }

    // command
    public List<string>? Command { get; init; }
    public string? WorkingDirectory { get; init; }
    public Dictionary<string, string>? Env { get; init; }

    // sql
    public string? Script { get; init; }

    // kubernetesJob (command and env too): the container image, {version} substituted, and an optional service account
    public string? Image { get; init; }
    public string? ServiceAccountName { get; init; }

    public int? TimeoutSeconds { get; init; }

    /// <summary>Safe to run again after ControlPlane died while it ran; otherwise such a run waits for a person.</summary>
    public bool Idempotent { get; init; }

    public const int MaxTimeoutSeconds = 3600;
    public const int MaxScriptLength = 256 * 1024;

    [JsonIgnore]
    public TimeSpan Timeout => TimeSpan.FromSeconds(TimeoutSeconds ?? (Kind == HookKinds.Http ? 30 : 300));

    /// <summary>What the step shows before it runs.</summary>
    public string Describe() => Kind switch
    {
        HookKinds.Http => $"POST {Url}",
        HookKinds.Command => string.Join(' ', Command ?? []),
        HookKinds.Sql => $"SQL script ({SqlScript.Split(Script ?? "").Count} statement(s))",
        HookKinds.KubernetesJob => $"Kubernetes Job {Image}{(Command is { Count: > 0 } ? " " + string.Join(' ', Command) : "")}",
        _ => Kind ?? "",
    };

    /// <param name="deployerKind">The application's deployer: kubernetesJob hooks run with the <c>kubernetes</c> deployer's cluster and namespace.</param>
    public IEnumerable<SettingsError> Validate(string prefix, bool sqlAllowed, string? deployerKind)
    {
        string[] kinds = sqlAllowed
            ? [HookKinds.Http, HookKinds.Command, HookKinds.KubernetesJob, HookKinds.Sql]
            : [HookKinds.Http, HookKinds.Command, HookKinds.KubernetesJob];
        if (string.IsNullOrEmpty(Kind))
        {
            yield return new($"{prefix}.kind", $"is required: one of {string.Join(", ", kinds)}");
            yield break;
        }
        if (Kind == HookKinds.KubernetesJob && deployerKind != Deployers.KubernetesDeployer.KindName)
        {
            yield return new($"{prefix}.kind", $"kubernetesJob hooks run in the cluster and namespace of the kubernetes deployer; this application's deployer is '{deployerKind}'. " +
                                               "Use a command or http hook");
            yield break;
        }
        if (!kinds.Contains(Kind))
        {
            yield return new($"{prefix}.kind", Kind == HookKinds.Sql
                ? "sql scripts are only accepted as a release's schema.expand or schema.contract"
                : $"must be one of: {string.Join(", ", kinds)}");
            yield break;
        }
        if (TimeoutSeconds is < 1 or > MaxTimeoutSeconds)
            yield return new($"{prefix}.timeoutSeconds", $"must be between 1 and {MaxTimeoutSeconds}");

        foreach (var (field, given) in new (string, bool)[]
                 {
                     ("url", Url is not null), ("expectedStatus", ExpectedStatus is not null), ("command", Command is not null),
                     ("workingDirectory", WorkingDirectory is not null), ("env", Env is not null), ("script", Script is not null),
                     ("image", Image is not null), ("serviceAccountName", ServiceAccountName is not null),
                 })
        {
            if (given && !FieldsOf(Kind).Contains(field))
                yield return new($"{prefix}.{field}", $"is not a field of a {Kind} hook");
        }

        switch (Kind)
        {
            case HookKinds.Http:
                if (!Uri.TryCreate(Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(url.UserInfo))
                    yield return new($"{prefix}.url", "must be an absolute http:// or https:// URL (without user:password@)");
                if (ExpectedStatus is < 100 or > 599)
                    yield return new($"{prefix}.expectedStatus", "must be an HTTP status code (100-599)");
                break;
            case HookKinds.Command or HookKinds.KubernetesJob:
                if (Kind == HookKinds.KubernetesJob)
                {
                    if (string.IsNullOrWhiteSpace(Image) || Image.Any(char.IsWhiteSpace) || Image.Length > 512)
                        yield return new($"{prefix}.image", "is required: the container image to run, e.g. registry/shop-migrate:{version}");
                    if (ServiceAccountName is not null && !Kubernetes.KubernetesNames.IsDnsSubdomain(ServiceAccountName))
                        yield return new($"{prefix}.serviceAccountName", "must be a Kubernetes name: lower-case letters, digits, '-' and '.'");
                    if (Command is { Count: 0 })
                        yield return new($"{prefix}.command", "must not be empty: leave it out to run the image's own entrypoint");
                }
                else if (Command is not { Count: > 0 } || string.IsNullOrWhiteSpace(Command[0]))
                    yield return new($"{prefix}.command", "is required: the program and its arguments, e.g. [\"/usr/local/bin/migrate\", \"--up\"]");
                if (Command is { Count: > 0 } && (Kind == HookKinds.KubernetesJob || !string.IsNullOrWhiteSpace(Command[0])))
                {
                    for (var i = 0; i < Command.Count; i++)
                        if (Command[i] is null || Command[i].Contains('\0'))
                            yield return new($"{prefix}.command[{i}]", "must be a string without NUL characters");
                }
                if (WorkingDirectory is not null && (!Path.IsPathFullyQualified(WorkingDirectory) || WorkingDirectory.Contains('\0')))
                    yield return new($"{prefix}.workingDirectory", "must be an absolute path");
                foreach (var (name, value) in Env ?? [])
                {
                    if (string.IsNullOrEmpty(name) || name.Contains('=') || name.Contains('\0'))
                        yield return new($"{prefix}.env", $"'{name}' is not a valid variable name");
                    else if (value is null || value.Contains('\0'))
                        yield return new($"{prefix}.env.{name}", "must be a string without NUL characters");
                    else if (name.StartsWith(HookEnvironment.Prefix, StringComparison.Ordinal))
                        yield return new($"{prefix}.env.{name}", $"names starting with {HookEnvironment.Prefix} are set by ControlPlane");
                    else if (Kind == HookKinds.KubernetesJob && !KubernetesJobHook.IsEnvName(name))
                        yield return new($"{prefix}.env", $"'{name}' is not a valid container environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)");
                }
                break;
            case HookKinds.Sql:
                if (string.IsNullOrWhiteSpace(Script))
                    yield return new($"{prefix}.script", "is required: the SQL to run");
                else if (Script.Length > MaxScriptLength)
                    yield return new($"{prefix}.script", $"must be at most {MaxScriptLength / 1024} KiB");
                break;
        }
    }

    private static string[] FieldsOf(string kind) => kind switch
    {
        HookKinds.Http => ["url", "expectedStatus"],
        HookKinds.Command => ["command", "workingDirectory", "env"],
        HookKinds.Sql => ["script"],
        HookKinds.KubernetesJob => ["image", "command", "env", "serviceAccountName"],
        _ => [],
    };
}

public static class HookKinds
{
    public const string Http = "http";
    public const string Command = "command";
    public const string Sql = "sql";
    public const string KubernetesJob = "kubernetesJob";
}

/// <summary>
/// An application's lifecycle hooks (<c>hooks</c> in registration). <see cref="SchemaDatabase"/> names the database that a
/// release's SQL <c>schema</c> scripts run against: a connection string configured on ControlPlane's hosts as
/// <c>ControlPlane:SchemaDatabases:&lt;name&gt;</c> — never ControlPlane's own database role.
/// </summary>
public sealed record ApplicationHooks
{
    public LifecycleHook? PreDeploy { get; init; }
    public LifecycleHook? PreSwitch { get; init; }
    public LifecycleHook? PostSwitch { get; init; }
    public LifecycleHook? PostHold { get; init; }
    public string? SchemaDatabase { get; init; }

    [JsonIgnore]
    public bool IsEmpty => PreDeploy is null && PreSwitch is null && PostSwitch is null && PostHold is null && SchemaDatabase is null;

    public IEnumerable<SettingsError> Validate(string prefix, IReadOnlyCollection<string> configuredDatabases, string? deployerKind)
    {
        foreach (var (point, hook) in Points())
            foreach (var e in hook.Validate($"{prefix}.{point}", sqlAllowed: false, deployerKind)) yield return e;
        if (SchemaDatabase is not null && !configuredDatabases.Contains(SchemaDatabase))
            yield return new($"{prefix}.schemaDatabase", configuredDatabases.Count == 0
                ? "no schema database is configured on this ControlPlane (ControlPlane:SchemaDatabases:<name>)"
                : $"must be one of the configured schema databases: {string.Join(", ", configuredDatabases.Order())}");
    }

    public IEnumerable<(string Point, LifecycleHook Hook)> Points()
    {
        if (PreDeploy is not null) yield return (HookSteps.PreDeploy, PreDeploy);
        if (PreSwitch is not null) yield return (HookSteps.PreSwitch, PreSwitch);
        if (PostSwitch is not null) yield return (HookSteps.PostSwitch, PostSwitch);
        if (PostHold is not null) yield return (HookSteps.PostHold, PostHold);
    }
}

/// <summary>A release's expand/contract pair (<c>schema</c> when a release is created).</summary>
public sealed record ReleaseSchema
{
    public LifecycleHook? Expand { get; init; }
    public LifecycleHook? Contract { get; init; }

    /// <param name="deployerKind">Null when the application is not known yet (checked again when the release is planned).</param>
    public IEnumerable<SettingsError> Validate(string prefix, string? deployerKind = Deployers.KubernetesDeployer.KindName)
    {
        if (Expand is not null) foreach (var e in Expand.Validate($"{prefix}.expand", sqlAllowed: true, deployerKind)) yield return e;
        if (Contract is not null) foreach (var e in Contract.Validate($"{prefix}.contract", sqlAllowed: true, deployerKind)) yield return e;
    }
}

/// <summary>What a release runs besides deploying and switching, fixed when it is requested (a later edit does not change it).</summary>
public sealed record ReleaseLifecycle
{
    public ApplicationHooks? Hooks { get; init; }
    public ReleaseSchema? Schema { get; init; }

    public LifecycleHook? HookFor(string step) => step switch
    {
        HookSteps.PreDeploy => Hooks?.PreDeploy,
        HookSteps.PreSwitch => Hooks?.PreSwitch,
        HookSteps.PostSwitch => Hooks?.PostSwitch,
        HookSteps.PostHold => Hooks?.PostHold,
        HookSteps.Expand => Schema?.Expand,
        HookSteps.Contract => Schema?.Contract,
        _ => null,
    };

    [JsonIgnore]
    public IReadOnlyList<string> Steps => [.. HookSteps.All.Where(s => HookFor(s) is not null)];
}

/// <summary>The hook steps of a release, by when they run.</summary>
public static class HookSteps
{
    public const string PreDeploy = "preDeploy";
    public const string Expand = "expand";
    public const string PreSwitch = "preSwitch";
    public const string PostSwitch = "postSwitch";
    public const string Contract = "contract";
    public const string PostHold = "postHold";

    public static readonly IReadOnlyList<string> All = [PreDeploy, Expand, PreSwitch, PostSwitch, Contract, PostHold];

    /// <summary>Run before the deploy step (release still Queued).</summary>
    public static readonly IReadOnlyList<string> BeforeDeploy = [PreDeploy, Expand];

    /// <summary>Run once the previous version's slot is decommissioned (end of the hold window).</summary>
    public static readonly IReadOnlyList<string> AfterHold = [Contract, PostHold];

    /// <summary>The step each hook step is placed before in a release's timeline.</summary>
    public static string Before(string hookStep) => hookStep switch
    {
        PreDeploy or Expand => Deployments.StepNames.Deploy,
        PreSwitch => Deployments.StepNames.Switch,
        PostSwitch => Deployments.StepNames.Monitor,
        _ => "",
    };

    public static bool IsHookStep(string name) => All.Contains(name);
}
