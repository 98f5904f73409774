using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace ControlPlane.Benchmarks.SideBySide;

/// <summary>A way of sending traffic to the live slot: its public URL, how to move it to a slot, and how to stop it.</summary>
public sealed record Target(Uri Url, Func<string, Task>? SwitchTo, Func<Task> StopAsync, int? Pid = null);

/// <summary>The embedded router with measureTraffic on against off, measured in alternation (see <see cref="DataPlane.MeasurementOverheadAsync"/>).</summary>
public sealed record MeasurementOverhead(IReadOnlyList<double> OnRps, IReadOnlyList<double> OffRps, IReadOnlyList<double> OnCpuUs, IReadOnlyList<double> OffCpuUs)
{
    /// <summary>How much throughput measuring costs: 1 − (median on / median off); negative when "on" came out ahead (noise).</summary>
    public double ThroughputCost => 1 - Tools.PercentileOf(OnRps, 50) / Tools.PercentileOf(OffRps, 50);

    /// <summary>How much more router CPU a request costs with measuring on: median on / median off − 1.</summary>
    public double CpuCost => Tools.PercentileOf(OnCpuUs, 50) / Tools.PercentileOf(OffCpuUs, 50) - 1;
}

/// <summary>One row of the data-plane table.</summary>
public sealed record DataPlaneCase(string Name, Func<Backends, string, Task<Target>> StartAsync, bool FullRunOnly = false);

public sealed record LoadRow(int Connections, Tools.WrkResult Result);

public sealed record SwitchRow(int Moves, long Requests, long Failed, IReadOnlyList<double> SwitchToServedMs);

public sealed record DataPlaneResult(string Name, IReadOnlyList<LoadRow> Load, SwitchRow? Switches);

/// <summary>The two demo-app slot processes every case sends traffic to (blue 1.0.0, green 2.0.0).</summary>
public sealed class Backends : IAsyncDisposable
{
    private readonly List<Process> _processes = [];
    public Uri Blue { get; private set; } = null!;
    public Uri Green { get; private set; } = null!;
    public Uri Of(string slot) => slot == "blue" ? Blue : Green;

    public static async Task<Backends> StartAsync(string work)
    {
        var backends = new Backends();
        var demo = Tools.Program("ControlPlane.DemoApp");
        foreach (var (slot, version) in new[] { ("blue", "1.0.0"), ("green", "2.0.0") })
        {
            var url = new Uri($"http://127.0.0.1:{Tools.FreePort()}/");
            backends._processes.Add(Tools.Start("dotnet", [demo, "--urls", url.AbsoluteUri.TrimEnd('/'), "--slot", slot, "--version", version, "--app", "bench"],
                log: Path.Combine(work, $"demo-{slot}.log")));
            if (slot == "blue") backends.Blue = url; else backends.Green = url;
        }
        await Tools.WaitForHttpAsync(backends.Blue, TimeSpan.FromSeconds(60));
        await Tools.WaitForHttpAsync(backends.Green, TimeSpan.FromSeconds(60));
        return backends;
    }

    public ValueTask DisposeAsync()
    {
        foreach (var p in _processes) Tools.Stop(p);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Direct to the slot, the embedded router, nginx with reload and nginx with Lua, measured one after the other with the same
/// wrk settings: throughput and p50/p99 at 1, 16 and 64 keep-alive connections, then 64 connections while the traffic is
/// moved between the slots (20 moves full, 10 quick), counting every failed request and the time from the move to the first
/// answer of the new slot.
/// </summary>
public static class DataPlane
{
    public static readonly int[] Connections = [1, 16, 64];

    /// <summary>The rows of the table. A variant (another router setting) is one more line here.</summary>
    public static readonly IReadOnlyList<DataPlaneCase> Cases =
    [
        new("direct to the slot", (b, _) => Task.FromResult(new Target(b.Blue, null, () => Task.CompletedTask))),
        new("embedded router (YARP)", (b, work) => EmbeddedRouterAsync(b, work, [])),
        new("embedded router, measureTraffic=false", (b, work) => EmbeddedRouterAsync(b, work, ["--measure-traffic", "false"]), FullRunOnly: true),
        new("nginx, reload mode", (b, work) => NginxAsync(b, work, lua: false)),
        new("nginx, Lua mode", (b, work) => NginxAsync(b, work, lua: true)),
        // ControlPlane writes keepalive 16; with more client connections than that nginx opens new upstream connections.
        new("nginx, reload mode, keepalive 128", (b, work) => NginxAsync(b, work, lua: false, keepalive: 128), FullRunOnly: true),
    ];

    public static async Task<List<DataPlaneResult>> RunAsync(Backends backends, string work, bool quick, TextWriter log)
    {
        var duration = TimeSpan.FromSeconds(quick ? 2 : 15);
        var switchDuration = TimeSpan.FromSeconds(quick ? 5 : 30);
        var moves = quick ? 8 : 20;
        var results = new List<DataPlaneResult>();
        foreach (var c in Cases.Where(c => !quick || !c.FullRunOnly))
        {
            var target = await c.StartAsync(backends, Directory.CreateDirectory(Path.Combine(work, Slug(c.Name))).FullName);
            try
            {
                await Tools.WaitForHttpAsync(target.Url, TimeSpan.FromSeconds(30));
                // Warm-up at full load: the router's JIT tiering took 20-40 s to settle on this machine (docs/benchmarks.md);
                // nginx needs none, and gets the same.
                await Tools.WrkAsync(target.Url, 64, TimeSpan.FromSeconds(quick ? 3 : 15));
                var load = new List<LoadRow>();
                foreach (var n in Connections)
                {
                    var r = await Tools.WrkAsync(target.Url, n, duration);
                    log.WriteLine($"  {c.Name}, {n} conns: {r.RequestsPerSecond:N0} req/s, p50 {r.P50Ms:F2} ms, p99 {r.P99Ms:F2} ms, failed {r.Failed}");
                    load.Add(new LoadRow(n, r));
                }
                SwitchRow? switches = null;
                if (target.SwitchTo is { } switchTo)
                {
                    switches = await SwitchUnderLoadAsync(target, switchTo, moves, switchDuration);
                    log.WriteLine($"  {c.Name}, {moves} moves under 64 conns: {switches.Failed} failed of {switches.Requests}; switch->served p50 " +
                                  $"{Tools.PercentileOf(switches.SwitchToServedMs, 50):F1} ms, p99 {Tools.PercentileOf(switches.SwitchToServedMs, 99):F1} ms");
                }
                results.Add(new DataPlaneResult(c.Name, load, switches));
            }
            finally
            {
                await target.StopAsync();
            }
        }
        return results;
    }

    /// <summary>wrk at 64 connections for the whole window; meanwhile moves spaced evenly, alternating green and blue.</summary>
    private static async Task<SwitchRow> SwitchUnderLoadAsync(Target target, Func<string, Task> switchTo, int moves, TimeSpan window)
    {
        var wrk = Tools.WrkAsync(target.Url, 64, window);
        var gap = window / (moves + 2);
        var served = new List<double>();
        using var probe = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(5) };
        await Task.Delay(gap);
        for (var i = 0; i < moves; i++)
        {
            var slot = i % 2 == 0 ? "green" : "blue";
            var clock = Stopwatch.StartNew();
            // The probe runs from the switch call on, not from its answer: a target may serve the new slot before the call
            // returns (the router moves traffic before it has fsynced the route), and that moment is what is measured.
            var switching = switchTo(slot);
            // The probe retries (it is not the measured client): served = the first answer from the new slot.
            while (clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                try
                {
                    var body = await probe.GetStringAsync(target.Url);
                    if (body.Contains($"\"slot\":\"{slot}\"", StringComparison.Ordinal)) break;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            }
            served.Add(clock.Elapsed.TotalMilliseconds);
            await switching;
            await Task.Delay(gap);
        }
        var r = await wrk;
        await switchTo("blue");
        return new SwitchRow(moves, r.Requests, r.Failed, served);
    }

    /// <summary>The router process exactly as ControlPlane starts it: state directory, control secret, route file.</summary>
    public static async Task<Target> EmbeddedRouterAsync(Backends backends, string work, string[] extraArguments)
    {
        var state = Directory.CreateDirectory(Path.Combine(work, "state")).FullName;
        var secret = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
        await File.WriteAllTextAsync(Path.Combine(state, "control.secret"), secret);
        await File.WriteAllTextAsync(Path.Combine(state, "route.json"),
            JsonSerializer.Serialize(new { live = "blue", blue = backends.Blue.AbsoluteUri, green = backends.Green.AbsoluteUri, revision = 1 }));
        var port = Tools.FreePort();
        var process = Tools.Start("dotnet", [Tools.Program("ControlPlane.Router"), "--app", "bench", "--listen", $"127.0.0.1:{port}", "--state", state, .. extraArguments],
            ControlPlane.Core.Routing.EmbeddedRouter.ProcessEnvironment.ToDictionary(), log: Path.Combine(work, "router.log"));
        var endpoints = Path.Combine(state, "endpoints.json");
        for (var i = 0; i < 600 && !File.Exists(endpoints); i++) await Task.Delay(50);
        var controlPort = JsonDocument.Parse(await File.ReadAllTextAsync(endpoints)).RootElement.GetProperty("controlPort").GetInt32();
        var control = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{controlPort}/") };
        control.DefaultRequestHeaders.Authorization = new("Bearer", secret);
        return new Target(new Uri($"http://127.0.0.1:{port}/"),
            async slot =>
            {
                using var response = await control.PutAsJsonAsync("route", new { live = slot, blue = backends.Blue.AbsoluteUri, green = backends.Green.AbsoluteUri });
                response.EnsureSuccessStatusCode();
            },
            () => { control.Dispose(); Tools.Stop(process); return Task.CompletedTask; }, process.Id);
    }

    /// <summary>
    /// Issue 10's overhead bound: two routers, measureTraffic on and off, both running, measured in alternation (on, off, off,
    /// on, …) at 64 connections so drift in the machine's load falls on both alike; throughput and the router's own CPU time per
    /// request (from /proc) for each run.
    /// </summary>
    public static async Task<MeasurementOverhead> MeasurementOverheadAsync(Backends backends, string work, bool quick, TextWriter log)
    {
        var on = await EmbeddedRouterAsync(backends, Directory.CreateDirectory(Path.Combine(work, "overhead-on")).FullName, []);
        var off = await EmbeddedRouterAsync(backends, Directory.CreateDirectory(Path.Combine(work, "overhead-off")).FullName, ["--measure-traffic", "false"]);
        try
        {
            foreach (var t in new[] { on, off })
            {
                await Tools.WaitForHttpAsync(t.Url, TimeSpan.FromSeconds(30));
                await Tools.WrkAsync(t.Url, 64, TimeSpan.FromSeconds(quick ? 3 : 15));
            }
            var (onRps, offRps, onCpu, offCpu) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            var pairs = quick ? 2 : 6;
            for (var i = 0; i < pairs * 2; i++)
            {
                var measuring = i % 4 is 0 or 3;
                var target = measuring ? on : off;
                var cpu = Tools.CpuMs(target.Pid!.Value);
                var r = await Tools.WrkAsync(target.Url, 64, TimeSpan.FromSeconds(quick ? 2 : 5));
                var usPerRequest = (Tools.CpuMs(target.Pid!.Value) - cpu) * 1000 / Math.Max(1, r.Requests);
                (measuring ? onRps : offRps).Add(r.RequestsPerSecond);
                (measuring ? onCpu : offCpu).Add(usPerRequest);
            }
            var result = new MeasurementOverhead(onRps, offRps, onCpu, offCpu);
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  measureTraffic on vs off, {pairs} pairs at 64 conns: {Tools.PercentileOf(onRps, 50):N0} vs {Tools.PercentileOf(offRps, 50):N0} req/s (cost {result.ThroughputCost:P1}), " +
                $"router CPU {Tools.PercentileOf(onCpu, 50):F0} vs {Tools.PercentileOf(offCpu, 50):F0} µs per request (cost {result.CpuCost:P1})"));
            return result;
        }
        finally
        {
            await on.StopAsync();
            await off.StopAsync();
        }
    }

    /// <summary>
    /// nginx 1.22 from Debian with its own prefix, the upstream files ControlPlane's nginx router writes (keepalive 16) and the
    /// location docs/nginx.md gives; reload mode switches like the router does (atomic file, nginx -t, nginx -s reload), Lua
    /// mode through the shared dict.
    /// </summary>
    public static async Task<Target> NginxAsync(Backends backends, string work, bool lua, int keepalive = 16)
    {
        const string modules = "/usr/lib/nginx/modules";
        if (!File.Exists("/usr/sbin/nginx") || !File.Exists($"{modules}/ngx_http_lua_module.so"))
            throw new InvalidOperationException("nginx with the Lua module is needed: apt-get install nginx libnginx-mod-http-lua lua-resty-core");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(work, (UnixFileMode)0b111_101_101); // workers run as nobody when this runs as root
        var upstreams = Directory.CreateDirectory(Path.Combine(work, "upstreams")).FullName;
        Directory.CreateDirectory(Path.Combine(work, "tmp"));
        var (port, controlPort) = (Tools.FreePort(), Tools.FreePort());
        string Upstream(string name, Uri to) => $"upstream {name} {{\n    server {to.Host}:{to.Port};\n    keepalive {keepalive};\n}}\n";
        var file = Path.Combine(upstreams, "bench.conf");
        async Task WriteUpstreamAsync(string slot)
        {
            var text = lua
                ? Upstream("bench_blue", backends.Blue) + Upstream("bench_green", backends.Green) + $"map \"\" $bench_default_slot {{\n    default {slot};\n}}\n"
                : Upstream("bench", backends.Of(slot));
            var temp = Path.Combine(upstreams, ".bench.tmp");
            await File.WriteAllTextAsync(temp, text);
            File.Move(temp, file, overwrite: true);
        }
        await WriteUpstreamAsync("blue");
        var proxy = lua
            ? "set_by_lua_block $bench_slot { return ngx.shared.controlplane:get(\"bench\") or ngx.var.bench_default_slot }\n            proxy_pass http://bench_$bench_slot;"
            : "proxy_pass http://bench;";
        var config = Path.Combine(work, "nginx.conf");
        await File.WriteAllTextAsync(config, $$"""
            load_module {{modules}}/ndk_http_module.so;
            load_module {{modules}}/ngx_http_lua_module.so;
            worker_processes 2;
            pid nginx.pid;
            error_log {{work}}/error.log notice;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path tmp/body;
                proxy_temp_path tmp/proxy;
                fastcgi_temp_path tmp/fastcgi;
                uwsgi_temp_path tmp/uwsgi;
                scgi_temp_path tmp/scgi;
                lua_shared_dict controlplane 1m;
                include {{upstreams}}/*.conf;
                server {
                    listen 127.0.0.1:{{port}};
                    location / {
                        {{proxy}}
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $host;
                    }
                }
                server {
                    listen 127.0.0.1:{{controlPort}};
                    location = /controlplane/slot {
                        allow 127.0.0.1;
                        deny all;
                        content_by_lua_block {
                            ngx.req.read_body()
                            ngx.shared.controlplane:set(ngx.var.arg_upstream, ngx.req.get_body_data())
                            ngx.say(ngx.shared.controlplane:get(ngx.var.arg_upstream))
                        }
                    }
                }
            }
            """);
        string[] arguments = ["-p", work + "/", "-c", config, "-e", Path.Combine(work, "error.log")];
        var (code, output) = await Tools.RunAsync("/usr/sbin/nginx", arguments);
        if (code != 0) throw new InvalidOperationException($"nginx did not start: {output}");
        var control = new HttpClient();
        return new Target(new Uri($"http://127.0.0.1:{port}/"),
            async slot =>
            {
                if (lua)
                {
                    using var response = await control.PutAsync($"http://127.0.0.1:{controlPort}/controlplane/slot?upstream=bench",
                        new StringContent(slot, Encoding.UTF8));
                    response.EnsureSuccessStatusCode();
                    await WriteUpstreamAsync(slot); // the default for a restart, as the router keeps it; no reload
                    return;
                }
                await WriteUpstreamAsync(slot);
                var test = await Tools.RunAsync("/usr/sbin/nginx", [.. arguments, "-t", "-q"]);
                if (test.Code != 0) throw new InvalidOperationException($"nginx -t: {test.Output}");
                var reload = await Tools.RunAsync("/usr/sbin/nginx", [.. arguments, "-s", "reload"]);
                if (reload.Code != 0) throw new InvalidOperationException($"nginx -s reload: {reload.Output}");
            },
            async () =>
            {
                control.Dispose();
                await Tools.RunAsync("/usr/sbin/nginx", [.. arguments, "-s", "stop"]);
            });
    }

    private static string Slug(string name) => new string(name.Select(c => char.IsLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-').ToArray()).Trim('-');

    public static string Table(IReadOnlyList<DataPlaneResult> results)
    {
        var text = new StringBuilder();
        var nginx = results.FirstOrDefault(r => r.Name == "nginx, reload mode");
        text.AppendLine("| target | " + string.Join(" | ", Connections.Select(n => $"{n} conn{(n == 1 ? "" : "s")}: req/s (× nginx) · p50 · p99 ms")) + " | failed during moves | switch→served p50 / p99 ms |");
        text.AppendLine("|---|" + string.Concat(Connections.Select(_ => "---|")) + "---|---|");
        foreach (var r in results)
        {
            text.Append("| ").Append(r.Name).Append(" | ");
            foreach (var row in r.Load)
            {
                var reference = nginx?.Load.First(l => l.Connections == row.Connections).Result;
                var ratio = reference is null ? "" : $" ({row.Result.RequestsPerSecond / reference.RequestsPerSecond:F2}×)";
                text.Append(CultureInfo.InvariantCulture, $"{row.Result.RequestsPerSecond:N0}{ratio} · {row.Result.P50Ms:F2} · {row.Result.P99Ms:F2} | ");
            }
            text.Append(r.Switches is { } s ? $"{s.Failed} of {s.Requests:N0} ({s.Moves} moves) | " : "— | ");
            text.Append(r.Switches is { } m
                ? string.Create(CultureInfo.InvariantCulture, $"{Tools.PercentileOf(m.SwitchToServedMs, 50):F1} / {Tools.PercentileOf(m.SwitchToServedMs, 99):F1} |")
                : "— |");
            text.AppendLine();
        }
        return text.ToString();
    }
}
