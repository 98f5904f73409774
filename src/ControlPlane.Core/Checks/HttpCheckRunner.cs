using ControlPlane.Core.Deployments;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Checks;

/// <summary>Runs an HTTP check against one slot's own endpoint (or the check's absolute url): the status, then any JSON assertions.</summary>
public sealed class HttpCheckRunner(IHttpClientFactory httpClientFactory, ILogger<HttpCheckRunner> logger)
{
    public const string HttpClientName = "checks";

    /// <summary>A body larger than this is not read for assertions (a health answer is small; this bounds a hostile one).</summary>
    private const int MaxBodyBytes = 1024 * 1024;

    public Task<CheckResult> RunAsync(HttpCheck check, Uri slotEndpoint, CancellationToken cancellationToken) =>
        RunAsync(check, new CheckTarget(slotEndpoint, "", default, ""), cancellationToken);

    public async Task<CheckResult> RunAsync(HttpCheck check, CheckTarget target, CancellationToken cancellationToken)
    {
        Uri url;
        string shown;
        if (check.Url is { } template)
        {
            url = new Uri(CheckPlaceholders.Fill(template, target.Slot.Name(), target.Version, target.Application, Uri.EscapeDataString));
            shown = url.GetLeftPart(UriPartial.Path);
        }
        else
        {
            url = new Uri(target.SlotEndpoint, check.Path);
            shown = check.Path;
        }
        var client = httpClientFactory.CreateClient(HttpClientName);
        string last = "";
        var numbers = new List<CheckValue>();
        for (var attempt = 0; attempt <= check.Retries; attempt++)
        {
            if (attempt > 0) await Task.Delay(TimeSpan.FromMilliseconds(300 * attempt), cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(check.TimeoutSeconds));
            var watch = Stopwatch.StartNew();
            try
            {
                using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                numbers.Clear();
                if ((int)response.StatusCode != check.ExpectedStatus)
                    last = $"GET {shown} answered {(int)response.StatusCode}, expected {check.ExpectedStatus}";
                else if (check.Json is not { Count: > 0 } assertions)
                    return new(check.Name, true, $"GET {shown} → {(int)response.StatusCode} in {watch.ElapsedMilliseconds} ms")
                        { Values = [new("response ms", watch.ElapsedMilliseconds)] };
                else
                {
                    var body = await ReadBoundedAsync(response, timeout.Token);
                    var seen = "";
                    var failure = body is null
                        ? $"the body is larger than {MaxBodyBytes / 1024} KiB, so {assertions[0].Path} cannot be judged"
                        : JsonAssertions.Evaluate(body, assertions, out seen, numbers);
                    if (failure is null)
                        return new(check.Name, true, $"GET {shown} → {(int)response.StatusCode} in {watch.ElapsedMilliseconds} ms; {seen}") { Values = [.. numbers] };
                    last = $"GET {shown}: {failure}";
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = $"GET {shown} did not answer within {check.TimeoutSeconds} s";
            }
            catch (HttpRequestException ex)
            {
                last = $"GET {shown} failed: {ex.Message}";
            }
            logger.LogDebug("Check {Check} attempt {Attempt} on {Url} failed: {Reason}", check.Name, attempt + 1, shown, last);
        }
        var message = check.Retries > 0 ? $"{last} (after {check.Retries + 1} attempts)" : last;
        return new(check.Name, false, message) { Values = [.. numbers] };
    }

    private static async Task<string?> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > MaxBodyBytes) return null;
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes) return null;
            buffer.Write(chunk, 0, read);
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
