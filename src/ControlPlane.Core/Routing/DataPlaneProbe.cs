using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Routing;

/// <summary>
/// Proves through a router's data plane that the expected version answers: GET <c>publicUrl + verifyPath</c> on a fresh
/// connection, retried with a small backoff until a deadline because some routers propagate a switch with lag.
/// Shared by every router kind for <see cref="ITrafficRouter.VerifyDataPlaneAsync"/>.
/// </summary>
public sealed class DataPlaneProbe : IDisposable
{
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MinAttemptTimeout = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxAttemptTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

    private readonly HttpClient httpClient;
    private readonly TimeProvider timeProvider;
    private readonly TimeSpan deadline;

    /// <param name="timeProvider">Clock for the deadline and backoff; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="deadline">How long to keep retrying; <see cref="DefaultDeadline"/> (5 s) when null.</param>
    /// <param name="handler">
    /// Transport; when null a <see cref="SocketsHttpHandler"/> that never reuses a connection, so a keep-alive connection
    /// pinned to the old backend by a connection-level router cannot make the answer lie.
    /// </param>
    public DataPlaneProbe(TimeProvider? timeProvider = null, TimeSpan? deadline = null, HttpMessageHandler? handler = null)
    {
        this.timeProvider = timeProvider ?? TimeProvider.System;
        this.deadline = deadline ?? DefaultDeadline;
        httpClient = new HttpClient(handler ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.Zero,
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = MaxAttemptTimeout,
        })
        {
            // Per-attempt timeouts are ours (linked to the deadline), not HttpClient's fixed 100 s.
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = 1024 * 1024,
        };
    }

    /// <summary>
    /// Succeeds only when the answer is 2xx and its body carries <paramref name="expectedVersion"/> (and, when the body is
    /// JSON with a <c>slot</c> property, that slot is <paramref name="expectedSlot"/>). The failure message says what was seen.
    /// </summary>
    public async Task<DataPlaneVerification> VerifyAsync(
        Uri publicUrl, string verifyPath, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        var url = new Uri(publicUrl.AbsoluteUri.TrimEnd('/') + "/" + verifyPath.TrimStart('/'));
        var expected = $"expected {expectedVersion} on {expectedSlot.Name()}";
        var started = timeProvider.GetTimestamp();
        var backoff = FirstBackoff;

        for (var attempt = 1; ; attempt++)
        {
            var remaining = deadline - timeProvider.GetElapsedTime(started);
            var attemptTimeout = remaining < MinAttemptTimeout ? MinAttemptTimeout : remaining > MaxAttemptTimeout ? MaxAttemptTimeout : remaining;
            var (verified, seen) = await AttemptAsync(url, expectedSlot, expectedVersion, attemptTimeout, cancellationToken);
            if (verified)
                return DataPlaneVerification.Ok($"public URL {url} answered {expectedVersion} from {expectedSlot.Name()}");

            var elapsed = timeProvider.GetElapsedTime(started);
            remaining = deadline - elapsed;
            if (remaining <= TimeSpan.Zero)
                return DataPlaneVerification.Fail(
                    $"public URL {url} {seen}, {expected} (gave up after {attempt} attempt{(attempt == 1 ? "" : "s")} in {elapsed.TotalSeconds:0.0} s)");

            await Task.Delay(backoff < remaining ? backoff : remaining, timeProvider, cancellationToken);
            backoff = backoff * 2 < MaxBackoff ? backoff * 2 : MaxBackoff;
        }
    }

    /// <summary>Marks ControlPlane's own probe, so an application (the demo) can tell it from real traffic.</summary>
    public const string ProbeHeader = "X-ControlPlane-Probe";

    /// <returns>Whether the answer is the expected one, and otherwise what was seen (e.g. "answered 1.0.0 from blue").</returns>
    private async Task<(bool Verified, string Seen)> AttemptAsync(
        Uri url, Slot expectedSlot, string expectedVersion, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var attemptCts = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, attemptCts.Token);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        // Also for injected handlers that do pool: never leave a connection behind for the next probe to reuse.
        request.Headers.ConnectionClose = true;
        // Marks the probe as ControlPlane's own, so an application (the demo) can tell it from real traffic.
        request.Headers.Add(ProbeHeader, "data-plane");
        try
        {
            using var response = await httpClient.SendAsync(request, linked.Token);
            var body = await response.Content.ReadAsStringAsync(linked.Token);
            if (!response.IsSuccessStatusCode)
                return (false, $"answered HTTP {(int)response.StatusCode} {response.ReasonPhrase} {Snippet(body)}".TrimEnd());
            return Judge(body, expectedSlot, expectedVersion);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (false, $"did not answer within {timeout.TotalSeconds:0.0} s");
        }
        catch (HttpRequestException ex)
        {
            return (false, Describe(ex));
        }
    }

    private static (bool Verified, string Seen) Judge(string body, Slot expectedSlot, string expectedVersion)
    {
        string? version = null, slot = null;
        var isJsonObject = false;
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                isJsonObject = true;
                version = StringProperty(document.RootElement, "version");
                slot = StringProperty(document.RootElement, "slot");
            }
        }
        catch (JsonException)
        {
            // Not JSON: fall back to "the body contains the version".
        }

        // A JSON version must match exactly: "2.0.0" is contained in "12.0.0".
        var versionOk = version is not null ? version == expectedVersion : body.Contains(expectedVersion, StringComparison.Ordinal);
        var slotOk = slot is null || (SlotExtensions.TryParse(slot, out var seenSlot) && seenSlot == expectedSlot);
        if (versionOk && slotOk)
            return (true, "");

        if (!isJsonObject || (version is null && slot is null))
            return (false, $"answered a body without {expectedVersion}: {Snippet(body)}");
        return (false, $"answered {version ?? "no version"} from {slot ?? "an unnamed slot"}");
    }

    private static string? StringProperty(JsonElement element, string name)
    {
        foreach (var property in element.EnumerateObject())
            if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
                return property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
        return null;
    }

    private static string Describe(HttpRequestException ex)
    {
        var socket = ex.InnerException as SocketException ?? ex.InnerException?.InnerException as SocketException;
        return socket?.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "did not answer: connection refused",
            SocketError.ConnectionReset => "did not answer: connection reset",
            SocketError.HostNotFound or SocketError.NoData => "did not answer: host not found",
            not null => $"did not answer: {socket.Message}",
            null => ex.StatusCode is HttpStatusCode code ? $"answered HTTP {(int)code}" : $"did not answer: {ex.Message}",
        };
    }

    private static string Snippet(string body)
    {
        var flat = string.Join(' ', body.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        if (flat.Length == 0) return "(empty body)";
        return "'" + (flat.Length > 120 ? flat[..120] + "…" : flat) + "'";
    }

    public void Dispose() => httpClient.Dispose();
}
