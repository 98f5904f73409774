using System.Text.Json;

namespace ControlPlane.IntegrationTests.Routing;

/// <summary>
/// Keep-alive HTTP clients hammering a router's public URL while a test switches it back and forth. Counts every answer
/// by slot and every failure (non-2xx, unexpected body, connection error); bounded by the test, stopped by a flag.
/// </summary>
public sealed class KeepAliveLoad
{
    private readonly HttpClient _client;
    private readonly Task[] _workers;
    private readonly Func<BackendAnswer, bool> _expected;
    private long _total, _failures, _blue, _green;
    private string? _firstFailure;
    private bool _stopping;

    private KeepAliveLoad(Uri url, int workers, Func<BackendAnswer, bool>? expected, CancellationToken ct)
    {
        _expected = expected ?? (answer => answer is { Version: "1.0.0", Slot: "blue" } or { Version: "2.0.0", Slot: "green" });
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = workers });
        _workers = [.. Enumerable.Range(0, workers).Select(_ => Task.Run(() => WorkAsync(url, ct), ct))];
    }

    public long Total => Interlocked.Read(ref _total);
    public long Failures => Interlocked.Read(ref _failures);

    /// <param name="expected">Which answers count as served (default: 1.0.0 from blue or 2.0.0 from green); anything else is a failure.</param>
    public static async Task<KeepAliveLoad> StartAsync(Uri url, int workers, CancellationToken ct, Func<BackendAnswer, bool>? expected = null)
    {
        var load = new KeepAliveLoad(url, workers, expected, ct);
        // Let every worker get going before the first switch (bounded: at most ~5 s).
        for (var i = 0; i < 100 && load.Total < 100; i++) await Task.Delay(50, ct);
        return load;
    }

    public async Task StopAsync()
    {
        Volatile.Write(ref _stopping, true);
        await Task.WhenAll(_workers);
        _client.Dispose();
    }

    /// <summary>Zero failures, a meaningful number of requests, and both slots answered.</summary>
    public void AssertNoFailedRequest(string? diagnostics = null)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(ToString());
        Assert.True(_failures == 0, $"{_failures} of {_total} requests failed; first: {_firstFailure}\n{diagnostics}");
        Assert.True(_total >= 500, $"only {_total} requests were made: the load was not meaningful");
        Assert.True(_blue > 0 && _green > 0, $"blue answered {_blue}, green answered {_green}: both must have served");
    }

    public override string ToString() => $"load: {_total} requests, {_failures} failed, {_blue} from blue, {_green} from green";

    private async Task WorkAsync(Uri url, CancellationToken ct)
    {
        // Stop by flag, not by cancelling: a cancelled request would be an exception we would have to excuse.
        while (!Volatile.Read(ref _stopping))
        {
            try
            {
                using var response = await _client.GetAsync(url, ct);
                var body = await response.Content.ReadAsStringAsync(ct);
                var answer = response.IsSuccessStatusCode ? JsonSerializer.Deserialize<BackendAnswer>(body, JsonSerializerOptions.Web) : null;
                if (answer is not null && _expected(answer) && answer.Slot == "blue") Interlocked.Increment(ref _blue);
                else if (answer is not null && _expected(answer) && answer.Slot == "green") Interlocked.Increment(ref _green);
                else Fail($"HTTP {(int)response.StatusCode}: {body}");
            }
            catch (Exception ex) when (ex is HttpRequestException or JsonException or IOException)
            {
                Fail(ex.ToString());
            }
            Interlocked.Increment(ref _total);
        }
    }

    private void Fail(string what)
    {
        Interlocked.Increment(ref _failures);
        Interlocked.CompareExchange(ref _firstFailure, what, null);
    }
}
