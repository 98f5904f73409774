using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Checks;

/// <summary>Runs an application's HTTP checks against one slot's own endpoint.</summary>
public sealed class HttpCheckRunner(IHttpClientFactory httpClientFactory, ILogger<HttpCheckRunner> logger)
{
    public const string HttpClientName = "checks";

    public async Task<IReadOnlyList<CheckResult>> RunAllAsync(IEnumerable<HttpCheck> checks, Uri slotEndpoint, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        foreach (var check in checks) results.Add(await RunAsync(check, slotEndpoint, cancellationToken));
        return results;
    }

    public async Task<CheckResult> RunAsync(HttpCheck check, Uri slotEndpoint, CancellationToken cancellationToken)
    {
        var url = new Uri(slotEndpoint, check.Path);
        var client = httpClientFactory.CreateClient(HttpClientName);
        string last = "";
        for (var attempt = 0; attempt <= check.Retries; attempt++)
        {
            if (attempt > 0) await Task.Delay(TimeSpan.FromMilliseconds(300 * attempt), cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(check.TimeoutSeconds));
            var watch = Stopwatch.StartNew();
            try
            {
                using var response = await client.GetAsync(url, timeout.Token);
                if ((int)response.StatusCode == check.ExpectedStatus)
                    return new(check.Name, true, $"GET {check.Path} → {(int)response.StatusCode} in {watch.ElapsedMilliseconds} ms");
                last = $"GET {check.Path} answered {(int)response.StatusCode}, expected {check.ExpectedStatus}";
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = $"GET {check.Path} did not answer within {check.TimeoutSeconds} s";
            }
            catch (HttpRequestException ex)
            {
                last = $"GET {check.Path} failed: {ex.Message}";
            }
            logger.LogDebug("Check {Check} attempt {Attempt} on {Url} failed: {Reason}", check.Name, attempt + 1, url, last);
        }
        var message = check.Retries > 0 ? $"{last} (after {check.Retries + 1} attempts)" : last;
        return new(check.Name, false, message);
    }
}
