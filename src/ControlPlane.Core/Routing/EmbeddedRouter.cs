using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Routing;

/// <summary>
/// The <c>embedded</c> router: per application, a small process of its own (<c>ControlPlane.Router</c>, YARP) that forwards
/// every request to the live slot. ControlPlane starts it in its own session, records it under
/// <c>&lt;DataDirectory&gt;/routers/&lt;app&gt;/</c> and adopts it after its own restart, so the public URL keeps serving while
/// ControlPlane is stopped, crashed, upgraded or without its database. The route is set and read back over an authenticated
/// loopback control channel, compare-and-swap on the route's revision; the router swaps one immutable route reference, so
/// a switch takes effect for the next request while requests in flight finish on the slot they started on.
/// </summary>
public sealed class EmbeddedRouter : ITrafficRouter, ITrafficMeasuringRouter, IAsyncDisposable
{
    public const string KindName = "embedded";

    private const string RecordFile = "router.json";
    private const string PidFile = "router.pid";
    private const string LogFile = "router.log";
    private const string LockFile = "router.lock";
    private const string SecretFile = "control.secret";
    private const string RouteFile = "route.json";
    private const string EndpointsFile = "endpoints.json";
    private const string LaunchIdVariable = "CONTROLPLANE_LAUNCH_ID";

    /// <summary>
    /// The runtime settings the router process is started with (besides its launch id); the side-by-side benchmark starts it
    /// with the same. Socket completions run on the socket engine's threads instead of being queued to the thread pool: all
    /// the router's work after a socket completes is non-blocking (parsing, copying, handing to the other socket), and the
    /// hop to a pool thread cost a wake-up and a context switch per completion (profiled under wrk: +10–12 % throughput,
    /// docs/benchmarks.md). The control channel's application code (the fsync of a route) still runs on the thread pool.
    /// </summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> ProcessEnvironment =
        [new("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1")];
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(12);
    private static readonly TimeSpan SuperviseEvery = TimeSpan.FromSeconds(1);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    // Process-wide like the slot locks: one application's router is started, stopped or switched by one caller at a time.
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Locks = new(StringComparer.Ordinal);

    private readonly DataPlaneProbe probe;
    private readonly IOptions<ControlPlaneOptions> options;
    private readonly ILogger logger;
    private readonly HttpClient control = new(new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(2) })
    {
        Timeout = TimeSpan.FromSeconds(5),
    };
    // Applications attached through this instance: their router processes are restarted here if they die.
    private readonly ConcurrentDictionary<string, bool> supervised = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource stopping = new();
    private Task? supervisor;

    /// <param name="probe">Used by <see cref="VerifyDataPlaneAsync"/> against the public URL.</param>
    /// <param name="options">The data directory (records, routes, secrets, logs) and where <c>ControlPlane.Router.dll</c> is.</param>
    public EmbeddedRouter(DataPlaneProbe probe, IOptions<ControlPlaneOptions> options, ILoggerFactory? loggerFactory = null)
    {
        this.probe = probe;
        this.options = options;
        logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<EmbeddedRouter>();
    }

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => EmbeddedRouterSettings.Validate(settings);

    public string DescribeSwitch(RouterBinding binding, Slot from, Slot to)
    {
        var settings = EmbeddedRouterSettings.Parse(binding.Settings);
        var port = settings.ListenPort != 0 ? settings.ListenPort : ReadRecord(binding.Application)?.ListenPort;
        return $"The embedded router on {settings.ListenAddress}:{(port is null or 0 ? "(its port)" : port)} forwards new requests " +
               $"to {to.Name()} ({binding.EndpointOf(to)}) instead of {from.Name()} ({binding.EndpointOf(from)}); requests in flight finish on {from.Name()}.";
    }

    /// <summary>
    /// Adopts the application's running router process when it serves these settings (its route keeps its live slot; only the
    /// slot endpoints are brought up to date, and the caller reconciles the live slot with its records), otherwise starts one
    /// on the configured port — or, for port 0, on the port it was given before — serving <paramref name="liveSlot"/>.
    /// </summary>
    public async Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken)
    {
        var settings = EmbeddedRouterSettings.Parse(binding.Settings);
        using var held = await LockAsync(binding.Application, cancellationToken);
        var record = ReadRecord(binding.Application);
        if (record is not null && IsAlive(record))
        {
            if (IsServing(record) && Serves(record, settings))
            {
                var route = await GetRouteAsync(record, cancellationToken);
                var wanted = new RouteState((route?.Live ?? liveSlot.Name()), binding.BlueEndpoint.AbsoluteUri, binding.GreenEndpoint.AbsoluteUri, route?.Revision ?? 0);
                if (route is null || route.Blue != wanted.Blue || route.Green != wanted.Green)
                    await PutRouteAsync(record, wanted, route?.Revision ?? 0, cancellationToken);
                Supervise(binding.Application);
                logger.LogInformation("Embedded router for {Application} (pid {Pid}) already serves {PublicUrl}, traffic on {Slot}",
                    binding.Application, record.Pid, PublicUrl(record), wanted.Live);
                return PublicUrl(record);
            }
            logger.LogInformation("Embedded router for {Application} restarts: it listens on {Old} but the settings say {New}",
                binding.Application, $"{record.ListenAddress}:{record.ListenPort}", $"{settings.ListenAddress}:{settings.ListenPort}");
            await TerminateAsync(record, cancellationToken);
        }

        // A port chosen once is kept: a stored 0 means "the port this router was given before", so the URL never changes.
        // A new one comes from below the kernel's ephemeral range, where no outgoing connection can take it while the router is down.
        var port = settings.ListenPort != 0 ? settings.ListenPort
            : record is not null && record.ListenAddress == settings.ListenAddress && record.ListenPort != 0 ? record.ListenPort
            : LoopbackPorts.PickForLater();
        var previous = ReadRoute(binding.Application);
        WriteRoute(binding.Application, new RouteState(liveSlot.Name(), binding.BlueEndpoint.AbsoluteUri, binding.GreenEndpoint.AbsoluteUri,
            (previous?.Revision ?? 0) + 1));
        var started = await StartAsync(binding.Application, settings.ListenAddress, port, cancellationToken, settings.MeasureTraffic);
        Supervise(binding.Application);
        logger.LogInformation("Embedded router for {Application} listens on {PublicUrl} (pid {Pid}) and sends traffic to {Slot} ({Endpoint})",
            binding.Application, PublicUrl(started), started.Pid, liveSlot.Name(), binding.EndpointOf(liveSlot));
        return PublicUrl(started);
    }

    public async Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken)
    {
        var record = ReadRecord(binding.Application);
        if (record is null || !IsServing(record))
            return null;
        try
        {
            return await GetRouteAsync(record, cancellationToken) is { } route ? SlotOf(route.Live) : null;
        }
        catch (RouterException ex)
        {
            logger.LogWarning("Cannot read the embedded router's route for {Application}: {Reason}", binding.Application, ex.Message);
            return null;
        }
    }

    /// <summary>Per-slot requests, 5xx answers and latency histogram the router measured (TrafficMeter in ControlPlane.Router); null when it does not run.</summary>
    public async Task<RouterTraffic?> ReadTrafficAsync(RouterBinding binding, CancellationToken cancellationToken)
    {
        if (ReadRecord(binding.Application) is not { } record || !IsServing(record)) return null;
        using var request = ControlRequest(record, HttpMethod.Get, null, "/traffic");
        using var response = await SendAsync(record, request, cancellationToken);
        EnsureControlSuccess(record, response);
        return await response.Content.ReadFromJsonAsync<RouterTraffic>(Json, cancellationToken);
    }

    /// <summary>The application's running router process, or null.</summary>
    public RouterProcessRecord? ProcessOf(string application) =>
        ReadRecord(application) is { } record && IsServing(record) ? record : null;

    /// <summary>The public URL of an application whose router process runs, or null.</summary>
    public Uri? PublicUrlOf(string application) =>
        ReadRecord(application) is { } record && IsServing(record) ? PublicUrl(record) : null;

    public async Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken)
    {
        var record = ReadRecord(binding.Application);
        if (record is null || !IsServing(record))
            throw new RouterException($"The embedded router for {binding.Application} is not running, so it cannot switch traffic to {target.Name()}.");

        // Compare-and-swap on the route's revision, so a concurrent re-attach (new endpoints) is never overwritten by a stale copy.
        for (var attempt = 0; ; attempt++)
        {
            var current = await GetRouteAsync(record, cancellationToken);
            if (current is not null && current.Live == target.Name())
            {
                logger.LogDebug("Embedded router for {Application} already sends traffic to {Slot}", binding.Application, target.Name());
                return;
            }
            var next = current is null
                ? new RouteState(target.Name(), binding.BlueEndpoint.AbsoluteUri, binding.GreenEndpoint.AbsoluteUri, 0)
                : current with { Live = target.Name() };
            if (await PutRouteAsync(record, next, current?.Revision ?? 0, cancellationToken) is { } applied)
            {
                logger.LogInformation("Embedded router for {Application} now sends traffic to {Slot} ({Endpoint})",
                    binding.Application, target.Name(), applied.LiveEndpoint);
                return;
            }
            if (attempt >= 20)
                throw new RouterException($"The embedded router for {binding.Application} kept changing its route; the switch to {target.Name()} was not applied.");
        }
    }

    public Task<DataPlaneVerification> VerifyDataPlaneAsync(
        RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        var record = ReadRecord(binding.Application);
        if (record is null || !IsServing(record))
            return Task.FromResult(DataPlaneVerification.Fail($"The embedded router for {binding.Application} is not running: nothing serves its public URL."));
        return probe.VerifyAsync(PublicUrl(record), binding.VerifyPath, expectedSlot, expectedVersion, cancellationToken);
    }

    /// <summary>Stops the application's router process (an explicit act: the application is removed) and forgets its route.</summary>
    public async Task DetachAsync(string application, CancellationToken cancellationToken)
    {
        supervised.TryRemove(application, out _);
        using var held = await LockAsync(application, cancellationToken);
        var record = ReadRecord(application);
        if (record is not null)
        {
            await TerminateAsync(record, cancellationToken);
            logger.LogInformation("Embedded router for {Application} stopped (it listened on {PublicUrl})", application, PublicUrl(record));
        }
        foreach (var file in (string[])[RecordFile, RouteFile, EndpointsFile, PidFile])
            File.Delete(Path.Combine(DirectoryOf(application), file));
    }

    /// <summary>Stops every recorded router process (opt-in shutdown behaviour; see <c>ControlPlane:Runtime:StopOnShutdown</c>).</summary>
    public async Task StopAllAsync(CancellationToken cancellationToken)
    {
        var root = Path.Combine(options.Value.FullDataDirectory, "routers");
        if (!Directory.Exists(root))
            return;
        foreach (var directory in Directory.EnumerateDirectories(root))
        {
            if (ReadRecordAt(Path.Combine(directory, RecordFile)) is { } record)
                await DetachAsync(record.Application, cancellationToken);
        }
    }

    /// <summary>Stops supervising; the router processes keep serving (they are stopped only by <see cref="DetachAsync"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        if (supervisor is not null)
            await supervisor.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        control.Dispose();
    }

    private void Supervise(string application)
    {
        supervised[application] = true;
        lock (supervised)
            supervisor ??= Task.Run(SuperviseAsync);
    }

    /// <summary>A router process that died is started again on its recorded port with the last route it was given — without the database.</summary>
    private async Task SuperviseAsync()
    {
        using var timer = new PeriodicTimer(SuperviseEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping.Token))
            {
                foreach (var application in supervised.Keys)
                {
                    try
                    {
                        var record = ReadRecord(application);
                        if (record is null || IsAlive(record))
                            continue;
                        using var held = await LockAsync(application, stopping.Token);
                        record = ReadRecord(application);
                        if (record is null || IsAlive(record) || !supervised.ContainsKey(application))
                            continue;
                        logger.LogWarning("Embedded router for {Application} (pid {Pid}) is no longer running; starting it again on {Address}:{Port}",
                            application, record.Pid, record.ListenAddress, record.ListenPort);
                        await StartAsync(application, record.ListenAddress, record.ListenPort, stopping.Token, record.MeasureTraffic);
                    }
                    catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception ex)
                    {
                        logger.LogError("Could not restart the embedded router for {Application}: {Reason}; trying again", application, ex.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
    }

    /// <summary>Starts the router process on <paramref name="port"/> (0: any) with the route on disk; waits until it listens. Holds the lock.</summary>
    private async Task<RouterProcessRecord> StartAsync(string application, string address, int port, CancellationToken cancellationToken, bool measureTraffic = true)
    {
        var dll = RouterLocator.Find(options.Value.RouterPath)
            ?? throw new RouterException("The embedded router's executable ControlPlane.Router.dll was not found: build the solution, " +
                                         "or set ControlPlane:RouterPath to the dll or its folder.");
        var directory = DirectoryOf(application);
        EnsureSecret(directory);
        using var crossProcess = await LockDirectoryAsync(directory, cancellationToken);
        var endpointsPath = Path.Combine(directory, EndpointsFile);
        File.Delete(endpointsPath);
        var logPath = Path.Combine(directory, LogFile);
        var listen = new IPEndPoint(IPAddress.Parse(address), port).ToString();
        await File.AppendAllTextAsync(logPath, $"--- {DateTimeOffset.UtcNow:O} ControlPlane starts the router for {application} on {listen}{Environment.NewLine}", cancellationToken);

        // The intent is recorded before the spawn; the process writes its own PID file, so a crash in between cannot orphan it.
        var launchId = Guid.NewGuid().ToString("N");
        var intent = new RouterProcessRecord(application, 0, "", DetachedProcess.OwnSession, address, port, 0, logPath, DateTimeOffset.UtcNow, launchId, measureTraffic);
        WriteRecord(application, intent);
        var process = DetachedProcess.Start(DemoAppLocator.DotnetHost(), [dll, "--app", application, "--listen", listen, "--state", directory, "--measure-traffic", measureTraffic ? "true" : "false"],
            directory, logPath, Path.Combine(directory, PidFile), [new(LaunchIdVariable, launchId), .. ProcessEnvironment], "controlplane-router");
        var identity = PosixProcess.StartIdentityOf(process.Id) ?? "";
        WriteRecord(application, intent with { Pid = process.Id, StartIdentity = identity });

        var deadline = DateTimeOffset.UtcNow + StartTimeout;
        while (true)
        {
            if (ReadJson<RouterEndpoints>(endpointsPath) is { } endpoints && endpoints.Pid == process.Id)
            {
                var record = intent with { Pid = process.Id, StartIdentity = identity, ListenPort = endpoints.PublicPort, ControlPort = endpoints.ControlPort };
                WriteRecord(application, record);
                process.Dispose();
                return record;
            }
            if (process.HasExited || DateTimeOffset.UtcNow > deadline)
            {
                var log = LogTail(logPath);
                if (!process.HasExited)
                    PosixProcess.Signal(process.Id, identity, DetachedProcess.OwnSession, PosixProcess.SigKill);
                process.Dispose();
                File.Delete(Path.Combine(directory, RecordFile));
                var reason = log.Contains("address already in use", StringComparison.OrdinalIgnoreCase) ? $"port {port} is already in use"
                    : DateTimeOffset.UtcNow > deadline ? $"it did not listen within {StartTimeout.TotalSeconds:0} s" : "it exited";
                throw new RouterException(
                    $"The embedded router for {application} cannot listen on {listen}: {reason}. " +
                    $"Change router.settings.{EmbeddedRouterSettings.ListenPortField} (0 picks a free port) or stop what uses the port.{log}");
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    private async Task TerminateAsync(RouterProcessRecord record, CancellationToken cancellationToken)
    {
        if (!IsAlive(record))
            return;
        PosixProcess.Signal(record.Pid, record.StartIdentity, record.OwnSession, PosixProcess.SigTerm);
        var deadline = DateTimeOffset.UtcNow + StopGrace;
        while (IsAlive(record) && DateTimeOffset.UtcNow < deadline)
            await Task.Delay(50, cancellationToken);
        if (IsAlive(record))
        {
            logger.LogWarning("Embedded router for {Application} (pid {Pid}) did not stop within {Seconds} s of SIGTERM; killing it",
                record.Application, record.Pid, StopGrace.TotalSeconds);
            PosixProcess.Signal(record.Pid, record.StartIdentity, record.OwnSession, PosixProcess.SigKill);
            while (IsAlive(record))
                await Task.Delay(50, cancellationToken);
        }
    }

    private async Task<RouteState?> GetRouteAsync(RouterProcessRecord record, CancellationToken cancellationToken)
    {
        using var request = ControlRequest(record, HttpMethod.Get, null);
        using var response = await SendAsync(record, request, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
            return null;
        EnsureControlSuccess(record, response);
        return await response.Content.ReadFromJsonAsync<RouteState>(Json, cancellationToken);
    }

    /// <summary>The applied route, or null when the router's revision had moved on (the caller reads again and retries).</summary>
    private async Task<RouteState?> PutRouteAsync(RouterProcessRecord record, RouteState route, long expectedRevision, CancellationToken cancellationToken)
    {
        using var request = ControlRequest(record, HttpMethod.Put,
            JsonContent.Create(new { live = route.Live, blue = route.Blue, green = route.Green, expectedRevision }, options: Json));
        using var response = await SendAsync(record, request, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Conflict)
            return null;
        EnsureControlSuccess(record, response);
        return await response.Content.ReadFromJsonAsync<RouteState>(Json, cancellationToken);
    }

    private HttpRequestMessage ControlRequest(RouterProcessRecord record, HttpMethod method, HttpContent? content, string path = "/route")
    {
        var request = new HttpRequestMessage(method, new Uri($"http://127.0.0.1:{record.ControlPort}{path}")) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ReadSecret(record.Application));
        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(RouterProcessRecord record, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return await control.SendAsync(request, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException || ex is TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new RouterException($"The embedded router for {record.Application} (pid {record.Pid}) did not answer on its control channel: {ex.Message}", ex);
        }
    }

    private static void EnsureControlSuccess(RouterProcessRecord record, HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
            throw new RouterException($"The embedded router for {record.Application} (pid {record.Pid}) refused the control request: HTTP {(int)response.StatusCode}.");
    }

    private static bool Serves(RouterProcessRecord record, EmbeddedRouterSettings wanted) =>
        wanted.ListenAddress == record.ListenAddress && (wanted.ListenPort == 0 || wanted.ListenPort == record.ListenPort) &&
        wanted.MeasureTraffic == record.MeasureTraffic;

    private static bool IsAlive(RouterProcessRecord record) => PosixProcess.IsAlive(record.Pid, record.StartIdentity);

    /// <summary>Alive and listening (its control port known); a router still starting up does not serve yet.</summary>
    private static bool IsServing(RouterProcessRecord record) => record.ControlPort != 0 && IsAlive(record);

    private static Slot? SlotOf(string name) => name switch { "blue" => Slot.Blue, "green" => Slot.Green, _ => null };

    private static Uri PublicUrl(RouterProcessRecord record)
    {
        // A wildcard address is reachable on loopback from this machine; other addresses are used as they are.
        var address = IPAddress.Parse(record.ListenAddress);
        var host = address.Equals(IPAddress.Any) ? IPAddress.Loopback
            : address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
            : address;
        return new Uri($"http://{new IPEndPoint(host, record.ListenPort)}/");
    }

    private string DirectoryOf(string application)
    {
        var safe = new string(application.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return Path.Combine(options.Value.FullDataDirectory, "routers", safe.Trim('.') is { Length: > 0 } ? safe : "_" + safe);
    }

    /// <summary>The control channel's secret: random per router, readable only by this user (0600), never in an environment or command line.</summary>
    private static void EnsureSecret(string directory)
    {
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
            else Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var path = Path.Combine(directory, SecretFile);
        if (File.Exists(path) && File.ReadAllText(path).Trim().Length >= 32)
            return;
        File.Delete(path);
        var stream = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            stream.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var writer = new StreamWriter(path, Encoding.UTF8, stream);
        writer.Write(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
    }

    private string ReadSecret(string application) => File.ReadAllText(Path.Combine(DirectoryOf(application), SecretFile)).Trim();

    private RouterProcessRecord? ReadRecord(string application) => ReadRecordAt(Path.Combine(DirectoryOf(application), RecordFile));

    private RouterProcessRecord? ReadRecordAt(string path)
    {
        var record = ReadJson<RouterProcessRecord>(path);
        if (record is not null && record.Pid != 0 && record.ControlPort == 0 &&
            ReadJson<RouterEndpoints>(Path.Combine(Path.GetDirectoryName(path)!, EndpointsFile)) is { } listening && listening.Pid == record.Pid)
            return record with { ListenPort = listening.PublicPort, ControlPort = listening.ControlPort }; // listens; its starter stopped before recording it
        if (record is null || record.Pid != 0 || record.LaunchId is null)
            return record;
        // ControlPlane stopped between recording the intent and the PID: the process's own PID file and launch id find it.
        var pidFile = Path.Combine(Path.GetDirectoryName(path)!, PidFile);
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) &&
            PosixProcess.HasEnvironment(pid, LaunchIdVariable, record.LaunchId) && PosixProcess.StartIdentityOf(pid) is { } identity)
        {
            var found = record with { Pid = pid, StartIdentity = identity };
            if (ReadJson<RouterEndpoints>(Path.Combine(Path.GetDirectoryName(path)!, EndpointsFile)) is { } endpoints && endpoints.Pid == pid)
                found = found with { ListenPort = endpoints.PublicPort, ControlPort = endpoints.ControlPort };
            logger.LogInformation("Found the embedded router for {Application} (pid {Pid}), started just before ControlPlane stopped", record.Application, pid);
            return found;
        }
        return record;
    }

    private void WriteRecord(string application, RouterProcessRecord record) =>
        WriteAtomically(Path.Combine(DirectoryOf(application), RecordFile), JsonSerializer.Serialize(record, Json));

    private RouteState? ReadRoute(string application) => ReadJson<RouteState>(Path.Combine(DirectoryOf(application), RouteFile));

    private void WriteRoute(string application, RouteState route)
    {
        Directory.CreateDirectory(DirectoryOf(application));
        WriteAtomically(Path.Combine(DirectoryOf(application), RouteFile), JsonSerializer.Serialize(route, Json));
    }

    private static T? ReadJson<T>(string path) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    private static void WriteAtomically(string path, string content)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(Encoding.UTF8.GetBytes(content));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    private static string LogTail(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(Math.Max(0, stream.Length - 2048), SeekOrigin.Begin);
            var tail = new StreamReader(stream).ReadToEnd().Trim();
            return tail.Length == 0 ? "" : $"{Environment.NewLine}Router log ({path}):{Environment.NewLine}{tail}";
        }
        catch (IOException)
        {
            return "";
        }
    }

    private async Task<IDisposable> LockAsync(string application, CancellationToken cancellationToken)
    {
        var gate = Locks.GetOrAdd(DirectoryOf(application), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        return new Releaser(gate);
    }

    /// <summary>Another ControlPlane process on this host (a second replica sharing the data directory) must not start the same router.</summary>
    private static async Task<IDisposable> LockDirectoryAsync(string directory, CancellationToken cancellationToken)
    {
        var deadline = DateTimeOffset.UtcNow + StartTimeout;
        while (true)
        {
            try
            {
                return new FileStream(Path.Combine(directory, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTimeOffset.UtcNow < deadline)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }

    /// <summary>The route as the router process holds and persists it.</summary>
    private sealed record RouteState(string Live, string Blue, string Green, long Revision)
    {
        [System.Text.Json.Serialization.JsonIgnore]
        public string LiveEndpoint => Live == "blue" ? Blue : Green;
    }

    private sealed record RouterEndpoints(int Pid, int PublicPort, int ControlPort);
}

/// <summary>
/// What ControlPlane knows about an application's router process, stored as <c>&lt;DataDirectory&gt;/routers/&lt;app&gt;/router.json</c>
/// so that a restarted ControlPlane adopts it. <see cref="ListenPort"/> is the port actually bound: the one kept for good.
/// </summary>
public sealed record RouterProcessRecord(
    string Application,
    int Pid,
    string StartIdentity,
    bool OwnSession,
    string ListenAddress,
    int ListenPort,
    int ControlPort,
    string LogPath,
    DateTimeOffset StartedAt,
    string? LaunchId = null,
    bool MeasureTraffic = true);
