using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Core;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace ControlPlane.IntegrationTests.Deployers;

/// <summary>Drives real slot processes (the real demo app, or small shell commands) through the process deployer.</summary>
public sealed class ProcessDeployerTests : IAsyncLifetime
{
    private static readonly string DemoDll = DemoAppLocator.Find()
        ?? throw new InvalidOperationException("ControlPlane.DemoApp.dll was not found; build the solution first.");

    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "cp-process-deployer-" + Guid.NewGuid().ToString("N"));
    private readonly ServiceProvider _services = new ServiceCollection().AddHttpClient().BuildServiceProvider();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly HashSet<int> _seenPids = [];
    private readonly int _bluePort;
    private readonly int _greenPort;

    public ProcessDeployerTests() => (_bluePort, _greenPort) = FreePorts();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        try
        {
            await NewDeployer().StopAllAsync(CancellationToken.None);
        }
        finally
        {
            foreach (var pid in _seenPids.Where(IsRunning))
                KillHard(pid);
            _http.Dispose();
            await _services.DisposeAsync();
            if (Directory.Exists(_dataDirectory))
                Directory.Delete(_dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task Deploy_starts_the_demo_app_in_its_own_session_logging_to_the_slot_log()
    {
        var deployer = NewDeployer();
        var binding = DemoBinding();

        // The first call waits in place (bounded) for the first health answer: Ready, or Pending on a machine slower than the wait.
        var first = await deployer.DeployAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.NotEqual(SlotDeployStatus.Failed, first.Status);
        var pid = RecordedPid(Slot.Blue);
        Assert.True(File.Exists(StatePath(Slot.Blue)), "the state file is written before DeployAsync returns");

        var result = await DeployUntilSettledAsync(deployer, binding, Slot.Blue, "1.0.0");

        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.Equal(new Uri($"http://127.0.0.1:{_bluePort}/"), deployer.EndpointOf(binding, Slot.Blue));
        Assert.Equal("""{"app":"demo-shop","version":"1.0.0","slot":"blue"}""",
            await _http.GetStringAsync(deployer.EndpointOf(binding, Slot.Blue), Ct));
        Assert.Equal(pid, RecordedPid(Slot.Blue));
        Assert.Contains("ControlPlane.DemoApp.dll", File.ReadAllText($"/proc/{pid}/cmdline"));
        // Survives ControlPlane: leads its own session, and its output goes to the log file rather than a pipe of ours.
        Assert.Equal(pid.ToString(), StatField(pid, 6));
        Assert.Equal(LogPath(Slot.Blue), new FileInfo($"/proc/{pid}/fd/1").LinkTarget);
        Assert.Equal(LogPath(Slot.Blue), new FileInfo($"/proc/{pid}/fd/2").LinkTarget);
    }

    [Fact]
    public async Task Deploying_another_version_replaces_the_process()
    {
        var deployer = NewDeployer();
        var binding = DemoBinding();
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(deployer, binding, Slot.Blue, "1.0.0")).Status);
        var oldPid = RecordedPid(Slot.Blue);

        var result = await DeployUntilSettledAsync(deployer, binding, Slot.Blue, "2.0.0");

        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.False(IsRunning(oldPid), "the old version's process is gone");
        Assert.NotEqual(oldPid, RecordedPid(Slot.Blue));
        Assert.Equal("2.0.0", await _http.GetStringAsync($"http://127.0.0.1:{_bluePort}/version", Ct));
    }

    [Fact]
    public async Task A_restarted_control_plane_adopts_the_running_process()
    {
        var binding = DemoBinding();
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(NewDeployer(), binding, Slot.Green, "1.0.0")).Status);
        var pid = RecordedPid(Slot.Green);

        var restarted = NewDeployer();
        var observation = await restarted.ObserveAsync(binding, Slot.Green, Ct);
        var result = await restarted.DeployAsync(binding, Slot.Green, "1.0.0", Ct);

        Assert.Equal(new SlotObservation(true, "1.0.0", true, observation.Message), observation);
        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.Equal(pid, RecordedPid(Slot.Green));
        Assert.Equal(new[] { pid }, ProcessesServing(_greenPort));
    }

    [Fact]
    public async Task A_process_spawned_just_before_a_crash_is_found_through_its_own_pid_file()
    {
        var binding = DemoBinding();
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(NewDeployer(), binding, Slot.Green, "1.0.0")).Status);
        var pid = RecordedPid(Slot.Green);
        // Rewind the record to the intent written before the spawn, as if ControlPlane died before recording the PID.
        var record = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(StatePath(Slot.Green)))!;
        Assert.False(string.IsNullOrEmpty((string?)record["launchId"]));
        record["pid"] = 0;
        record["startIdentity"] = "";
        File.WriteAllText(StatePath(Slot.Green), record.ToJsonString());

        var result = await NewDeployer().DeployAsync(binding, Slot.Green, "1.0.0", Ct);

        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.Equal(pid, RecordedPid(Slot.Green));
        Assert.Equal(new[] { pid }, ProcessesServing(_greenPort));
    }

    [Fact]
    public async Task An_intent_whose_process_never_started_is_dropped_and_the_slot_starts_afresh()
    {
        var binding = DemoBinding();
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(NewDeployer(), binding, Slot.Blue, "1.0.0")).Status);
        var pid = RecordedPid(Slot.Blue);
        await NewDeployer().StopAsync(binding, Slot.Blue, Ct);
        // An intent left behind with no process (ControlPlane died before the spawn) must not block the slot.
        var intent = new { application = "demo-shop", slot = "blue", version = "1.0.0", pid = 0, startIdentity = "", ownSession = true,
            port = _bluePort, fingerprint = "x", logPath = LogPath(Slot.Blue), startedAt = DateTimeOffset.UtcNow, readyAt = (DateTimeOffset?)null, launchId = "never-spawned" };
        File.WriteAllText(StatePath(Slot.Blue), System.Text.Json.JsonSerializer.Serialize(intent));

        var result = await DeployUntilSettledAsync(NewDeployer(), binding, Slot.Blue, "1.0.0");

        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.NotEqual(pid, RecordedPid(Slot.Blue));
    }

    [Fact]
    public async Task A_dead_recorded_process_is_replaced()
    {
        var binding = DemoBinding();
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(NewDeployer(), binding, Slot.Blue, "1.0.0")).Status);
        var deadPid = RecordedPid(Slot.Blue);
        KillHard(deadPid);

        var restarted = NewDeployer();
        var observation = await restarted.ObserveAsync(binding, Slot.Blue, Ct);
        var result = await DeployUntilSettledAsync(restarted, binding, Slot.Blue, "1.0.0");

        Assert.False(observation.Running);
        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        Assert.NotEqual(deadPid, RecordedPid(Slot.Blue));
        Assert.Equal("1.0.0", await _http.GetStringAsync($"http://127.0.0.1:{_bluePort}/version", Ct));
    }

    [Fact]
    public async Task A_command_that_exits_at_once_fails_with_its_exit_code_and_log_tail()
    {
        var deployer = NewDeployer();
        var binding = Binding(new { command = "/bin/sh", arguments = new[] { "-c", "echo cannot start {version} on {port} >&2; exit 3" } });

        var result = await DeployUntilSettledAsync(deployer, binding, Slot.Blue, "1.2.3");

        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.Contains("exited with code 3", result.Message);
        Assert.Contains($"cannot start 1.2.3 on {_bluePort}", result.Message);
        Assert.False(File.Exists(StatePath(Slot.Blue)), "a failed start leaves no record, so a later attempt starts afresh");
    }

    [Fact]
    public async Task A_missing_command_fails_with_the_shell_error_in_the_log_tail()
    {
        var result = await DeployUntilSettledAsync(NewDeployer(), Binding(new { command = "no-such-command-cp" }), Slot.Blue, "1.0.0");

        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.Contains("exited with code 127", result.Message);
        Assert.Contains("no-such-command-cp: not found", result.Message);
    }

    [Fact]
    public async Task A_process_that_never_becomes_healthy_fails_after_the_start_timeout_and_is_stopped()
    {
        var deployer = NewDeployer();
        var binding = Binding(new { command = "/bin/sh", arguments = new[] { "-c", "echo still warming up; exec sleep 60" }, startTimeoutSeconds = 1 });

        var result = await DeployUntilSettledAsync(deployer, binding, Slot.Blue, "1.0.0");

        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.Contains("did not become healthy within 1s", result.Message);
        Assert.Contains("still warming up", result.Message);
        Assert.DoesNotContain(_seenPids, IsRunning);
    }

    [Fact]
    public async Task A_port_taken_by_a_foreign_listener_fails_naming_the_port()
    {
        using var foreign = new TcpListener(IPAddress.Loopback, _bluePort);
        foreign.Start();

        var result = await NewDeployer().DeployAsync(DemoBinding(), Slot.Blue, "1.0.0", Ct);

        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.Contains($"Port {_bluePort}", result.Message);
        Assert.False(File.Exists(StatePath(Slot.Blue)), "nothing was started");
    }

    [Fact]
    public async Task StopAsync_kills_the_process_and_frees_the_port()
    {
        var deployer = NewDeployer();
        var binding = DemoBinding();
        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(deployer, binding, Slot.Blue, "1.0.0")).Status);
        var pid = RecordedPid(Slot.Blue);

        await deployer.StopAsync(binding, Slot.Blue, Ct);

        Assert.False(IsRunning(pid));
        Assert.True(await ReapedAsync(pid), "the stopped process is reaped, not left a zombie");
        Assert.False(IsListening(_bluePort));
        Assert.False(File.Exists(StatePath(Slot.Blue)));
        Assert.False((await deployer.ObserveAsync(binding, Slot.Blue, Ct)).Running);
        await deployer.StopAsync(binding, Slot.Blue, Ct); // nothing runs: a no-op
    }

    [Fact]
    public async Task StopAllAsync_stops_every_recorded_slot_of_every_application()
    {
        var deployer = NewDeployer();
        var (otherBlue, otherGreen) = FreePorts();
        var shop = DemoBinding();
        var other = DemoBinding("other-app", otherBlue, otherGreen);
        await Task.WhenAll(
            DeployUntilSettledAsync(deployer, shop, Slot.Blue, "1.0.0"),
            DeployUntilSettledAsync(deployer, shop, Slot.Green, "2.0.0"),
            DeployUntilSettledAsync(deployer, other, Slot.Blue, "3.0.0"));
        var pids = _seenPids.ToArray();
        Assert.Equal(3, pids.Count(IsRunning));

        await NewDeployer().StopAllAsync(Ct);

        Assert.DoesNotContain(pids, IsRunning);
        Assert.False(IsListening(_bluePort) || IsListening(_greenPort) || IsListening(otherBlue));
    }

    [Fact]
    public async Task Environment_values_get_placeholders_substituted()
    {
        var binding = Binding(new
        {
            command = DemoAppLocator.DotnetHost(),
            arguments = new[] { DemoDll, "--urls", "http://127.0.0.1:{port}" },
            environment = new Dictionary<string, string> { ["DEMO_VERSION"] = "{version}", ["DEMO_SLOT"] = "{slot}", ["DEMO_APP"] = "{app}" },
        });

        Assert.Equal(SlotDeployStatus.Ready, (await DeployUntilSettledAsync(NewDeployer(), binding, Slot.Green, "4.5.6")).Status);

        Assert.Equal("""{"app":"demo-shop","version":"4.5.6","slot":"green"}""", await _http.GetStringAsync($"http://127.0.0.1:{_greenPort}/", Ct));
    }

    [Fact]
    public async Task Demo_fail_verify_version_deploys_but_its_root_answers_500()
    {
        var result = await DeployUntilSettledAsync(NewDeployer(), DemoBinding(), Slot.Green, "2.0.0-fail-verify");

        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        using var root = await _http.GetAsync($"http://127.0.0.1:{_greenPort}/", Ct);
        Assert.Equal(HttpStatusCode.InternalServerError, root.StatusCode);
        Assert.Equal("""{"error":"demo: this version fails verification"}""", await root.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Demo_fail_monitor_version_breaks_after_the_switch_probe_through_the_router()
    {
        var result = await DeployUntilSettledAsync(NewDeployer(), DemoBinding(), Slot.Green, "2.1.0-fail-monitor");
        Assert.Equal(SlotDeployStatus.Ready, result.Status);
        var root = $"http://127.0.0.1:{_greenPort}/";

        // The pre-switch checks call the slot directly; the switch's data-plane probe comes through the router.
        using var direct = await _http.GetAsync(root, Ct);
        using var proxiedRequest = new HttpRequestMessage(HttpMethod.Get, root)
        {
            Headers = { { "X-Forwarded-For", "127.0.0.1" }, { ControlPlane.Core.Routing.DataPlaneProbe.ProbeHeader, "data-plane" } },
        };
        using var proxied = await _http.SendAsync(proxiedRequest, Ct);
        using var after = await _http.GetAsync(root, Ct);
        using var health = await _http.GetAsync($"http://127.0.0.1:{_greenPort}/healthz", Ct);

        Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        Assert.Equal(HttpStatusCode.OK, proxied.StatusCode);
        Assert.Equal("2.1.0-fail-monitor", (await proxied.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("version").GetString());
        Assert.Equal(HttpStatusCode.InternalServerError, after.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public void ValidateSettings_accepts_good_settings()
    {
        Assert.Empty(NewDeployer().ValidateSettings(DemoBinding().Settings));
    }

    [Fact]
    public void ValidateSettings_names_each_bad_field()
    {
        var settings = JsonSerializer.SerializeToElement(new
        {
            command = " ",
            bluePort = 0,
            greenPort = 0,
            healthPath = "healthz",
            startTimeoutSeconds = 601,
            bluport = 5101,
        });

        var errors = NewDeployer().ValidateSettings(settings);

        Assert.Equal(new[] { "bluePort", "bluport", "command", "greenPort", "healthPath", "startTimeoutSeconds" }, errors.Select(e => e.Field).Order());
    }

    [Fact]
    public void ValidateSettings_rejects_equal_ports_wrong_types_and_non_objects()
    {
        var deployer = NewDeployer();

        var samePorts = deployer.ValidateSettings(JsonSerializer.SerializeToElement(new { command = "x", bluePort = 5101, greenPort = 5101 }));
        var wrongType = deployer.ValidateSettings(JsonSerializer.SerializeToElement(new { command = "x", bluePort = "high", greenPort = 5102 }));
        var notObject = deployer.ValidateSettings(JsonSerializer.SerializeToElement(new[] { 1 }));

        Assert.Equal(new[] { new SettingsError("greenPort", "must differ from bluePort") }, samePorts);
        Assert.Equal("bluePort", Assert.Single(wrongType).Field);
        Assert.Single(notObject);
    }

    private ProcessDeployer NewDeployer() => new(
        Options.Create(new ControlPlaneOptions { DataDirectory = _dataDirectory }),
        _services.GetRequiredService<IHttpClientFactory>(),
        NullLogger<ProcessDeployer>.Instance,
        TimeProvider.System);

    private DeployerBinding DemoBinding(string app = "demo-shop", int? bluePort = null, int? greenPort = null) =>
        Binding(new
        {
            command = DemoAppLocator.DotnetHost(),
            arguments = new[] { DemoDll, "--urls", "http://127.0.0.1:{port}", "--version", "{version}", "--slot", "{slot}", "--app", "{app}" },
        }, app, bluePort, greenPort);

    /// <summary>Ports, health path and timeout default to this test's; the command part comes from <paramref name="command"/>.</summary>
    private DeployerBinding Binding(object command, string app = "demo-shop", int? bluePort = null, int? greenPort = null)
    {
        var settings = JsonSerializer.SerializeToNode(command)!.AsObject();
        settings.TryAdd("bluePort", bluePort ?? _bluePort);
        settings.TryAdd("greenPort", greenPort ?? _greenPort);
        settings.TryAdd("healthPath", "/healthz");
        settings.TryAdd("startTimeoutSeconds", 30);
        return new DeployerBinding(app, JsonSerializer.SerializeToElement(settings));
    }

    private async Task<SlotDeployResult> DeployUntilSettledAsync(ProcessDeployer deployer, DeployerBinding binding, Slot slot, string version)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        while (true)
        {
            var result = await deployer.DeployAsync(binding, slot, version, limit.Token);
            if (File.Exists(StatePath(slot, binding.Application)))
                lock (_seenPids)
                    _seenPids.Add(RecordedPid(slot, binding.Application));
            if (result.Status != SlotDeployStatus.Pending)
                return result;
            await Task.Delay(result.RetryAfter, limit.Token);
        }
    }

    private string StatePath(Slot slot, string app = "demo-shop") => Path.Combine(_dataDirectory, "slots", app, slot.Name() + ".json");

    private string LogPath(Slot slot, string app = "demo-shop") => Path.Combine(_dataDirectory, "slots", app, slot.Name() + ".log");

    private int RecordedPid(Slot slot, string app = "demo-shop") =>
        JsonDocument.Parse(File.ReadAllText(StatePath(slot, app))).RootElement.GetProperty("pid").GetInt32();

    private static (int, int) FreePorts()
    {
        var first = new TcpListener(IPAddress.Loopback, 0);
        var second = new TcpListener(IPAddress.Loopback, 0);
        first.Start();
        second.Start();
        var ports = (((IPEndPoint)first.LocalEndpoint).Port, ((IPEndPoint)second.LocalEndpoint).Port);
        first.Stop();
        second.Stop();
        return ports;
    }

    /// <summary>Field <paramref name="number"/> (1-based, as in proc(5)) of <c>/proc/&lt;pid&gt;/stat</c>; from field 3 on.</summary>
    private static string StatField(int pid, int number)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[number - 3];
    }

    /// <summary>Alive and not a zombie.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            return StatField(pid, 3) is not ("Z" or "X");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task<bool> ReapedAsync(int pid)
    {
        for (var i = 0; i < 50 && Directory.Exists($"/proc/{pid}"); i++)
            await Task.Delay(100, Ct);
        return !Directory.Exists($"/proc/{pid}");
    }

    private static void KillHard(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            process.Kill();
            process.WaitForExit(TimeSpan.FromSeconds(10));
        }
        catch (ArgumentException)
        {
            // already gone
        }
    }

    private static bool IsListening(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Every process whose command line serves on <paramref name="port"/>, found independently of the deployer's records.</summary>
    private static int[] ProcessesServing(int port) =>
        Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(name => name!.All(char.IsAsciiDigit))
            .Select(name => int.Parse(name!))
            .Where(pid =>
            {
                try
                {
                    return IsRunning(pid) && File.ReadAllText($"/proc/{pid}/cmdline").Contains($"http://127.0.0.1:{port}\0");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return false;
                }
            })
            .ToArray();
}
