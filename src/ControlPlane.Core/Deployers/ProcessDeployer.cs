using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ControlPlane.Core.Deployments;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// Runs each slot as a local process on a loopback port (bare metal, VMs, the built-in demo). The processes outlive
/// ControlPlane: they run in their own session, write to <c>&lt;slot&gt;.log</c> rather than to a pipe of ours, and are
/// recorded in <c>&lt;DataDirectory&gt;/slots/&lt;app&gt;/&lt;slot&gt;.json</c>, so a restarted ControlPlane adopts or replaces them.
/// </summary>
public sealed class ProcessDeployer(
    IOptions<ControlPlaneOptions> options,
    IHttpClientFactory httpClientFactory,
    ILogger<ProcessDeployer> logger,
    TimeProvider timeProvider) : ISlotDeployer
{
    public const string KindName = "process";
    public const string HttpClientName = "ControlPlane.ProcessDeployer";

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(300);
    /// <summary>
    /// A starting process is probed in place (the caller's pass and lease held), every <see cref="StartPoll"/>, for at most this
    /// long: most processes answer within it, and a pass per probe would add its scheduling to the start.
    /// </summary>
    private static readonly TimeSpan StartWaitInPlace = TimeSpan.FromSeconds(5);
    /// <summary>
    /// A refused loopback connect costs well under a millisecond, so probing this often for the few seconds of a start is cheap,
    /// and a process is seen healthy at most this late (a 300 ms interval cost up to 300 ms per release).
    /// </summary>
    private static readonly TimeSpan StartPoll = TimeSpan.FromMilliseconds(15);
    /// <summary>Exit polling for a process we did not start in this run (adopted after a restart): one /proc read each time.</summary>
    private static readonly TimeSpan AdoptedExitPoll = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);
    private const long MaxLogBytes = 1024 * 1024;
    private const string LaunchIdVariable = "CONTROLPLANE_LAUNCH_ID";

    private static readonly JsonSerializerOptions RecordJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    // Process-wide: only the OS process that started a child can learn its exit code, and one slot is driven by one caller at a time.
    private static readonly ConcurrentDictionary<int, Process> Children = new();
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> SlotLocks = new(StringComparer.Ordinal);

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) =>
        ProcessDeployerSettings.TryParse(settings, out _);

    public Uri EndpointOf(DeployerBinding binding, Slot slot) =>
        new($"http://127.0.0.1:{SettingsOf(binding).PortOf(slot)}/");

    public async Task<SlotDeployResult> DeployAsync(DeployerBinding binding, Slot slot, string version, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        var errors = ProcessDeployerSettings.TryParse(binding.Settings, out var settings);
        if (settings is null)
            return SlotDeployResult.Failed("Invalid process deployer settings: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")));

        var paths = PathsOf(binding.Application, slot);
        var launch = Launch.Resolve(settings, binding.Application, slot, version);
        using var slotLock = await LockAsync(paths.State, cancellationToken);

        var record = ReadRecord(paths.State);
        if (record is not null)
        {
            var alive = PosixProcess.IsAlive(record);
            if (alive && record.Fingerprint == launch.Fingerprint)
                return await ConvergeAsync(record, settings, slot, paths, cancellationToken);

            if (!alive && record.Fingerprint == launch.Fingerprint && record.ReadyAt is null)
            {
                // Started for exactly this and died before ever being healthy: report it once, and let a later call start afresh.
                var message = $"The {slot.Name()} process for {version} (pid {record.Pid}) {ExitInfo(record.Pid)} before becoming healthy.{LogTail(record.LogPath)}";
                DeleteRecord(paths.State, record.Pid);
                logger.LogWarning("Deploying {Version} to {App}/{Slot} failed: process {Pid} exited before becoming healthy",
                    version, binding.Application, slot.Name(), record.Pid);
                return SlotDeployResult.Failed(message);
            }

            var reason = !alive ? "its recorded process is no longer running"
                : record.Version != version ? $"it runs {record.Version}"
                : "its command line, environment or port changed";
            logger.LogInformation("Replacing {App}/{Slot} (pid {Pid}) with {Version}: {Reason}",
                binding.Application, slot.Name(), record.Pid, version, reason);
            await TerminateAsync(record, cancellationToken);
            DeleteRecord(paths.State, record.Pid);
        }

        return await StartAsync(launch, settings, binding.Application, slot, paths, cancellationToken);
    }

    public async Task<SlotObservation> ObserveAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        var settings = SettingsOf(binding);
        var paths = PathsOf(binding.Application, slot);
        // Under the slot lock: a record read mid-spawn is only an intent and must not be mistaken for a stale one.
        using var slotLock = await LockAsync(paths.State, cancellationToken);
        var record = ReadRecord(paths.State);
        if (record is null)
        {
            var stray = await ProbeAsync(settings.PortOf(slot), settings.HealthPath, cancellationToken);
            return stray.Answered
                ? new SlotObservation(true, stray.Version, stray.Healthy,
                    $"Something answers on port {settings.PortOf(slot)}, but ControlPlane has no record of starting it.")
                : new SlotObservation(false, null, false, "Nothing runs on this slot.");
        }
        if (!PosixProcess.IsAlive(record))
            return new SlotObservation(false, record.Version, false,
                $"The recorded process for {record.Version} (pid {record.Pid}) {ExitInfo(record.Pid)}.");

        var probe = await ProbeAsync(record.Port, settings.HealthPath, cancellationToken);
        return new SlotObservation(true, probe.Version ?? record.Version, probe.Healthy,
            probe.Healthy ? $"Process {record.Pid} runs {probe.Version ?? record.Version} and is healthy."
                : $"Process {record.Pid} runs {record.Version} but is not healthy: {probe.Detail}.");
    }

    public async Task StopAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        var paths = PathsOf(binding.Application, slot);
        using var slotLock = await LockAsync(paths.State, cancellationToken);
        await StopRecordedAsync(paths.State, cancellationToken);
    }

    /// <summary>
    /// Stops every slot process recorded under the data directory, for every application. The host calls it on graceful
    /// shutdown so that nothing is left running; after a crash the processes keep running and are adopted instead.
    /// </summary>
    public async Task StopAllAsync(CancellationToken cancellationToken)
    {
        var slotsDirectory = Path.Combine(options.Value.FullDataDirectory, "slots");
        if (!Directory.Exists(slotsDirectory))
            return;
        var stops = Directory.EnumerateFiles(slotsDirectory, "*.json", SearchOption.AllDirectories).Select(async statePath =>
        {
            using var slotLock = await LockAsync(statePath, cancellationToken);
            await StopRecordedAsync(statePath, cancellationToken);
        });
        await Task.WhenAll(stops);
    }

    private async Task StopRecordedAsync(string statePath, CancellationToken cancellationToken)
    {
        var record = ReadRecord(statePath);
        if (record is null)
            return;
        if (PosixProcess.IsAlive(record))
        {
            logger.LogInformation("Stopping {App}/{Slot} {Version} (pid {Pid})", record.Application, record.Slot, record.Version, record.Pid);
            await TerminateAsync(record, cancellationToken);
        }
        DeleteRecord(statePath, record.Pid);
    }

    private async Task<SlotDeployResult> ConvergeAsync(
        SlotProcessRecord record, ProcessDeployerSettings settings, Slot slot, SlotPaths paths, CancellationToken cancellationToken)
    {
        var probe = await ProbeAsync(record.Port, settings.HealthPath, cancellationToken);
        var healthy = probe.Healthy && (probe.Version is null || probe.Version == record.Version);
        if (!healthy && record.ReadyAt is null)
            (probe, healthy) = await WaitForFirstHealthAsync(record, settings, probe, cancellationToken);
        if (healthy)
        {
            if (record.ReadyAt is null)
                WriteRecord(paths.State, record with { ReadyAt = timeProvider.GetUtcNow() });
            return SlotDeployResult.Ready($"The {slot.Name()} slot runs {record.Version} (pid {record.Pid}) and is healthy on port {record.Port}.");
        }

        var detail = probe.Healthy ? $"its health endpoint reports version {probe.Version}" : probe.Detail;
        if (record.ReadyAt is not null)
        {
            // It was healthy once and is not now: converge by restarting it rather than waiting on it.
            logger.LogWarning("Restarting {App}/{Slot} (pid {Pid}): it was healthy but now {Detail}", record.Application, slot.Name(), record.Pid, detail);
            await TerminateAsync(record, cancellationToken);
            DeleteRecord(paths.State, record.Pid);
            return await StartAsync(Launch.Resolve(settings, record.Application, slot, record.Version), settings, record.Application, slot, paths, cancellationToken);
        }

        var deadline = record.StartedAt + settings.StartTimeout;
        if (timeProvider.GetUtcNow() < deadline)
            return SlotDeployResult.Pending($"Waiting for the {slot.Name()} process (pid {record.Pid}) to become healthy: {detail}.", PollInterval);

        // Timed out: stop it so that a later attempt starts afresh instead of meeting the same expired deadline.
        var tail = LogTail(record.LogPath);
        logger.LogWarning("Deploying {Version} to {App}/{Slot} failed: not healthy within {Timeout}s ({Detail})",
            record.Version, record.Application, slot.Name(), settings.StartTimeoutSeconds, detail);
        await TerminateAsync(record, cancellationToken);
        DeleteRecord(paths.State, record.Pid);
        return SlotDeployResult.Failed(
            $"The {slot.Name()} process for {record.Version} (pid {record.Pid}) did not become healthy within {settings.StartTimeoutSeconds}s: {detail}.{tail}");
    }

    private async Task<SlotDeployResult> StartAsync(
        Launch launch, ProcessDeployerSettings settings, string application, Slot slot, SlotPaths paths, CancellationToken cancellationToken)
    {
        var port = settings.PortOf(slot);
        if (await IsPortInUseAsync(port, cancellationToken))
        {
            logger.LogWarning("Not starting {App}/{Slot}: port {Port} is already in use by another process", application, slot.Name(), port);
            return SlotDeployResult.Failed(
                $"Port {port} (the {slot.Name()} slot's port) is already in use by a process ControlPlane did not start for this slot. " +
                $"Stop it or choose another {slot.Name()}Port.");
        }
        if (settings.WorkingDirectory is { } workingDirectory && !Directory.Exists(workingDirectory))
            return SlotDeployResult.Failed($"The working directory '{workingDirectory}' does not exist.");

        Directory.CreateDirectory(paths.Directory);
        var now = timeProvider.GetUtcNow();
        PrepareLog(paths.Log, $"--- {now:O} ControlPlane starts {application}/{slot.Name()} {launch.Version} on port {port}: {launch.CommandLine}");

        // The intent is on disk before the process exists, so a crash between the spawn and the final record cannot orphan it.
        var launchId = Guid.NewGuid().ToString("N");
        var pidFile = PidFileOf(paths.State);
        var ownSession = DetachedProcess.OwnSession;
        WriteRecord(paths.State, new SlotProcessRecord(application, slot.Name(), launch.Version, 0, "", ownSession, port,
            launch.Fingerprint, paths.Log, now, null, launchId));

        Process process;
        try
        {
            // Only what the settings name (plus a minimal base): never ControlPlane's configuration or secrets.
            process = DetachedProcess.Start(launch.Command, launch.Arguments, settings.WorkingDirectory, paths.Log, pidFile,
                launch.Environment.Append(new(LaunchIdVariable, launchId)), "controlplane-slot");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            DeleteRecord(paths.State, 0);
            return SlotDeployResult.Failed($"Could not start the {slot.Name()} process: {e.Message}");
        }
        Children[process.Id] = process;

        // An empty identity never matches a live process: one that exited at once is then reported by the next call.
        var record = new SlotProcessRecord(application, slot.Name(), launch.Version, process.Id,
            PosixProcess.StartIdentityOf(process.Id) ?? "", ownSession, port, launch.Fingerprint, paths.Log, now, null, launchId);
        WriteRecord(paths.State, record);
        logger.LogInformation("Started {App}/{Slot} {Version} as pid {Pid} on port {Port}", application, slot.Name(), launch.Version, process.Id, port);
        // Waits in place for the first health answer (bounded); a crash meanwhile leaves the record, which the next call adopts.
        return await ConvergeAsync(record, settings, slot, paths, cancellationToken);
    }

    /// <summary>
    /// Probes a process that has not been healthy yet, every <see cref="StartPoll"/>, until it answers, exits, reaches its start
    /// deadline or <see cref="StartWaitInPlace"/> has passed; the caller then reports as for one probe.
    /// </summary>
    private async Task<(HealthProbe Probe, bool Healthy)> WaitForFirstHealthAsync(
        SlotProcessRecord record, ProcessDeployerSettings settings, HealthProbe probe, CancellationToken cancellationToken)
    {
        var held = Stopwatch.StartNew();
        var deadline = record.StartedAt + settings.StartTimeout;
        var delay = StartPoll;
        while (held.Elapsed + delay < StartWaitInPlace && timeProvider.GetUtcNow() + delay < deadline && PosixProcess.IsAlive(record))
        {
            await Task.Delay(delay, cancellationToken);
            probe = await ProbeAsync(record.Port, settings.HealthPath, cancellationToken);
            if (probe.Healthy && (probe.Version is null || probe.Version == record.Version)) return (probe, true);
        }
        return (probe, false);
    }

    private async Task TerminateAsync(SlotProcessRecord record, CancellationToken cancellationToken)
    {
        PosixProcess.Signal(record, PosixProcess.SigTerm);
        if (await WaitForExitAsync(record, StopGrace, cancellationToken))
            return;
        logger.LogWarning("{App}/{Slot} (pid {Pid}) did not stop within {Seconds}s of SIGTERM; killing it",
            record.Application, record.Slot, record.Pid, StopGrace.TotalSeconds);
        PosixProcess.Signal(record, PosixProcess.SigKill);
        if (!await WaitForExitAsync(record, TimeSpan.FromSeconds(5), cancellationToken))
            throw new InvalidOperationException($"Process {record.Pid} of {record.Application}/{record.Slot} survived SIGKILL.");
    }

    private async Task<bool> WaitForExitAsync(SlotProcessRecord record, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Our own child: the runtime reaps it and completes the wait at its exit, with no polling delay.
        if (Children.TryGetValue(record.Pid, out var child))
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(timeout);
            try
            {
                await child.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return !PosixProcess.IsAlive(record);
            }
            catch (InvalidOperationException)
            {
                // Not waitable after all (disposed meanwhile): fall back to polling below.
            }
        }
        var deadline = timeProvider.GetUtcNow() + timeout;
        while (PosixProcess.IsAlive(record))
        {
            if (timeProvider.GetUtcNow() >= deadline)
                return false;
            await Task.Delay(AdoptedExitPoll, timeProvider, cancellationToken);
        }
        return true;
    }

    private async Task<HealthProbe> ProbeAsync(int port, string healthPath, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            var client = httpClientFactory.CreateClient(HttpClientName);
            using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{port}{healthPath}"), timeout.Token);
            if (!response.IsSuccessStatusCode)
                return new HealthProbe(true, false, null, $"{healthPath} answered HTTP {(int)response.StatusCode}");
            return new HealthProbe(true, true, VersionIn(await response.Content.ReadAsStringAsync(timeout.Token)), "healthy");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new HealthProbe(false, false, null, $"{healthPath} did not answer within {ProbeTimeout.TotalSeconds}s");
        }
        catch (HttpRequestException e)
        {
            return new HealthProbe(false, false, null, $"{healthPath} is not reachable ({e.Message})");
        }
    }

    private static string? VersionIn(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("version", out var version)
                && version.ValueKind == JsonValueKind.String ? version.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static async Task<bool> IsPortInUseAsync(int port, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await socket.ConnectAsync(System.Net.IPAddress.Loopback, port, timeout.Token);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return true; // something holds the port but does not accept: it is not free for us either
        }
    }

    private static string ExitInfo(int pid)
    {
        if (Children.TryGetValue(pid, out var child) && child.HasExited)
        {
            var code = child.ExitCode;
            // .NET reports death by signal N as 128 + N.
            return code > 128 ? $"was killed by signal {code - 128}" : $"exited with code {code}";
        }
        return "is no longer running (its exit code is unknown: ControlPlane restarted since it started)";
    }

    private static string LogTail(string logPath, int lines = 20)
    {
        try
        {
            using var stream = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            stream.Seek(Math.Max(0, stream.Length - 8192), SeekOrigin.Begin);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var text = reader.ReadToEnd();
            var tail = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(lines);
            return $"\nLast lines of {logPath}:\n" + string.Join('\n', tail);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"\n(The log {logPath} could not be read: {e.Message})";
        }
    }

    private static void PrepareLog(string logPath, string header)
    {
        var log = new FileInfo(logPath);
        if (log.Exists && log.Length > MaxLogBytes)
            log.MoveTo(logPath + ".1", overwrite: true);
        File.AppendAllText(logPath, header + "\n");
    }

    private SlotProcessRecord? ReadRecord(string statePath)
    {
        try
        {
            var record = JsonSerializer.Deserialize<SlotProcessRecord>(File.ReadAllText(statePath), RecordJson);
            return record is { Pid: 0, LaunchId: { } launchId } ? CompleteIntent(statePath, record, launchId) : record;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (JsonException e)
        {
            logger.LogWarning(e, "Ignoring the unreadable slot record {Path}", statePath);
            return null;
        }
    }

    /// <summary>
    /// ControlPlane stopped between writing the intent and recording the PID. The process (if it got that far) wrote its
    /// own PID file; its environment carries the launch id, which also rules out a reused PID.
    /// </summary>
    private SlotProcessRecord? CompleteIntent(string statePath, SlotProcessRecord intent, string launchId)
    {
        try
        {
            if (int.TryParse(File.ReadAllText(PidFileOf(statePath)).Trim(), out var pid) &&
                PosixProcess.HasEnvironment(pid, LaunchIdVariable, launchId) && PosixProcess.StartIdentityOf(pid) is { } identity)
            {
                var found = intent with { Pid = pid, StartIdentity = identity };
                WriteRecord(statePath, found);
                logger.LogInformation("Found {App}/{Slot} {Version} (pid {Pid}), started just before ControlPlane stopped",
                    intent.Application, intent.Slot, intent.Version, pid);
                return found;
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { }
        // The spawn never happened, or that process is gone: nothing runs for this intent.
        File.Delete(statePath);
        return null;
    }

    private static string PidFileOf(string statePath) => Path.ChangeExtension(statePath, ".pid");

    /// <summary>
    /// Replaces the record whole (a temporary file renamed over it), so a ControlPlane that dies mid-write leaves the old record
    /// or the new one, and the kernel keeps either for the restarted process. Not flushed to the disk: only a crash of the
    /// machine loses an unflushed record, and that crash also ends every process the record could describe (the next start
    /// finds no record, or one whose process is gone). A flush cost 3–20 ms, twice on the way from the spawn to Ready.
    /// </summary>
    private static void WriteRecord(string statePath, SlotProcessRecord record)
    {
        var temporary = $"{statePath}.{Guid.NewGuid():N}.tmp";
        using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            JsonSerializer.Serialize(stream, record, RecordJson);
        File.Move(temporary, statePath, overwrite: true);
    }

    private static void DeleteRecord(string statePath, int pid)
    {
        File.Delete(statePath);
        if (Children.TryRemove(pid, out var child))
            child.Dispose();
    }

    private static async Task<IDisposable> LockAsync(string statePath, CancellationToken cancellationToken)
    {
        var gate = SlotLocks.GetOrAdd(statePath, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        return new Releaser(gate);
    }

    private SlotPaths PathsOf(string application, Slot slot)
    {
        var directory = Path.Combine(options.Value.FullDataDirectory, "slots", SafeFileName(application));
        return new SlotPaths(directory, Path.Combine(directory, slot.Name() + ".json"), Path.Combine(directory, slot.Name() + ".log"));
    }

    private static string SafeFileName(string application)
    {
        var safe = new string(application.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return safe.Trim('.') is { Length: > 0 } ? safe : "_" + safe;
    }

    private static ProcessDeployerSettings SettingsOf(DeployerBinding binding)
    {
        var errors = ProcessDeployerSettings.TryParse(binding.Settings, out var settings);
        return settings ?? throw new ArgumentException(
            $"Invalid process deployer settings for {binding.Application}: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")),
            nameof(binding));
    }

    private sealed record SlotPaths(string Directory, string State, string Log);

    private sealed record HealthProbe(bool Answered, bool Healthy, string? Version, string Detail);

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }

    /// <summary>The command line and environment for one version on one slot, placeholders substituted.</summary>
    private sealed record Launch(string Version, string Command, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment, string Fingerprint)
    {
        public string CommandLine => string.Join(' ', Arguments.Prepend(Command).Select(a => a.Contains(' ') ? $"\"{a}\"" : a));

        public static Launch Resolve(ProcessDeployerSettings settings, string application, Slot slot, string version)
        {
            var port = settings.PortOf(slot);
            string Substitute(string template) => ProcessDeployerSettings.Substitute(template, application, slot, version, port);
            var arguments = settings.Arguments.Select(Substitute).ToArray();
            var environment = settings.Environment.ToDictionary(pair => pair.Key, pair => Substitute(pair.Value), StringComparer.Ordinal);

            var identity = new StringBuilder()
                .Append(version).Append('\0').Append(port.ToString(CultureInfo.InvariantCulture)).Append('\0')
                .Append(settings.Command).Append('\0').Append(settings.WorkingDirectory).Append('\0');
            foreach (var argument in arguments)
                identity.Append(argument).Append('\0');
            foreach (var (name, value) in environment.OrderBy(pair => pair.Key, StringComparer.Ordinal))
                identity.Append(name).Append('=').Append(value).Append('\0');
            var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity.ToString())))[..16];
            return new Launch(version, settings.Command, arguments, environment, fingerprint);
        }
    }
}
