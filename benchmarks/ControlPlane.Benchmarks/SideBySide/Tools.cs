using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ControlPlane.Core.Deployers;

namespace ControlPlane.Benchmarks.SideBySide;

/// <summary>Processes the benchmark starts (and always stops), free ports, RSS sampling and the wrk load generator.</summary>
public static partial class Tools
{
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The build output of a project of this repository (built with this program through its project references).</summary>
    public static string Program(string project) =>
        BundledProgram.Find(project, "none", null) ?? throw new InvalidOperationException($"{project}.dll not found: build the benchmarks project first.");

    /// <summary>The admin token every harness command bootstraps ControlPlane with.</summary>
    public const string ControlPlaneToken = "bench-admin-token-0123456789abcdef";

    /// <summary><c>--web DIR</c>: another build's output directory of ControlPlane.Web (to compare two builds in alternation), else this one's.</summary>
    public static string WebProgram(string[] args) =>
        args.SkipWhile(a => a != "--web").Skip(1).FirstOrDefault() is { } dir
            ? Path.Combine(Path.GetFullPath(dir), "ControlPlane.Web.dll")
            : Program("ControlPlane.Web");

    /// <summary>
    /// ControlPlane as a process of its own, as it ships (Production, no demo), on the given PostgreSQL, answering on
    /// <paramref name="baseUrl"/>; slot processes and routers it starts stop with it. <paramref name="logLevel"/> is for its own
    /// categories, with UTC timestamps to follow a release in its log.
    /// </summary>
    public static Process StartControlPlane(string webDll, string connectionString, Uri baseUrl, string work, string logLevel = "Warning") =>
        Start("dotnet", [webDll], new Dictionary<string, string>
        {
            ["ConnectionStrings__ControlPlane"] = connectionString,
            ["ControlPlane__DataDirectory"] = Directory.CreateDirectory(Path.Combine(work, "controlplane")).FullName,
            ["ControlPlane__Demo__Enabled"] = "false",
            ["ControlPlane__Bootstrap__AdminToken"] = ControlPlaneToken,
            ["ASPNETCORE_URLS"] = baseUrl.AbsoluteUri.TrimEnd('/'),
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__ControlPlane"] = logLevel,
            ["Logging__Console__FormatterName"] = "simple",
            ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.ffffff ",
            ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true",
            // The release flow's slot processes and router are stopped with ControlPlane (SIGTERM), not left behind.
            ["ControlPlane__Runtime__StopOnShutdown"] = "true",
        }, Path.Combine(work, "controlplane.log"));

    public static Process Start(string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, string? log = null)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var writer = log is null ? null : TextWriter.Synchronized(new StreamWriter(log, append: true) { AutoFlush = true });
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) writer?.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) writer?.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, (await output) + (await error));
    }

    public static void Stop(Process? process)
    {
        if (process is null) return;
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException) { }
        process.Dispose();
    }

    /// <summary>SIGTERM, so the process stops what it started itself; killed when it has not ended within <paramref name="grace"/>.</summary>
    public static async Task TerminateAsync(Process process, TimeSpan grace)
    {
        if (!process.HasExited)
        {
            await RunAsync("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
            using var timeout = new CancellationTokenSource(grace);
            try { await process.WaitForExitAsync(timeout.Token); } catch (OperationCanceledException) { }
        }
        Stop(process);
    }

    public static async Task WaitForHttpAsync(Uri url, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(url);
                if ((int)response.StatusCode < 500) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            if (clock.Elapsed > timeout) throw new TimeoutException($"{url} did not answer within {timeout.TotalSeconds:0} s");
            await Task.Delay(50);
        }
    }

    /// <summary>Resident set size of a process in bytes (VmRSS), or 0 once it is gone.</summary>
    public static long Rss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        return 0;
    }

    /// <summary>User + system CPU time a process has used so far, in milliseconds (/proc/PID/stat, clock ticks of 10 ms).</summary>
    public static double CpuMs(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // After "pid (comm) ": state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 10.0;
        }
        catch (IOException) { return 0; }
    }

    /// <summary>Samples a process's RSS every 10 ms until disposed; the peak is what the export/verify rows report.</summary>
    public sealed class RssSampler : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        public long Baseline { get; }
        public long Peak { get; private set; }

        public RssSampler(int pid)
        {
            Baseline = Peak = Rss(pid);
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    Peak = Math.Max(Peak, Rss(pid));
                    try { await Task.Delay(10, _stop.Token); } catch (OperationCanceledException) { }
                }
            });
        }

        public async ValueTask DisposeAsync()
        {
            if (_stop.IsCancellationRequested) return;
            await _stop.CancelAsync();
            await _loop;
        }
    }

    public sealed record WrkResult(double RequestsPerSecond, double P50Ms, double P99Ms, long Requests, long SocketErrors, long Non2xx)
    {
        public long Failed => SocketErrors + Non2xx;
    }

    /// <summary>wrk: keep-alive connections, no retries; latency percentiles from --latency.</summary>
    public static async Task<WrkResult> WrkAsync(Uri url, int connections, TimeSpan duration, string? header = null)
    {
        var threads = Math.Min(connections, 2);
        var (code, output) = await RunAsync("wrk", ["-t", threads.ToString(CultureInfo.InvariantCulture), "-c", connections.ToString(CultureInfo.InvariantCulture),
            "-d", $"{(int)duration.TotalSeconds}s", "--timeout", "5s", "--latency", .. header is null ? Array.Empty<string>() : ["-H", header], url.AbsoluteUri]);
        if (code != 0) throw new InvalidOperationException($"wrk failed ({code}): {output}");
        var rps = double.Parse(RequestsPerSecond().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var requests = long.Parse(Requests().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var socket = SocketErrors().Match(output);
        var errors = socket.Success ? Enumerable.Range(1, 4).Sum(i => long.Parse(socket.Groups[i].Value, CultureInfo.InvariantCulture)) : 0;
        var non2xx = Non2xx().Match(output) is { Success: true } n ? long.Parse(n.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new WrkResult(rps, Percentile(output, "50%"), Percentile(output, "99%"), requests, errors, non2xx);
    }

    private static double Percentile(string output, string which)
    {
        var m = Regex.Match(output, $@"^\s+{Regex.Escape(which)}\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        if (!m.Success) return double.NaN;
        var value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "us" => value / 1000, "s" => value * 1000, _ => value };
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex Requests();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrors();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex Non2xx();

    public static double PercentileOf(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToList();
        var index = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Count - 1)];
    }
}
