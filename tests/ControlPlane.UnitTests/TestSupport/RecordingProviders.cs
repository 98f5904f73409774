using System.Collections.Concurrent;
using System.Text.Json;
using ControlPlane.Core;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;

namespace ControlPlane.UnitTests.TestSupport;

/// <summary>
/// One log of every call the fakes received, in order, as short strings ("router switch shop green") — what tests assert on,
/// like Argo's <c>expectPatchServiceAction</c>.
/// </summary>
public sealed class CallLog
{
    private readonly ConcurrentQueue<string> _calls = new();
    public void Add(string call) => _calls.Enqueue(call);
    public IReadOnlyList<string> Calls => [.. _calls];
    public IReadOnlyList<string> Of(string application) => [.. _calls.Where(c => c.Split(' ').ElementAtOrDefault(2) == application)];
}

/// <summary>A router that records what it is asked and keeps the live slot per application; faults are scripted per test.</summary>
public sealed class RecordingRouter(CallLog log, string kind = "embedded") : ITrafficRouter
{
    private readonly ConcurrentDictionary<string, Slot> _live = new();
    private readonly ConcurrentDictionary<string, string> _versions = new();

    public string Kind => kind;

    /// <summary>What a request through the data plane sees on a slot (version), unless told otherwise.</summary>
    public void Serves(string application, Slot slot, string version) => _versions[$"{application}/{slot}"] = version;

    /// <summary>When set, the data plane answers this instead of what is on the slot (a broken router).</summary>
    public Func<string, Slot, DataPlaneVerification?>? VerifyOverride { get; set; }

    /// <summary>Thrown by the next switch of an application (then forgotten): a fault or a crash in the middle of a flip.</summary>
    public ConcurrentDictionary<string, Exception> FailNextSwitch { get; } = new();

    public Slot? LiveOf(string application) => _live.TryGetValue(application, out var s) ? s : null;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => [];

    public Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken)
    {
        log.Add($"router attach {binding.Application} {liveSlot.Name()}");
        _live.TryAdd(binding.Application, liveSlot);
        return Task.FromResult(new Uri($"http://{binding.Application}.recording.invalid/"));
    }

    public Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken) => Task.FromResult(LiveOf(binding.Application));

    public Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken)
    {
        if (FailNextSwitch.TryRemove(binding.Application, out var ex))
        {
            log.Add($"router switch-failed {binding.Application} {target.Name()}");
            throw ex;
        }
        log.Add($"router switch {binding.Application} {target.Name()}");
        _live[binding.Application] = target;
        return Task.CompletedTask;
    }

    public Task<DataPlaneVerification> VerifyDataPlaneAsync(RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        log.Add($"router verify {binding.Application} {expectedSlot.Name()} {expectedVersion}");
        if (VerifyOverride?.Invoke(binding.Application, expectedSlot) is { } forced) return Task.FromResult(forced);
        var live = LiveOf(binding.Application);
        var version = live is { } s && _versions.TryGetValue($"{binding.Application}/{s}", out var v) ? v : null;
        return Task.FromResult(live == expectedSlot && version == expectedVersion
            ? DataPlaneVerification.Ok($"answered {version} from {expectedSlot.Name()}")
            : DataPlaneVerification.Fail($"answered {version ?? "nothing"} from {live?.Name() ?? "no slot"}"));
    }

    public Task DetachAsync(string application, CancellationToken cancellationToken)
    {
        log.Add($"router detach {application}");
        _live.TryRemove(application, out _);
        return Task.CompletedTask;
    }
}

/// <summary>A deployer that records what it is asked; slots become ready at once unless a gate holds an application's deploys.</summary>
public sealed class RecordingDeployer(CallLog log, RecordingRouter router, string kind = "process") : ISlotDeployer
{
    private readonly ConcurrentDictionary<string, SlotObservation> _slots = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new();

    public string Kind => kind;

    /// <summary>Deploys of <paramref name="application"/> block until the returned source is completed (a deliberately slow deployer).</summary>
    public TaskCompletionSource Hold(string application) => _gates.GetOrAdd(application, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));

    public void Observe(string application, Slot slot, SlotObservation observation) => _slots[$"{application}/{slot}"] = observation;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => [];

    /// <summary>Endpoints a test serves for a slot (<c>app/Blue</c>); others get a port nothing listens on.</summary>
    public ConcurrentDictionary<string, Uri> Endpoints { get; } = new();

    public Uri EndpointOf(DeployerBinding binding, Slot slot) =>
        Endpoints.TryGetValue($"{binding.Application}/{slot}", out var served) ? served : new($"http://127.0.0.1:{(slot == Slot.Blue ? 9 : 10)}/");

    public async Task<SlotDeployResult> DeployAsync(DeployerBinding binding, Slot slot, string version, CancellationToken cancellationToken)
    {
        log.Add($"deployer deploy {binding.Application} {slot.Name()} {version}");
        if (_gates.TryGetValue(binding.Application, out var gate))
        {
            await gate.Task.WaitAsync(cancellationToken);
            log.Add($"deployer deploy-released {binding.Application} {slot.Name()} {version}");
        }
        Observe(binding.Application, slot, new SlotObservation(true, version, true, $"{version} healthy"));
        router.Serves(binding.Application, slot, version);
        return SlotDeployResult.Ready($"{version} on {slot.Name()} ready");
    }

    public Task<SlotObservation> ObserveAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        log.Add($"deployer observe {binding.Application} {slot.Name()}");
        return Task.FromResult(_slots.TryGetValue($"{binding.Application}/{slot}", out var o) ? o : new SlotObservation(false, null, false, "nothing runs"));
    }

    /// <summary>Thrown by the next stop of an application (then forgotten): a stop that fails and is retried later.</summary>
    public ConcurrentDictionary<string, Exception> FailNextStop { get; } = new();

    public Task StopAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        if (FailNextStop.TryRemove(binding.Application, out var ex))
        {
            log.Add($"deployer stop-failed {binding.Application} {slot.Name()}");
            throw ex;
        }
        log.Add($"deployer stop {binding.Application} {slot.Name()}");
        _slots[$"{binding.Application}/{slot}"] = new SlotObservation(false, null, false, "stopped");
        return Task.CompletedTask;
    }
}
