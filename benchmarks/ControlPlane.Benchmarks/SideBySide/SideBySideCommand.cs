using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ControlPlane.Benchmarks.SideBySide;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/ControlPlane.Benchmarks -- side-by-side [--quick] [--events N] [--no-docs] [--web DIR] [--control-plane-only]</c>:
/// the data plane (direct, embedded router, nginx reload, nginx Lua) and the control plane (audit export/verify against psql
/// and SQL, the applications list) in one run. Writes the tables to artifacts/benchmarks/side-by-side.md and, for a full run,
/// between the markers in docs/benchmarks.md. <c>--web DIR</c> runs another build of ControlPlane.Web and
/// <c>--control-plane-only</c> skips the data plane (neither writes the docs): together they compare two builds in alternation.
/// </summary>
public static class SideBySideCommand
{
    private const string Begin = "<!-- side-by-side:begin -->";
    private const string End = "<!-- side-by-side:end -->";

    public static async Task<int> RunAsync(string[] args)
    {
        var quick = args.Contains("--quick");
        var events = args.SkipWhile(a => a != "--events").Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(quick ? 100_000 : 1_000_000);
        var controlPlaneOnly = args.Contains("--control-plane-only");
        var writeDocs = !quick && !args.Contains("--no-docs") && !controlPlaneOnly && !args.Contains("--web");
        foreach (var tool in new[] { "wrk", "psql" })
            if ((await Tools.RunAsync("sh", ["-c", $"command -v {tool}"])).Code != 0)
            {
                Console.Error.WriteLine($"{tool} is needed: apt-get install {(tool == "wrk" ? "wrk" : "postgresql-client")}");
                return 2;
            }
        // Checked before anything starts, not minutes later when the nginx rows come.
        if (!File.Exists("/usr/sbin/nginx") || !File.Exists("/usr/lib/nginx/modules/ngx_http_lua_module.so"))
        {
            Console.Error.WriteLine("nginx with the Lua module is needed: apt-get install nginx libnginx-mod-http-lua lua-resty-core");
            return 2;
        }

        var clock = Stopwatch.StartNew();
        var work = Directory.CreateTempSubdirectory("cp-side-by-side-").FullName;
        var started = DateTimeOffset.UtcNow;
        var loadAtStart = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        Console.WriteLine($"Side-by-side benchmark ({(quick ? "quick" : "full")}), work directory {work}");
        List<DataPlaneResult>? dataPlane = null;
        MeasurementOverhead? overhead = null;
        var demoClock = Stopwatch.StartNew();
        if (!controlPlaneOnly)
        {
            await using var backends = await Backends.StartAsync(work);
            Console.WriteLine($"Data plane (the two demo app slots answered {demoClock.Elapsed.TotalMilliseconds:F0} ms after their start):");
            dataPlane = await DataPlane.RunAsync(backends, work, quick, Console.Out);
            overhead = await DataPlane.MeasurementOverheadAsync(backends, work, quick, Console.Out);
        }
        Console.WriteLine("Control plane:");
        var controlPlane = await ControlPlaneRows.RunAsync(Tools.WebProgram(args), work, events, quick, Console.Out);

        var report = Report(dataPlane, overhead, controlPlane, started, loadAtStart, clock.Elapsed, quick);
        var artifacts = Directory.CreateDirectory(Path.Combine(RepositoryRoot(), "artifacts", "benchmarks")).FullName;
        await File.WriteAllTextAsync(Path.Combine(artifacts, "side-by-side.md"), report);
        Console.WriteLine();
        Console.WriteLine(report);
        Console.WriteLine($"Written to {Path.Combine(artifacts, "side-by-side.md")}");
        if (writeDocs)
        {
            var docs = Path.Combine(RepositoryRoot(), "docs", "benchmarks.md");
            var text = await File.ReadAllTextAsync(docs);
            var (b, e) = (text.IndexOf(Begin, StringComparison.Ordinal), text.IndexOf(End, StringComparison.Ordinal));
            if (b >= 0 && e > b)
            {
                await File.WriteAllTextAsync(docs, text[..(b + Begin.Length)] + "\n" + report + text[e..]);
                Console.WriteLine($"and between the markers in {docs}");
            }
        }
        try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        return 0;
    }

    private static string Report(List<DataPlaneResult>? dataPlane, MeasurementOverhead? overhead, ControlPlaneResult controlPlane, DateTimeOffset started, string loadAtStart, TimeSpan took, bool quick)
    {
        var text = new StringBuilder();
        if (dataPlane is null || overhead is null)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, control plane only ({(quick ? "quick" : "full")}), {took.TotalSeconds:F0} s, " +
                $"load average (1 min) {loadAtStart} at the start and {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end.");
            text.AppendLine();
            text.Append(ControlPlaneRows.Table(controlPlane));
            text.AppendLine();
            text.Append(ReleaseFlow.Table(controlPlane.Flow, quick));
            return text.ToString();
        }
        var router = dataPlane.First(r => r.Name.StartsWith("embedded router", StringComparison.Ordinal));
        var nginx = dataPlane.First(r => r.Name == "nginx, reload mode");
        var r64 = router.Load.Single(l => l.Connections == 64).Result;
        var n64 = nginx.Load.Single(l => l.Connections == 64).Result;
        text.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, {(quick ? "quick mode" : "full run")}, {took.TotalSeconds:F0} s, " +
            $"`{Environment.ProcessorCount}` cores, load average (1 min) {loadAtStart} at the start and {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end.");
        text.AppendLine();
        text.AppendLine("**Ratios** (embedded router against nginx reload mode, 64 connections):");
        text.AppendLine(CultureInfo.InvariantCulture, $"throughput **{r64.RequestsPerSecond / n64.RequestsPerSecond:F2}×**, p99 **{r64.P99Ms / n64.P99Ms:F2}×**; " +
            $"export **{controlPlane.Export.Seconds / controlPlane.Copy.Seconds:F2}× psql \\copy**, first byte {controlPlane.Export.FirstByteMs:F0} ms; " +
            $"verify **{controlPlane.Verify.Seconds / controlPlane.SqlScan.Seconds:F2}× the SQL walk**.");
        if (dataPlane.FirstOrDefault(r => r.Name == "nginx, reload mode, keepalive 128") is { } tuned)
        {
            var t64 = tuned.Load.Single(l => l.Connections == 64).Result;
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"Against nginx with an upstream pool of 128 (as many idle upstream connections as clients): throughput " +
                $"**{r64.RequestsPerSecond / t64.RequestsPerSecond:F2}×**, p99 **{r64.P99Ms / t64.P99Ms:F2}×**.");
        }
        text.AppendLine();
        text.AppendLine("Data plane (wrk 4.1, keep-alive, no retries; ratios against nginx reload mode at the same connections):");
        text.AppendLine();
        text.Append(DataPlane.Table(dataPlane));
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Embedded router, measureTraffic on against off ({overhead.OnRps.Count} runs each at 64 connections, in alternation, both routers running): " +
            $"{Tools.PercentileOf(overhead.OnRps, 50):N0} against {Tools.PercentileOf(overhead.OffRps, 50):N0} req/s (median), a throughput cost of **{overhead.ThroughputCost:P1}**; " +
            $"router CPU per request {Tools.PercentileOf(overhead.OnCpuUs, 50):F0} against {Tools.PercentileOf(overhead.OffCpuUs, 50):F0} µs (**{overhead.CpuCost:P1}**). " +
            $"Runs on: {string.Join(", ", overhead.OnRps.Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))}; off: {string.Join(", ", overhead.OffRps.Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))} req/s.");
        text.AppendLine();
        text.AppendLine("Audit trail and API (ControlPlane as its own process):");
        text.AppendLine();
        text.Append(ControlPlaneRows.Table(controlPlane));
        text.AppendLine();
        text.Append(ReleaseFlow.Table(controlPlane.Flow, quick));
        return text.ToString();
    }

    public static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "ControlPlane.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
