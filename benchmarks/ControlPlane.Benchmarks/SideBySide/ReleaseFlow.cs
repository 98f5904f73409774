using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Core.Deployers;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace ControlPlane.Benchmarks.SideBySide;

/// <summary>One release cycle's timings: the server's own timestamps for created → AwaitingApproval, and the client's for the moves.</summary>
/// <param name="ProbeMs">The probe's own cost: one request of the same kind (a new connection through the router) timed just before the switch call, with nothing moving.</param>
/// <param name="DirectMs">The reference for it: one request on a new connection straight to the live slot's process (no router, nothing moving), 200 ms before the probe alone.</param>
/// <param name="ServedAtFirstTry">Whether the first request after the call's answer already got the wanted version (both moves); "returned → served" is then the probe's own round trip.</param>
/// <param name="CpuToAwaitingMs">ControlPlane's CPU time (user + system, 10 ms ticks) from the release's creation to AwaitingApproval, the harness's watching of it included (a GET per change notice).</param>
/// <param name="AloneMs">The same demo process started by hand just before this release (just after it in odd cycles), as the deployer starts it (<see cref="ReleaseFlow.DemoProcessStartAsync"/>).</param>
public sealed record CycleTiming(double CreatedToAwaitingMs, double DeployStepMs, double SwitchCallMs, double SwitchServedMs, double RollbackCallMs, double RollbackServedMs,
    double ProbeMs = double.NaN, bool ServedAtFirstTry = true, double AloneMs = double.NaN, double CpuToAwaitingMs = double.NaN, double DirectMs = double.NaN)
{
    /// <summary>created → AwaitingApproval minus the start by hand next to it: ControlPlane's own overhead in this release.</summary>
    public double OverheadMs => CreatedToAwaitingMs - AloneMs;
    public double DeployOverheadMs => DeployStepMs - AloneMs;
}

public sealed record FanOutResult(int Clients, double ConnectSeconds, long RssBefore, long RssAfter, IReadOnlyList<double> AllSeenMs, IReadOnlyList<double> FirstSeenMs,
    double CpuMsPerChange, double IdleCpuMsPerSecond);

public sealed record ReleaseFlowResult(IReadOnlyList<CycleTiming> Cycles, FanOutResult FanOut)
{
    public int Moves => Cycles.Count * 2;
}

/// <summary>
/// The release flow through ControlPlane's REST API on a real application (the demo app as slot processes, the embedded
/// router): created → AwaitingApproval against the demo process's own start, switch → served and rollback → served, and the
/// live hub (<c>/hubs/controlplane</c>) fanning a change out to 200 SignalR clients.
/// </summary>
public static class ReleaseFlow
{
    public const string Application = "bench-flow";

    /// <summary>
    /// How often the harness asks for a release's state while it waits for one when no change notice came (release-flow
    /// --state-poll-ms): as often as the CLI's <c>follow</c> does.
    /// </summary>
    public static TimeSpan StatePoll { get; set; } = TimeSpan.FromSeconds(2);

    public static async Task<ReleaseFlowResult> RunAsync(Uri baseUrl, HttpClient http, string token, int controlPlanePid, string work, bool quick, TextWriter log)
    {
        var cycles = await CyclesAsync(http, quick ? 3 : 25, log, work, controlPlanePid: controlPlanePid); // two moves each: 6 in quick mode, 50 in a full run
        var fanOut = await FanOutAsync(baseUrl, http, token, controlPlanePid, quick ? 5 : 20, log);
        return new ReleaseFlowResult(cycles, fanOut);
    }

    /// <summary>
    /// Registers the demo app and runs <paramref name="count"/> release cycles on it, each one paired with the same demo process
    /// started by hand (and stopped again) just before or just after it, so that its start is subtracted release by release rather
    /// than as a median taken apart.
    /// </summary>
    public static async Task<List<CycleTiming>> CyclesAsync(HttpClient http, int count, TextWriter log, string work, string? demo = null, int? controlPlanePid = null)
    {
        demo ??= Tools.Program("ControlPlane.DemoApp");
        var (publicUrl, liveSlotUrl) = await RegisterAsync(http, demo);
        await using var watch = await ReleaseWatch.StartAsync(http);
        using var probe = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(5) };
        var cycles = new List<CycleTiming>();
        // One release first, not counted: it pays the JIT of every path (ControlPlane's, the router's, the harness's), as
        // the data-plane targets get their warm-up. Its figures are shown in the log.
        for (var i = 0; i <= count; i++)
        {
            var version = $"2.0.{i}";
            // Before the release in even cycles, after it in odd ones: whatever the order favours (ControlPlane still busy after
            // the previous cycle, a start that warms the next) falls on both sides alike.
            var alone = i % 2 == 0 ? await DemoProcessStartAsync(work, demo, version) : double.NaN;
            var cycle = await CycleAsync(http, watch, probe, publicUrl, liveSlotUrl, version, controlPlanePid);
            if (i % 2 == 1) alone = await DemoProcessStartAsync(work, demo, version);
            cycle = cycle with { AloneMs = alone };
            if (i > 0) cycles.Add(cycle);
            else log.Write("  (warm-up, not counted)");
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  release {version}: created -> AwaitingApproval {cycle.CreatedToAwaitingMs:F0} ms (deploy step {cycle.DeployStepMs:F0} ms; the demo alone {(i % 2 == 0 ? "just before" : "just after")} {alone:F0} ms: " +
                $"overhead {cycle.OverheadMs:F0} ms, in the deploy step {cycle.DeployOverheadMs:F0}; ControlPlane's CPU meanwhile {cycle.CpuToAwaitingMs:F0} ms); switch call started -> served " +
                $"{cycle.SwitchCallMs + cycle.SwitchServedMs:F1} ms (call {cycle.SwitchCallMs:F0} ms, returned -> served {cycle.SwitchServedMs:F1}); rollback call started -> served " +
                $"{cycle.RollbackCallMs + cycle.RollbackServedMs:F1} ms (call {cycle.RollbackCallMs:F0} ms, returned -> served {cycle.RollbackServedMs:F1}); " +
                $"the probe alone {cycle.ProbeMs:F1} ms, straight to the slot {cycle.DirectMs:F1} ms{(cycle.ServedAtFirstTry ? "" : "; a move was not served at the first try")}"));
        }
        return cycles;
    }

    /// <summary>
    /// The demo app started by hand exactly as the process deployer starts it: the same launch (<see cref="DetachedProcess"/>: its own
    /// session, stdio on a log file, its PID file), the environment the deployer gives a child (<see cref="ChildProcessEnvironment"/>'s
    /// base and a launch id, not the harness's own environment), the same arguments for the same version and slot on a loopback port
    /// of its own. Time from the start to /healthz answering 200, which is what the deployer waits for (the demo answers 503 until it
    /// has warmed up: Readiness.cs in the demo app); polled every 5 ms. Stopped (and awaited) before returning.
    /// </summary>
    public static async Task<double> DemoProcessStartAsync(string work, string demo, string version, string slot = "green")
    {
        var url = new Uri($"http://127.0.0.1:{Tools.FreePort()}/");
        var directory = Directory.CreateDirectory(Path.Combine(work, "demo-alone")).FullName;
        var clock = Stopwatch.StartNew();
        var process = DetachedProcess.Start("dotnet", [demo, "--urls", url.AbsoluteUri.TrimEnd('/'), "--version", version, "--slot", slot, "--app", Application],
            workingDirectory: null, Path.Combine(directory, $"{slot}.log"), Path.Combine(directory, $"{slot}.pid"),
            [new("CONTROLPLANE_LAUNCH_ID", Guid.NewGuid().ToString("N"))], "controlplane-slot");
        try
        {
            await WaitForOkAsync(new Uri(url, "healthz"), TimeSpan.FromSeconds(60));
            return clock.Elapsed.TotalMilliseconds;
        }
        finally { Tools.Stop(process); }
    }

    private static async Task WaitForOkAsync(Uri url, TimeSpan timeout)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                using var response = await client.GetAsync(url);
                if (response.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(5);
        }
        throw new TimeoutException($"{url} did not answer within {timeout.TotalSeconds:0} s");
    }

    /// <summary>
    /// The demo app as a registered application, as the integration tests register it: one approval (self-approval allowed), a
    /// person switches. Returns its public URL (through the router) and the blue slot's own URL (live whenever a cycle starts).
    /// </summary>
    private static async Task<(string PublicUrl, string LiveSlotUrl)> RegisterAsync(HttpClient http, string demo)
    {
        var bluePort = Tools.FreePort();
        using var response = await http.PostAsJsonAsync("api/v1/applications", new
        {
            name = Application,
            router = new { kind = "embedded", settings = new { listenAddress = "127.0.0.1", listenPort = Tools.FreePort() } },
            deployer = new
            {
                kind = "process",
                settings = new
                {
                    command = "dotnet",
                    arguments = new[] { demo, "--urls", "http://127.0.0.1:{port}", "--version", "{version}", "--slot", "{slot}", "--app", "{app}" },
                    bluePort,
                    greenPort = Tools.FreePort(),
                    healthPath = "/healthz",
                    startTimeoutSeconds = 60,
                },
            },
            checks = new[] { new { name = "home", path = "/" } },
            policy = new { requiredApprovals = 1, allowSelfApproval = true, switchOnApproval = false, monitoringWindowSeconds = 3600, monitoringIntervalSeconds = 60, holdWindowSeconds = 3600 },
            initialVersion = "1.0.0",
        });
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"registering {Application}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            var app = await http.GetFromJsonAsync<JsonElement>($"api/v1/applications/{Application}");
            if (app.TryGetProperty("publicUrl", out var url) && url.GetString() is { } u)
            {
                try
                {
                    using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
                    if ((await client.GetStringAsync(u)).Contains("\"version\":\"1.0.0\"", StringComparison.Ordinal)) return (u, $"http://127.0.0.1:{bluePort}/");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{Application} did not serve 1.0.0 through its router within 120 s");
    }

    private static async Task<CycleTiming> CycleAsync(HttpClient http, ReleaseWatch watch, HttpClient probe, string publicUrl, string liveSlotUrl, string version, int? controlPlanePid)
    {
        var cpuBefore = controlPlanePid is { } pid ? Tools.CpuMs(pid) : double.NaN;
        using var started = await http.PostAsJsonAsync($"api/v1/applications/{Application}/deployments", new { version, reason = "side-by-side benchmark" });
        if (started.StatusCode != HttpStatusCode.Accepted) throw new InvalidOperationException($"start {version}: {(int)started.StatusCode} {await started.Content.ReadAsStringAsync()}");
        var id = (await started.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var awaiting = await WaitForStateAsync(http, watch, id, "AwaitingApproval");
        var cpuToAwaiting = controlPlanePid is { } cpuPid ? Tools.CpuMs(cpuPid) - cpuBefore : double.NaN;
        // The server's timestamps: the release's creation and the approval step's start (the moment it awaited approval).
        var created = awaiting.GetProperty("createdAt").GetDateTimeOffset();
        var steps = awaiting.GetProperty("steps").EnumerateArray().ToList();
        DateTimeOffset At(string step, string field) => steps.First(s => s.GetProperty("name").GetString() == step).GetProperty(field).GetDateTimeOffset();
        var createdToAwaiting = (At("approval", "startedAt") - created).TotalMilliseconds;
        var deployStep = (At("deploy", "finishedAt") - At("deploy", "startedAt")).TotalMilliseconds;

        (await http.PostAsJsonAsync($"api/v1/deployments/{id}/approve", new { comment = "benchmark" })).EnsureSuccessStatusCode();
        await WaitForStateAsync(http, watch, id, "ReadyToSwitch");

        // The probe's own round trip with nothing moving (the old version answers), to tell the client's cost from a move's; and
        // before it, with the same pause before each, the same request straight to the live slot's process: what one request
        // costs on this machine with no router and no move at all (after an idle moment each process has to be woken first).
        var probeClock = Stopwatch.StartNew();
        await probe.GetStringAsync(liveSlotUrl);
        var directMs = probeClock.Elapsed.TotalMilliseconds;
        await Task.Delay(200);
        probeClock.Restart();
        await probe.GetStringAsync(publicUrl);
        var probeMs = probeClock.Elapsed.TotalMilliseconds;
        await Task.Delay(200);
        var tries = 0;

        var call = Stopwatch.StartNew();
        string switchState;
        using (var switched = await http.PostAsJsonAsync($"api/v1/deployments/{id}/switch", new { }))
        {
            var body = await switched.Content.ReadAsStringAsync();
            if (!switched.IsSuccessStatusCode) throw new InvalidOperationException($"switch {version}: {(int)switched.StatusCode} {body}");
            switchState = JsonDocument.Parse(body).RootElement.GetProperty("state").GetString() ?? "";
        }
        var switchCall = call.Elapsed.TotalMilliseconds;
        // Monitoring: the leader moved the traffic and proved it; Switching: the bounded wait ran out (still under way). Anything
        // else (Failed: the leader could not prove the new version through the router and put the traffic back) is not a move.
        if (switchState is not ("Monitoring" or "Switching"))
            throw await CycleFailedAsync(http, id, $"the switch to {version} answered {switchState} after {switchCall:F0} ms");
        var switchServed = await ServedAsync(probe, publicUrl, version, $"the switch answered {switchState}") - switchCall;
        var firstTry = tries == 1;
        await WaitForStateAsync(http, watch, id, "Monitoring");

        call.Restart();
        using (var rolledBack = await http.PostAsJsonAsync($"api/v1/applications/{Application}/rollback", new { reason = "benchmark: back to 1.0.0" }))
        {
            var body = await rolledBack.Content.ReadAsStringAsync();
            if (!rolledBack.IsSuccessStatusCode)
                throw await CycleFailedAsync(http, id, $"the rollback from {version} answered {(int)rolledBack.StatusCode} after {call.Elapsed.TotalMilliseconds:F0} ms: {body}");
            // 200: the old version is served (verified through the router); 202: the leader has not reported within the wait.
            if (rolledBack.StatusCode != HttpStatusCode.OK && rolledBack.StatusCode != HttpStatusCode.Accepted)
                throw await CycleFailedAsync(http, id, $"the rollback from {version} answered {(int)rolledBack.StatusCode}: {body}");
        }
        var rollbackCall = call.Elapsed.TotalMilliseconds;
        tries = 0;
        var rollbackServed = await ServedAsync(probe, publicUrl, "1.0.0", "the rollback answered") - rollbackCall;
        firstTry &= tries == 1;
        await WaitForStateAsync(http, watch, id, "RolledBack");
        await WaitForSlotStoppedAsync(http, watch);
        return new CycleTiming(createdToAwaiting, deployStep, switchCall, switchServed, rollbackCall, rollbackServed, probeMs, firstTry, CpuToAwaitingMs: cpuToAwaiting, DirectMs: directMs);

        // Milliseconds on the call's clock at the first answer of the wanted version (the probe opens a new connection per try).
        async Task<double> ServedAsync(HttpClient client, string url, string wanted, string after)
        {
            var seen = "nothing yet";
            while (call.Elapsed < TimeSpan.FromSeconds(30))
            {
                tries++;
                try
                {
                    var answer = await client.GetStringAsync(url);
                    if (answer.Contains($"\"version\":\"{wanted}\"", StringComparison.Ordinal)) return call.Elapsed.TotalMilliseconds;
                    seen = answer.Length > 200 ? answer[..200] : answer;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { seen = e.Message; }
            }
            throw await CycleFailedAsync(http, id, $"{after}, but {url} did not serve {wanted} within 30 s of the call (last answer: {seen})");
        }
    }

    /// <summary>Thrown when a cycle did not end as a release cycle should; says what the deployment and the application show.</summary>
    public sealed class CycleFailedException(string message) : Exception(message);

    private static async Task<CycleFailedException> CycleFailedAsync(HttpClient http, string id, string what)
    {
        var text = new StringBuilder(what).AppendLine();
        try
        {
            var d = await http.GetFromJsonAsync<JsonElement>($"api/v1/deployments/{id}");
            text.AppendLine(CultureInfo.InvariantCulture, $"  deployment {id} {d.GetProperty("version").GetString()}: {d.GetProperty("state").GetString()}, " +
                $"outcome: {(d.TryGetProperty("outcome", out var o) ? o.ToString() : "")}, rollback: {(d.TryGetProperty("rollback", out var r) ? r.ToString() : "")}");
            foreach (var step in d.GetProperty("steps").EnumerateArray())
                text.AppendLine(CultureInfo.InvariantCulture, $"    {step.GetProperty("name").GetString()}: {step.GetProperty("state").GetString()} " +
                    $"{Stamp(step, "startedAt")} → {Stamp(step, "finishedAt")} {step.GetProperty("message")}");
            var app = await http.GetFromJsonAsync<JsonElement>($"api/v1/applications/{Application}");
            text.AppendLine(CultureInfo.InvariantCulture, $"  application: {app}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  (could not read the deployment: {e.Message})");
        }
        return new CycleFailedException(text.ToString());

        static string Stamp(JsonElement step, string field) =>
            step.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetDateTimeOffset().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : "—";
    }

    /// <summary>
    /// Waits for the rolled-back release's clean-up to stop its slot, so the next release starts onto an empty standby slot:
    /// "created → AwaitingApproval" measures the start, not the previous process's graceful shutdown (the demo app's own
    /// 100–450 ms), which a release created right after a rollback would otherwise wait for.
    /// </summary>
    private static async Task WaitForSlotStoppedAsync(HttpClient http, ReleaseWatch watch)
    {
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            var app = await http.GetFromJsonAsync<JsonElement>($"api/v1/applications/{Application}");
            var standby = app.GetProperty("liveSlot").GetString() is "Blue" or "blue" ? "green" : "blue";
            if (app.GetProperty("slots").GetProperty(standby).GetProperty("state").GetString() == "Stopped") return;
            await watch.WaitAsync(StatePoll);
        }
        throw new TimeoutException($"{Application}: the rolled-back release's slot was not stopped within 30 s");
    }

    private static async Task<JsonElement> WaitForStateAsync(HttpClient http, ReleaseWatch watch, string id, string state)
    {
        var clock = Stopwatch.StartNew();
        JsonElement last = default;
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            last = await http.GetFromJsonAsync<JsonElement>($"api/v1/deployments/{id}");
            var current = last.GetProperty("state").GetString();
            if (current == state) return last;
            if (current is "Failed" or "Aborted" or "RolledBack" or "Succeeded") throw new InvalidOperationException($"release reached {current}, not {state}: {last}");
            await watch.WaitAsync(StatePoll);
        }
        throw new TimeoutException($"release did not reach {state} within 120 s: {last}");
    }

    /// <summary>
    /// How the harness waits for a release's state: as the CLI's <c>follow</c> and the dashboard do, woken by the live hub's
    /// change notices for the benchmark's application, the state read with one GET per notice (and every <see cref="StatePoll"/>
    /// anyway). It polled every 20 ms before: some 25 requests per release start, on the two cores the starting process wants
    /// (the overhead above the process start was ~80 ms at 20 ms polling against 30–47 ms at 100 ms, idle machine, 2026-12-02).
    /// </summary>
    private sealed class ReleaseWatch : IAsyncDisposable
    {
        private readonly SemaphoreSlim _wake = new(0);
        private HubConnection? _hub;

        public static async Task<ReleaseWatch> StartAsync(HttpClient http)
        {
            var watch = new ReleaseWatch();
            var token = http.DefaultRequestHeaders.Authorization?.Parameter;
            watch._hub = new HubConnectionBuilder()
                .WithUrl(new Uri(http.BaseAddress!, "hubs/controlplane"), o => o.AccessTokenProvider = () => Task.FromResult(token))
                .WithAutomaticReconnect()
                .Build();
            watch._hub.On<JsonElement>("changed", notice =>
            {
                if (notice.TryGetProperty("application", out var a) && a.ValueKind == JsonValueKind.String && a.GetString() == Application
                    && watch._wake.CurrentCount == 0)
                    watch._wake.Release();
            });
            await watch._hub.StartAsync();
            return watch;
        }

        /// <summary>Until the next change notice for the application (one that came since the last wait counts), at most <paramref name="most"/>.</summary>
        public Task WaitAsync(TimeSpan most) => _wake.WaitAsync(most);

        public async ValueTask DisposeAsync()
        {
            if (_hub is not null) await _hub.DisposeAsync();
            _wake.Dispose();
        }
    }

    /// <summary>
    /// 200 SignalR clients on the live hub (WebSockets, bearer token), as the CLI and other dashboards connect. A change is a
    /// freeze window created (then deleted) on the application: both are audited mutations whose notice the hub sends to every
    /// client. Timed from the call's start to the moment the last of the 200 clients had the notice.
    /// </summary>
    private static async Task<FanOutResult> FanOutAsync(Uri baseUrl, HttpClient http, string token, int pid, int changes, TextWriter log)
    {
        const int clients = 200;
        var rssBefore = Tools.Rss(pid);
        var connectClock = Stopwatch.StartNew();
        var seen = new long[clients];
        long armedAt = 0;
        var remaining = 0;
        TaskCompletionSource<long>? all = null;
        var connections = new List<HubConnection>();
        try
        {
            for (var batch = 0; batch < clients; batch += 20)
            {
                var connecting = new List<Task>();
                for (var i = batch; i < batch + 20; i++)
                {
                    var index = i;
                    var connection = new HubConnectionBuilder()
                        .WithUrl(new Uri(baseUrl, "hubs/controlplane"), o =>
                        {
                            o.AccessTokenProvider = () => Task.FromResult<string?>(token);
                            o.Transports = HttpTransportType.WebSockets;
                            o.SkipNegotiation = true;
                        })
                        .Build();
                    connection.On<JsonElement>("changed", notice =>
                    {
                        var now = Stopwatch.GetTimestamp();
                        if (Volatile.Read(ref armedAt) == 0 || notice.GetProperty("application").GetString() != Application) return;
                        if (Interlocked.CompareExchange(ref seen[index], now, 0) != 0) return;
                        if (Interlocked.Decrement(ref remaining) == 0) all?.TrySetResult(now);
                    });
                    connections.Add(connection);
                    connecting.Add(connection.StartAsync());
                }
                await Task.WhenAll(connecting);
            }
            var connectSeconds = connectClock.Elapsed.TotalSeconds;
            await Task.Delay(TimeSpan.FromSeconds(2));
            var rssAfter = Tools.Rss(pid);
            var idleCpu = Tools.CpuMs(pid);
            await Task.Delay(TimeSpan.FromSeconds(5));
            var idleCpuPerSecond = (Tools.CpuMs(pid) - idleCpu) / 5;
            log.WriteLine($"  {clients} hub clients connected in {connectSeconds:F1} s; ControlPlane RSS {rssBefore / 1048576} -> {rssAfter / 1048576} MB, idle CPU {idleCpuPerSecond:F1} ms/s");

            var allSeen = new List<double>();
            var firstSeen = new List<double>();
            double cpu = 0;
            for (var round = 0; round < changes; round++)
            {
                Array.Clear(seen);
                remaining = clients;
                all = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
                var cpuBefore = Tools.CpuMs(pid);
                var start = Stopwatch.GetTimestamp();
                Volatile.Write(ref armedAt, start);
                if (round % 2 == 0)
                {
                    using var created = await http.PostAsJsonAsync($"api/v1/applications/{Application}/freeze-windows", new
                    {
                        name = $"benchmark {round}", reason = "side-by-side fan-out", kind = "oneOff", timeZone = "UTC",
                        start = "2099-01-01T00:00:00Z", end = "2099-01-01T01:00:00Z",
                    });
                    if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"freeze window: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync()}");
                    _lastWindow = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
                }
                else
                {
                    using var deleted = await http.DeleteAsync($"api/v1/applications/{Application}/freeze-windows/{_lastWindow}");
                    deleted.EnsureSuccessStatusCode();
                }
                var last = await all.Task.WaitAsync(TimeSpan.FromSeconds(30));
                Volatile.Write(ref armedAt, 0);
                cpu += Tools.CpuMs(pid) - cpuBefore;
                allSeen.Add(Stopwatch.GetElapsedTime(start, last).TotalMilliseconds);
                firstSeen.Add(Stopwatch.GetElapsedTime(start, seen.Where(s => s != 0).Min()).TotalMilliseconds);
                await Task.Delay(200);
            }
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  fan-out to {clients}: all seen p50 {Tools.PercentileOf(allSeen, 50):F1} ms, p99 {Tools.PercentileOf(allSeen, 99):F1} ms; first {Tools.PercentileOf(firstSeen, 50):F1} ms; " +
                $"ControlPlane CPU {cpu / changes:F0} ms per change"));
            return new FanOutResult(clients, connectSeconds, rssBefore, rssAfter, allSeen, firstSeen, cpu / changes, idleCpuPerSecond);
        }
        finally
        {
            await Task.WhenAll(connections.Select(c => c.DisposeAsync().AsTask()));
        }
    }

    private static string? _lastWindow;

    public static string Table(ReleaseFlowResult r, bool quick)
    {
        var text = new StringBuilder();
        var created = r.Cycles.Select(c => c.CreatedToAwaitingMs).ToList();
        var deploy = r.Cycles.Select(c => c.DeployStepMs).ToList();
        string P(IReadOnlyList<double> v, string format = "F1") =>
            string.Create(CultureInfo.InvariantCulture, $"{Tools.PercentileOf(v, 50).ToString(format, CultureInfo.InvariantCulture)} / {Tools.PercentileOf(v, 99).ToString(format, CultureInfo.InvariantCulture)}");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Release flow through the REST API ({r.Cycles.Count} releases of the demo app, process deployer, embedded router: {r.Moves} moves{(quick ? ", quick mode (a full run makes 50)" : "")}; after one uncounted warm-up release, each release onto a stopped standby slot):");
        text.AppendLine();
        text.AppendLine("| measure | p50 / p99 ms | what it is |");
        text.AppendLine("|---|---|---|");
        text.AppendLine($"| switch call started → new version served | **{P(r.Cycles.Select(c => c.SwitchCallMs + c.SwitchServedMs).ToList())}** | end to end: from sending `POST /deployments/{{id}}/switch` to the first answer of the new version on the public URL (a new connection per try) |");
        text.AppendLine($"| switch returned → new version served | {P(r.Cycles.Select(c => c.SwitchServedMs).ToList())} | from its 202 (sent once the leader reports the traffic moved, or when the bounded wait runs out) to the first answer of the new version |");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| the probe's own request | {P(r.Cycles.Select(c => c.ProbeMs).ToList())} | one request of the same kind (new connection, through the router) just before each switch, nothing moving: the client's own cost in \"returned → served\"; " +
            $"{r.Cycles.Count(c => c.ServedAtFirstTry)} of {r.Cycles.Count} cycles had both moves served at the first request after the answer |");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| a request straight to the slot | {P(r.Cycles.Select(c => c.DirectMs).ToList())} | the reference: the same request on a new connection to the live slot's own port (no router, nothing moving), 200 ms before the probe alone; the switch's \"returned → served\" p99 is **{Tools.PercentileOf(r.Cycles.Select(c => c.SwitchServedMs).ToList(), 99) / Tools.PercentileOf(r.Cycles.Select(c => c.DirectMs).ToList(), 99):F2}×** its p99 |");
        text.AppendLine($"| switch call | {P(r.Cycles.Select(c => c.SwitchCallMs).ToList())} | the call itself: records the intent (audited), then waits for the runtime leader to move the traffic |");
        text.AppendLine($"| rollback call started → old version served | **{P(r.Cycles.Select(c => c.RollbackCallMs + c.RollbackServedMs).ToList())}** | end to end, as for the switch |");
        text.AppendLine($"| rollback returned → old version served | {P(r.Cycles.Select(c => c.RollbackServedMs).ToList())} | `POST /applications/{{name}}/rollback` answers once the old version is served |");
        text.AppendLine($"| rollback call | {P(r.Cycles.Select(c => c.RollbackCallMs).ToList())} | the call itself: waits for the runtime leader to move the traffic |");
        text.AppendLine($"| created → AwaitingApproval | {P(created, "F0")} | server timestamps: the release's creation to its approval step's start (deploy + verify) |");
        text.AppendLine($"| of which the deploy step | {P(deploy, "F0")} | start the standby slot's process, wait for its health path |");
        text.AppendLine($"| the demo process alone | {P(r.Cycles.Select(c => c.AloneMs).ToList(), "F0")} | started by hand next to each release (just before it, or just after it in every other cycle), as the deployer starts it (same launch, environment and arguments), until `/healthz` answers 200 (polled every 5 ms; the demo answers 503 until it has warmed up, as the deployer sees it) |");
        text.AppendLine($"| ControlPlane's CPU meanwhile | {P(r.Cycles.Select(c => c.CpuToAwaitingMs).ToList(), "F0")} | its user + system time (`/proc`, 10 ms ticks) from the release's creation to AwaitingApproval, the harness's watching included (one GET per change notice, as the CLI's `follow`): on two cores it competes with the starting process |");
        text.AppendLine($"| deploy step minus the process start | {P(r.Cycles.Select(c => c.DeployOverheadMs).ToList(), "F0")} | per release, against the start by hand next to it |");
        text.AppendLine($"| **created → AwaitingApproval minus the process start** | **{P(r.Cycles.Select(c => c.OverheadMs).ToList(), "F0")}** | per release, against the start by hand next to it: ControlPlane's own overhead (scheduling, the passes' saves, the health wait's granularity, the verify check) |");
        text.AppendLine();
        var f = r.FanOut;
        text.AppendLine(CultureInfo.InvariantCulture,
            $"SignalR fan-out ({f.Clients} clients on `/hubs/controlplane`, WebSockets, {f.AllSeenMs.Count} changes): the last client had the change " +
            $"**{Tools.PercentileOf(f.AllSeenMs, 50):F1} ms** (p50) / {Tools.PercentileOf(f.AllSeenMs, 99):F1} ms (p99) after the call started, the first " +
            $"{Tools.PercentileOf(f.FirstSeenMs, 50):F1} ms; ControlPlane used {f.CpuMsPerChange:F0} ms of CPU per change (the audited API call included), " +
            $"{f.IdleCpuMsPerSecond:F1} ms/s with the clients idle; {f.Clients} connections took {f.ConnectSeconds:F1} s to open and " +
            $"{(f.RssAfter - f.RssBefore) / 1048576.0:F0} MB of RSS ({f.RssBefore / 1048576} → {f.RssAfter / 1048576} MB).");
        return text.ToString();
    }
}
