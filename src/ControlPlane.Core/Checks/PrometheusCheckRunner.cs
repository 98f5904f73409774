using ControlPlane.Core.Deployments;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Checks;

/// <summary>Where Prometheus checks ask when the check names no server of its own (<c>ControlPlane:Prometheus:Url</c>).</summary>
public sealed class PrometheusOptions
{
    public const string Section = "ControlPlane:Prometheus";
    public string? Url { get; set; }
}

/// <summary>
/// Runs a Prometheus check: an instant query (<c>/api/v1/query</c>) whose every sample must lie within min/max. No data, NaN,
/// an error answer or an unreachable server is inconclusive — never a pass.
/// </summary>
public sealed class PrometheusCheckRunner(IHttpClientFactory httpClientFactory, IOptions<PrometheusOptions> options, ILogger<PrometheusCheckRunner> logger)
{
    private static readonly TimeSpan RemeasureAfter = TimeSpan.FromSeconds(1);

    public async Task<CheckResult> RunAsync(HttpCheck check, CheckTarget target, CancellationToken cancellationToken)
    {
        var server = check.Url ?? options.Value.Url;
        if (string.IsNullOrWhiteSpace(server))
            return new(check.Name, CheckOutcome.Inconclusive, "no Prometheus to ask: set ControlPlane:Prometheus:Url or the check's url");
        var query = CheckPlaceholders.Fill(check.Query ?? "", target.Slot.Name(), target.Version, target.Application, CheckPlaceholders.PromQlString);
        var baseUrl = CheckPlaceholders.Fill(server, target.Slot.Name(), target.Version, target.Application, Uri.EscapeDataString).TrimEnd('/');
        var url = new Uri($"{baseUrl}/api/v1/query?query={Uri.EscapeDataString(query)}");
        CheckResult result = null!;
        for (var measurement = 0; measurement <= check.FailureLimit; measurement++)
        {
            if (measurement > 0) await Task.Delay(RemeasureAfter, cancellationToken);
            result = await MeasureAsync(check, url, cancellationToken);
            if (!result.Failed) return result;
            logger.LogDebug("Prometheus check {Check} measurement {N} failed: {Reason}", check.Name, measurement + 1, result.Message);
        }
        return check.FailureLimit > 0 ? result with { Message = $"{result.Message} ({check.FailureLimit + 1} measurements failed)" } : result;
    }

    private async Task<CheckResult> MeasureAsync(HttpCheck check, Uri url, CancellationToken cancellationToken)
    {
        var client = httpClientFactory.CreateClient(HttpCheckRunner.HttpClientName);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(check.TimeoutSeconds));
        string body;
        int status;
        try
        {
            using var response = await client.GetAsync(url, timeout.Token);
            status = (int)response.StatusCode;
            body = await response.Content.ReadAsStringAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Inconclusive(check, $"Prometheus did not answer within {check.TimeoutSeconds} s");
        }
        catch (HttpRequestException ex)
        {
            return Inconclusive(check, $"Prometheus could not be asked: {ex.Message}");
        }
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.TryGetProperty("status", out var s) && s.GetString() != "success" || status >= 400)
            {
                var error = root.TryGetProperty("error", out var e) ? e.GetString() : $"HTTP {status}";
                return Inconclusive(check, $"Prometheus refused the query: {error}");
            }
            var data = root.GetProperty("data");
            var type = data.GetProperty("resultType").GetString();
            var samples = new List<(string Series, double Value)>();
            if (type == "scalar") samples.Add(("", Sample(data.GetProperty("result"))));
            else if (type == "vector")
            {
                foreach (var series in data.GetProperty("result").EnumerateArray())
                    samples.Add((Labels(series.GetProperty("metric")), Sample(series.GetProperty("value"))));
            }
            else return Inconclusive(check, $"the query returned a {type}; it must return an instant vector or a scalar");
            if (samples.Count == 0) return Inconclusive(check, $"no data: the query returned no series ({Bound(check)} cannot be judged)");
            // NaN is what a ratio over no traffic (0/0) gives: no evidence either way.
            if (samples.FindIndex(x => !double.IsFinite(x.Value)) is >= 0 and var nan)
                return Inconclusive(check, $"the query returned {Show(samples[nan].Value)}{samples[nan].Series} ({Bound(check)} cannot be judged)");
            IReadOnlyList<CheckValue> values = [.. samples.Take(8).Select(x => new CheckValue(x.Series.Length == 0 ? "value" : x.Series.TrimStart()[4..], x.Value))];
            foreach (var (series, value) in samples)
            {
                if (check.Min is { } min && value < min) return new(check.Name, CheckOutcome.Failed, $"the query returned {Show(value)}{series}, needs ≥ {Show(min)}") { Values = values };
                if (check.Max is { } max && value > max) return new(check.Name, CheckOutcome.Failed, $"the query returned {Show(value)}{series}, needs ≤ {Show(max)}") { Values = values };
            }
            return new(check.Name, CheckOutcome.Passed, $"the query returned {string.Join(", ", samples.Select(x => Show(x.Value) + x.Series))} ({Bound(check)})") { Values = values };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return Inconclusive(check, $"Prometheus answered HTTP {status} with something other than a query result");
        }
    }

    private static CheckResult Inconclusive(HttpCheck check, string why) => new(check.Name, CheckOutcome.Inconclusive, why);

    private static double Sample(JsonElement pair) =>
        double.Parse(pair[1].GetString() ?? throw new FormatException(), NumberStyles.Float, CultureInfo.InvariantCulture);

    private static string Labels(JsonElement metric)
    {
        var labels = metric.EnumerateObject().Where(p => p.Name != "__name__").Select(p => $"{p.Name}=\"{p.Value.GetString()}\"").ToList();
        return labels.Count == 0 ? "" : $" for {{{string.Join(",", labels)}}}";
    }

    private static string Bound(HttpCheck check) =>
        check.Min is { } min && check.Max is { } max ? $"needs between {Show(min)} and {Show(max)}"
        : check.Min is { } lo ? $"needs ≥ {Show(lo)}" : $"needs ≤ {Show(check.Max ?? 0)}";

    private static string Show(double value) =>
        double.IsNaN(value) ? "NaN" : double.IsInfinity(value) ? (value > 0 ? "+Inf" : "-Inf") : value.ToString("0.######", CultureInfo.InvariantCulture);
}
