using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>
/// ControlPlane as a real OS process (the built ControlPlane.Web.dll), so tests can kill -9 it and start it again on the
/// same database and data directory. Without a connection string it runs its own embedded PostgreSQL in the data directory.
/// </summary>
public sealed class ControlPlaneProcess : IAsyncDisposable
{
    public const string AdminToken = "crash-test-admin-token";
    public const string InitialAdminPassword = "crash-test-initial-admin-password";
    private readonly string? _connectionString;
    private readonly StringBuilder _output = new();
    private Process? _process;

    /// <param name="dataDirectory">Shared by replicas on one host (slot process records live there); a fresh one when null.</param>
    public ControlPlaneProcess(string? connectionString, string? dataDirectory = null)
    {
        _connectionString = connectionString;
        Port = FreePort();
        DataDirectory = dataDirectory ?? Directory.CreateTempSubdirectory("cp-crash-").FullName;
    }

    /// <summary>Whether a clean stop also stops slot and router processes (ControlPlane's default is to leave them serving).</summary>
    public bool StopOnShutdown { get; init; } = true;

    /// <summary>More environment variables for the ControlPlane process (configuration, as a user would set it).</summary>
    public Dictionary<string, string> Environment { get; } = [];

    public int Port { get; }
    public int? Pid => _process?.Id;
    public string DataDirectory { get; }
    public Uri BaseAddress => new($"http://127.0.0.1:{Port}/");
    public string Output { get { lock (_output) return _output.ToString(); } }

    public async Task StartAsync()
    {
        var web = LocateWebAssembly();
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(web)!, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(web);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(BaseAddress.ToString().TrimEnd('/'));
        if (_connectionString is not null) start.Environment["ConnectionStrings__ControlPlane"] = _connectionString;
        start.Environment["ControlPlane__DataDirectory"] = DataDirectory;
        start.Environment["ControlPlane__Demo__Enabled"] = "false";
        start.Environment["ControlPlane__Bootstrap__AdminToken"] = AdminToken;
        start.Environment["ControlPlane__Identity__InitialAdminPassword"] = InitialAdminPassword;
        start.Environment["ControlPlane__Runtime__StopOnShutdown"] = StopOnShutdown ? "true" : "false";
        foreach (var (name, value) in Environment) start.Environment[name] = value;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Logging__LogLevel__Microsoft.EntityFrameworkCore"] = "Warning";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        // Generous: a loaded 2-core machine can take most of a minute to start the app; this bounds a hang, it times nothing.
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) Assert.Fail($"ControlPlane exited with {_process.ExitCode} while starting:\n{Output}");
            try
            {
                if ((await http.GetAsync(new Uri(BaseAddress, "healthz"))).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        Assert.Fail($"ControlPlane did not answer /healthz within 120 s:\n{Output}");
    }

    /// <summary>SIGKILL: no shutdown code runs, slot processes and leases are left exactly as they were.</summary>
    public async Task KillHardAsync()
    {
        if (_process is null) return;
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    /// <summary>The embedded PostgreSQL's PGDATA (when started without a connection string).</summary>
    public string EmbeddedPostgresDirectory => Path.Combine(DataDirectory, "postgres");

    /// <summary>Runs pg_ctl on the machine's PostgreSQL binaries, as the postgres user when we are root (as ControlPlane does).</summary>
    public static async Task<(int ExitCode, string Output)> PgCtlAsync(params string[] arguments)
    {
        var pgCtl = Directory.Exists("/usr/lib/postgresql")
            ? Directory.EnumerateDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin", "pg_ctl")).Where(File.Exists).OrderDescending().FirstOrDefault()
            : null;
        pgCtl ??= "pg_ctl";
        var start = System.Environment.UserName == "root"
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", pgCtl, .. arguments])
            : new ProcessStartInfo(pgCtl, arguments);
        start.RedirectStandardOutput = start.RedirectStandardError = true;
        start.WorkingDirectory = "/";
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }

    /// <summary>SIGTERM, as Ctrl+C or a service manager would, and wait for the process to exit.</summary>
    public async Task StopGracefullyAsync()
    {
        if (_process is null) return;
        using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await _process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { Assert.Fail($"ControlPlane did not stop within 30 s of SIGTERM:\n{Output}"); }
        _process.Dispose();
        _process = null;
    }

    /// <summary>PIDs of the processes ControlPlane recorded under its data directory (slot processes and router processes).</summary>
    public IReadOnlyList<int> RecordedProcesses()
    {
        var pids = new List<int>();
        foreach (var folder in new[] { "slots", "routers" })
        {
            var root = Path.Combine(DataDirectory, folder);
            if (!Directory.Exists(root)) continue;
            foreach (var file in Directory.EnumerateFiles(root, "*.json", SearchOption.AllDirectories))
            {
                try
                {
                    using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
                    if (json.RootElement.TryGetProperty("pid", out var pid) && pid.GetInt32() > 0 && Directory.Exists($"/proc/{pid.GetInt32()}"))
                        pids.Add(pid.GetInt32());
                }
                catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException) { }
            }
        }
        return pids;
    }

    public HttpClient Admin()
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }

    /// <summary>PIDs of demo slot processes serving this application (by their command line).</summary>
    public static IReadOnlyList<(int Pid, string Slot)> SlotProcesses(string application)
    {
        var found = new List<(int, string)>();
        // This checkout's demo app only: another checkout's tests on the same machine may use the same application names.
        var demoApp = Core.Deployers.DemoAppLocator.Find();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string[] args;
            try { args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0'); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            var app = Array.IndexOf(args, "--app");
            var slot = Array.IndexOf(args, "--slot");
            if (app >= 0 && app + 1 < args.Length && args[app + 1] == application && slot >= 0 && slot + 1 < args.Length
                && args.Contains(demoApp, StringComparer.Ordinal))
                found.Add((pid, args[slot + 1]));
        }
        return found;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string LocateWebAssembly()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug"; // bin/<Configuration>/net10.0
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "ControlPlane.Web", "bin", configuration, "net10.0", "ControlPlane.Web.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("ControlPlane.Web.dll was not found next to the sources; build the solution first.");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            // A clean stop: with StopOnShutdown ControlPlane stops its slot processes and routers itself.
            using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await _process.WaitForExitAsync(timeout.Token); } catch (OperationCanceledException) { _process.Kill(); }
        }
        _process?.Dispose();
        // Whatever still runs (left serving on purpose, or after a kill -9): the test started it, the test stops it.
        foreach (var pid in RecordedProcesses())
        {
            using var kill = Process.Start("kill", ["-KILL", "--", "-" + pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
        }
        if (_connectionString is null && File.Exists(Path.Combine(EmbeddedPostgresDirectory, "postmaster.pid")))
            await PgCtlAsync("stop", "-m", "immediate", "-D", EmbeddedPostgresDirectory);
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
