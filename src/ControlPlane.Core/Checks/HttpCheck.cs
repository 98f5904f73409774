using System.Text.Json;
using System.Text.Json.Serialization;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Checks;

/// <summary>
/// One check of an application, run before approval (against the standby) and while monitoring (against the new live slot).
/// <see cref="Kind"/> picks what is asked: <c>http</c> (the default: a slot's own endpoint or an absolute url, its status and
/// optionally JSON body assertions) or <c>prometheus</c> (a PromQL query whose value must lie within min/max). The type keeps
/// its historical name; one flat record keeps the registration body as the issue describes it and lets the strict serializer
/// refuse unknown fields; <see cref="Validate"/> refuses the fields that do not belong to the chosen kind.
/// </summary>
public sealed record HttpCheck
{
    public const string HttpKind = "http";
    public const string PrometheusKind = "prometheus";
    public const string TrafficKind = "traffic";
    public static readonly IReadOnlyList<string> Kinds = [HttpKind, PrometheusKind, TrafficKind];

    public string Kind { get; init; } = HttpKind;
    public string Name { get; init; } = "http";
    public string Path { get; init; } = "/";

    /// <summary>
    /// http: an absolute URL asked instead of the slot's <see cref="Path"/> (a downstream dependency); prometheus: the
    /// Prometheus server, instead of <c>ControlPlane:Prometheus:Url</c>. <c>{slot}</c>, <c>{version}</c>, <c>{application}</c> are filled in.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Url { get; init; }

    public int ExpectedStatus { get; init; } = 200;
    public int TimeoutSeconds { get; init; } = 5;

    /// <summary>Further attempts after a failed one before the check counts as failed.</summary>
    public int Retries { get; init; } = 2;

    /// <summary>http: assertions on the JSON body, all of which must hold.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<JsonAssertion>? Json { get; init; }

    /// <summary>prometheus: PromQL with <c>{slot}</c>, <c>{version}</c>, <c>{application}</c> placeholders.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Query { get; init; }

    /// <summary>prometheus: bounds every returned sample must lie within.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Min { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Max { get; init; }

    /// <summary>prometheus: failing measurements tolerated in one evaluation (re-measured a second apart) before the check fails.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int FailureLimit { get; init; }

    /// <summary>traffic: the highest share of 5xx answers among the new live slot's real requests since the switch.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? MaxErrorRate { get; init; }

    /// <summary>traffic: the highest p99 latency in milliseconds (read from the router's histogram: an upper estimate).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? MaxP99Ms { get; init; }

    /// <summary>traffic: fewer real requests since the switch than this is inconclusive (default 20).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? MinRequests { get; init; }

    /// <summary>traffic: maxErrorRate bounds the increase over the previous slot's rate before the switch, not the rate itself.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool RelativeToPrevious { get; init; }

    public IEnumerable<SettingsError> Validate(string prefix)
    {
        if (!Kinds.Contains(Kind))
        {
            yield return new($"{prefix}.kind", $"must be one of: {string.Join(", ", Kinds)}");
            yield break;
        }
        if (string.IsNullOrWhiteSpace(Name) || Name.Length > 64)
            yield return new($"{prefix}.name", "is required (at most 64 characters)");
        if (Kind == HttpKind)
        {
            if (string.IsNullOrEmpty(Path) || !Path.StartsWith('/') || Path.StartsWith("//") || Path.Contains(".."))
                yield return new($"{prefix}.path", "must be an absolute path such as /healthz");
            else if (Url is not null && Path != "/")
                yield return new($"{prefix}.path", "give either path (on the slot) or url (anywhere), not both");
            if (ExpectedStatus is < 100 or > 599)
                yield return new($"{prefix}.expectedStatus", "must be an HTTP status code (100-599)");
        }
        if (TimeoutSeconds is < 1 or > 120)
            yield return new($"{prefix}.timeoutSeconds", "must be between 1 and 120");
        if (Url is not null && UrlError(Url) is { } urlError)
            yield return new($"{prefix}.url", urlError);
        var errors = Kind switch { PrometheusKind => ValidatePrometheus(prefix), TrafficKind => ValidateTraffic(prefix), _ => ValidateHttp(prefix) };
        foreach (var error in errors) yield return error;
        if (Kind != TrafficKind)
        {
            foreach (var (field, given) in new[] { ("maxErrorRate", MaxErrorRate is not null), ("maxP99Ms", MaxP99Ms is not null), ("minRequests", MinRequests is not null), ("relativeToPrevious", RelativeToPrevious) })
                if (given) yield return new($"{prefix}.{field}", $"belongs to traffic checks; this check's kind is {Kind}");
        }
    }

    private IEnumerable<SettingsError> ValidateTraffic(string prefix)
    {
        if (MaxErrorRate is null && MaxP99Ms is null)
            yield return new($"{prefix}.maxErrorRate", "give maxErrorRate, maxP99Ms or both");
        if (MaxErrorRate is < 0 or > 1 || MaxErrorRate is { } rate && !double.IsFinite(rate))
            yield return new($"{prefix}.maxErrorRate", "must be a share between 0 and 1 (0.01 = 1%)");
        if (MaxP99Ms is <= 0 or > 600000 || MaxP99Ms is { } p99 && !double.IsFinite(p99))
            yield return new($"{prefix}.maxP99Ms", "must be between 0 and 600000 milliseconds");
        if (MinRequests is < 1 or > 1000000)
            yield return new($"{prefix}.minRequests", "must be between 1 and 1000000");
        if (RelativeToPrevious && MaxErrorRate is null)
            yield return new($"{prefix}.relativeToPrevious", "compares the error rate: give maxErrorRate too");
        if (Path != "/") yield return new($"{prefix}.path", "belongs to http checks; a traffic check judges the router's measurement of real requests");
        if (Url is not null) yield return new($"{prefix}.url", "belongs to http and prometheus checks");
        if (Json is not null) yield return new($"{prefix}.json", "belongs to http checks");
        if (Query is not null) yield return new($"{prefix}.query", "belongs to prometheus checks");
        if (Min is not null) yield return new($"{prefix}.min", "belongs to prometheus checks; a traffic check takes maxErrorRate and maxP99Ms");
        if (Max is not null) yield return new($"{prefix}.max", "belongs to prometheus checks; a traffic check takes maxErrorRate and maxP99Ms");
        if (ExpectedStatus != 200) yield return new($"{prefix}.expectedStatus", "belongs to http checks");
        if (Retries != 2) yield return new($"{prefix}.retries", "belongs to http checks");
        if (FailureLimit != 0) yield return new($"{prefix}.failureLimit", "belongs to prometheus checks");
    }

    private IEnumerable<SettingsError> ValidateHttp(string prefix)
    {
        if (Retries is < 0 or > 10)
            yield return new($"{prefix}.retries", "must be between 0 and 10");
        if (Json is { Count: > 20 }) yield return new($"{prefix}.json", "at most 20 assertions");
        for (var i = 0; i < (Json?.Count ?? 0); i++)
        {
            if (Json![i] is null) yield return new($"{prefix}.json[{i}]", "must be an assertion object");
            else foreach (var error in Json[i].Validate($"{prefix}.json[{i}]")) yield return error;
        }
        if (Query is not null) yield return new($"{prefix}.query", "belongs to prometheus checks; this check's kind is http");
        if (Min is not null) yield return new($"{prefix}.min", "belongs to prometheus checks; bounds on an http check go in json[].min");
        if (Max is not null) yield return new($"{prefix}.max", "belongs to prometheus checks; bounds on an http check go in json[].max");
        if (FailureLimit != 0) yield return new($"{prefix}.failureLimit", "belongs to prometheus checks; http checks use retries");
    }

    private IEnumerable<SettingsError> ValidatePrometheus(string prefix)
    {
        if (string.IsNullOrWhiteSpace(Query))
            yield return new($"{prefix}.query", "is required: a PromQL expression (placeholders {slot}, {version}, {application})");
        else if (Query.Length > 2000)
            yield return new($"{prefix}.query", "at most 2000 characters");
        if (Min is null && Max is null)
            yield return new($"{prefix}.min", "give min, max or both: the bounds the query's value must lie within");
        if (Min is { } min && !double.IsFinite(min)) yield return new($"{prefix}.min", "must be a finite number");
        if (Max is { } max && !double.IsFinite(max)) yield return new($"{prefix}.max", "must be a finite number");
        if (Min > Max) yield return new($"{prefix}.min", $"must not be greater than max ({Max})");
        if (FailureLimit is < 0 or > 10) yield return new($"{prefix}.failureLimit", "must be between 0 and 10");
        if (Path != "/") yield return new($"{prefix}.path", "belongs to http checks; a prometheus check takes query (and url for its server)");
        if (Json is not null) yield return new($"{prefix}.json", "belongs to http checks");
        if (ExpectedStatus != 200) yield return new($"{prefix}.expectedStatus", "belongs to http checks");
        if (Retries != 2) yield return new($"{prefix}.retries", "belongs to http checks; prometheus checks use failureLimit");
    }

    private static string? UrlError(string url)
    {
        var probe = CheckPlaceholders.Fill(url, "blue", "1.0.0", "app", Uri.EscapeDataString);
        if (!Uri.TryCreate(probe, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
            return "must be an absolute http:// or https:// URL (placeholders {slot}, {version}, {application} allowed)";
        if (!string.IsNullOrEmpty(uri.UserInfo)) return "must not carry credentials";
        return url.Length > 2000 ? "at most 2000 characters" : null;
    }
}

/// <summary>One condition on a JSON body: the value at <see cref="Path"/> equals a value, or lies within min/max.</summary>
public sealed record JsonAssertion
{
    public string Path { get; init; } = "";

    [JsonPropertyName("equals"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? ExpectedValue { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Min { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Max { get; init; }

    public IEnumerable<SettingsError> Validate(string prefix)
    {
        if (JsonPathSubset.ParseError(Path) is { } pathError) yield return new($"{prefix}.path", pathError);
        var hasEquals = ExpectedValue is { ValueKind: not JsonValueKind.Undefined };
        if (hasEquals && (Min is not null || Max is not null))
            yield return new($"{prefix}.equals", "give equals, or min/max, not both");
        else if (!hasEquals && Min is null && Max is null)
            yield return new($"{prefix}.equals", "give equals, min or max");
        if (hasEquals && ExpectedValue!.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
            yield return new($"{prefix}.equals", "must be a string, number, true, false or null");
        if (Min is { } min && !double.IsFinite(min)) yield return new($"{prefix}.min", "must be a finite number");
        if (Max is { } max && !double.IsFinite(max)) yield return new($"{prefix}.max", "must be a finite number");
        if (Min > Max) yield return new($"{prefix}.min", $"must not be greater than max ({Max})");
    }
}

public enum CheckOutcome { Passed, Failed, Inconclusive }

/// <summary>
/// What one check found. <see cref="Inconclusive"/> means no evidence either way (no data, the metrics source failed): never a
/// pass — before the switch it holds the release for a person, while monitoring it is reported and watching goes on.
/// </summary>
public sealed record CheckResult(string Name, CheckOutcome Outcome, string Message)
{
    public CheckResult(string name, bool passed, string message) : this(name, passed ? CheckOutcome.Passed : CheckOutcome.Failed, message) { }

    public bool Passed => Outcome == CheckOutcome.Passed;
    public bool Failed => Outcome == CheckOutcome.Failed;
    public bool Inconclusive => Outcome == CheckOutcome.Inconclusive;

    /// <summary>The numbers the check read (a JSON value, a Prometheus sample, an error rate), charted on the release page.</summary>
    public IReadOnlyList<CheckValue> Values { get; init; } = [];
}

/// <summary>One number a check measured: what it is (<c>$.hitRatio</c>, <c>error rate</c>, <c>p99 ms</c>) and its value.</summary>
public sealed record CheckValue(string Name, double Value);
