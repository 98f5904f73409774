using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Checks;

namespace ControlPlane.Core.Deployments;

/// <summary>One service under blue-green control: two slots, a router deciding which is live, and the release policy.</summary>
public sealed class Application : IRecordsAuditEvents
{
    private readonly List<AuditEvent> _pendingAuditEvents = [];

    private Application() { }

    public Guid Id { get; private set; }
    public string Name { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }

    /// <summary>The slot production traffic is recorded on; the router is kept in agreement with it.</summary>
    public Slot LiveSlot { get; private set; }

    public SlotStatus Blue { get; private set; } = new();
    public SlotStatus Green { get; private set; } = new();

    public string RouterKind { get; private set; } = "";
    public string RouterSettings { get; private set; } = "{}";
    public string DeployerKind { get; private set; } = "";
    public string DeployerSettings { get; private set; } = "{}";
    public List<HttpCheck> Checks { get; private set; } = [];
    public ReleasePolicy Policy { get; private set; } = new();

    /// <summary>Lifecycle hooks (preDeploy, preSwitch, postSwitch, postHold) and the schema database; null when none.</summary>
    public Hooks.ApplicationHooks? Hooks { get; private set; }

    /// <summary>Path requested through the router after a switch to prove which version answers.</summary>
    public string VerifyPath { get; private set; } = "/";

    /// <summary>Where users reach the application (reported by the router once attached).</summary>
    public string? PublicUrl { get; private set; }

    /// <summary>
    /// The host whose ControlPlane runs this application's slot processes and embedded router (recorded when they are first
    /// brought up; null until then, or when nothing of it is host-local).
    /// </summary>
    public string? RuntimeHost { get; private set; }

    /// <summary>Until when the previous slot stays warm so a rollback is an instant router flip (null = no rollback possible).</summary>
    public DateTimeOffset? RollbackAvailableUntil { get; private set; }

    /// <summary>When an Admin archived it (null = active). Archived applications keep their history and audit; nothing runs.</summary>
    public DateTimeOffset? ArchivedAt { get; private set; }

    public uint RowVersion { get; private set; }

    public IReadOnlyList<AuditEvent> PendingAuditEvents => _pendingAuditEvents;
    public void ClearPendingAuditEvents() => _pendingAuditEvents.Clear();

    public SlotStatus SlotStatusOf(Slot slot) => slot == Slot.Blue ? Blue : Green;
    public SlotStatus LiveStatus => SlotStatusOf(LiveSlot);
    public string? LiveVersion => LiveStatus.Version;
    public Slot StandbySlot => LiveSlot.Other();

    // Deserialize<JsonElement> returns a self-contained element: nothing to dispose, no pooled buffers left rented.
    public JsonElement RouterSettingsJson => JsonSerializer.Deserialize<JsonElement>(RouterSettings);
    public JsonElement DeployerSettingsJson => JsonSerializer.Deserialize<JsonElement>(DeployerSettings);

    public static Application Register(string name, string routerKind, string routerSettings, string deployerKind,
        string deployerSettings, IEnumerable<HttpCheck> checks, ReleasePolicy policy, string initialVersion, Slot liveSlot,
        string verifyPath, Actor by, DateTimeOffset now, Hooks.ApplicationHooks? hooks = null)
    {
        var app = new Application
        {
            Id = Guid.CreateVersion7(now),
            Name = name,
            CreatedAt = now,
            LiveSlot = liveSlot,
            RouterKind = routerKind,
            RouterSettings = routerSettings,
            DeployerKind = deployerKind,
            DeployerSettings = deployerSettings,
            Checks = [.. checks],
            Policy = policy,
            VerifyPath = verifyPath,
            Hooks = hooks is { IsEmpty: false } ? hooks : null,
        };
        var live = app.SlotStatusOf(liveSlot);
        live.Version = initialVersion;
        live.State = SlotRunState.Starting;
        app.Record(by, "application.registered", now, after: $"{liveSlot.Name()} {initialVersion} live",
            details: JsonSerializer.Serialize(new { routerKind, deployerKind, policy, checks = app.Checks, initialVersion, hooks = app.Hooks }));
        return app;
    }

    /// <summary>
    /// An Admin's edit of what registration set (policy, checks, router, deployer, verify path). Audited as
    /// <c>application.edited</c> with each changed field's before and after; a no-op when nothing changes. A changed router or
    /// deployer is brought up again by the runtime (the public URL is cleared until it reports the new one).
    /// </summary>
    /// <returns>The changed fields (dotted paths), empty when nothing changed.</returns>
    public IReadOnlyList<string> Reconfigure(string routerKind, string routerSettings, string deployerKind, string deployerSettings,
        IEnumerable<HttpCheck> checks, ReleasePolicy policy, string verifyPath, Hooks.ApplicationHooks? hooks, Actor by, DateTimeOffset now, string? reason)
    {
        var before = ConfigurationJson();
        var routerChanged = routerKind != RouterKind || !JsonEquals(routerSettings, RouterSettings);
        var deployerChanged = deployerKind != DeployerKind || !JsonEquals(deployerSettings, DeployerSettings);
        RouterKind = routerKind;
        RouterSettings = routerSettings;
        DeployerKind = deployerKind;
        DeployerSettings = deployerSettings;
        Checks = [.. checks];
        Policy = policy;
        VerifyPath = verifyPath;
        Hooks = hooks is { IsEmpty: false } ? hooks : null;
        var changes = ConfigurationDiff.Between(before, ConfigurationJson());
        if (changes.Count == 0) return [];
        // The runtime brings the application up again with what changed: a router on its new port, slots with the new deployer.
        if (routerChanged || deployerChanged) PublicUrl = null;
        Record(by, "application.edited", now, before: string.Join(", ", changes.Keys), after: routerChanged || deployerChanged ? "runtime brought up again" : "saved",
            reason: reason, details: JsonSerializer.Serialize(new { changes }, ConfigurationDiff.Json));
        return [.. changes.Keys];
    }

    /// <summary>What archiving stops, in words (the confirmation names it, and so does the audit event).</summary>
    public string RuntimeDescription =>
        string.Join(", ", new[] { Slot.Blue, Slot.Green }.Select(s => SlotStatusOf(s) is { } st && st.State != SlotRunState.Stopped
            ? $"slot {s.Name()} ({st.Version ?? "empty"}, {DeployerKind})" : null).OfType<string>()
            .Append($"the {RouterKind} router{(PublicUrl is null ? "" : $" at {PublicUrl}")}"));

    /// <summary>An Admin archives the application: the runtime leader stops its slots and router; its history and audit stay.</summary>
    public void Archive(Actor by, string? reason, DateTimeOffset now)
    {
        if (ArchivedAt is not null) throw DomainException.Conflict($"{Name} was already archived at {ArchivedAt:u}.");
        Record(by, "application.archived", now, before: $"{LiveSlot.Name()} {LiveVersion} live", after: $"archived; stopping {RuntimeDescription}", reason: reason);
        ArchivedAt = now;
        RollbackAvailableUntil = null;
    }

    /// <summary>The runtime stopped what an archived application ran. Returns whether this changed anything.</summary>
    public bool RuntimeStopped(string what, DateTimeOffset now)
    {
        if (ArchivedAt is null || (PublicUrl is null && Blue.State == SlotRunState.Stopped && Green.State == SlotRunState.Stopped)) return false;
        Record(Actor.System, "application.runtime-stopped", now, before: what, after: "nothing runs", reason: "application archived");
        PublicUrl = null;
        foreach (var slot in new[] { Slot.Blue, Slot.Green })
        {
            var st = SlotStatusOf(slot);
            st.State = SlotRunState.Stopped;
            st.Healthy = false;
            st.Message = "stopped: application archived";
            st.ObservedAt = now;
        }
        return true;
    }

    /// <summary>What an edit may change, as one JSON document (the audit diff is taken between two of these).</summary>
    public JsonElement ConfigurationJson() => JsonSerializer.SerializeToElement(new
    {
        router = new { kind = RouterKind, settings = RouterSettingsJson },
        deployer = new { kind = DeployerKind, settings = DeployerSettingsJson },
        checks = Checks,
        policy = Policy,
        verifyPath = VerifyPath,
        hooks = Hooks,
    }, ConfigurationDiff.Json);

    private static bool JsonEquals(string a, string b) =>
        ConfigurationDiff.Between(JsonSerializer.Deserialize<JsonElement>(a), JsonSerializer.Deserialize<JsonElement>(b)).Count == 0;

    /// <summary>Records the slot's observed state; returns whether anything visible changed.</summary>
    public bool ObserveSlot(Slot slot, SlotRunState state, string? version, bool healthy, string? message, DateTimeOffset now)
    {
        var s = SlotStatusOf(slot);
        var changed = s.State != state || s.Version != version || s.Healthy != healthy || s.Message != message;
        // Unchanged observations are not written: every write notifies every open dashboard.
        if (!changed) return false;
        s.State = state;
        s.Version = version;
        s.Healthy = healthy;
        s.Message = message;
        s.ObservedAt = now;
        return true;
    }

    public void AttachedAt(Uri publicUrl, string? runtimeHost, DateTimeOffset now)
    {
        PublicUrl = publicUrl.ToString();
        if (runtimeHost is not null && RuntimeHost != runtimeHost)
        {
            Record(Actor.System, "application.runtime-host", now, before: RuntimeHost, after: runtimeHost,
                reason: "slot processes and router brought up on this host");
            RuntimeHost = runtimeHost;
        }
    }

    /// <summary>
    /// Stores router settings the router resolved itself (an embedded router's <c>listenPort</c> 0 becomes the port it got),
    /// so every restart serves the same URL. Audited; a no-op when nothing changes.
    /// </summary>
    public void PinRouterSettings(string settings, Actor by, DateTimeOffset now, string reason)
    {
        if (settings == RouterSettings) return;
        var before = RouterSettings;
        RouterSettings = settings;
        Record(by, "router.settings-pinned", now, before: before, after: settings, reason: reason);
    }

    /// <summary>The router now sends traffic to <paramref name="slot"/> (after a verified switch or rollback).</summary>
    internal void MakeLive(Slot slot, DateTimeOffset? rollbackAvailableUntil)
    {
        LiveSlot = slot;
        RollbackAvailableUntil = rollbackAvailableUntil;
    }

    internal void ExtendRollbackWindow(DateTimeOffset? until) => RollbackAvailableUntil = until;

    /// <summary>The hold window ended (or a rollback consumed it): the previous slot may be stopped.</summary>
    public void ReleasePreviousSlot(Actor by, DateTimeOffset now, string why)
    {
        var previous = SlotStatusOf(StandbySlot);
        RollbackAvailableUntil = null;
        Record(by, "slot.stopped", now, before: $"{StandbySlot.Name()} {previous.Version} warm", after: $"{StandbySlot.Name()} stopped", reason: why);
        previous.State = SlotRunState.Stopped;
        previous.Healthy = false;
        previous.Message = why;
    }

    /// <summary>
    /// Records what the runtime saw of the live slot; a change between serving and not serving is audited (once per change,
    /// not per look). Returns whether the live slot went down with this observation.
    /// </summary>
    public bool ObserveLiveSlot(bool running, bool healthy, string? message, DateTimeOffset now)
    {
        var live = LiveStatus;
        var wasServing = live.State == SlotRunState.Running && live.Healthy;
        var serving = running && healthy;
        ObserveSlot(LiveSlot, running ? SlotRunState.Running : SlotRunState.Failed, live.Version, serving, message, now);
        if (wasServing == serving) return false;
        Record(Actor.System, serving ? "slot.live-recovered" : "slot.live-unhealthy", now,
            before: $"{LiveSlot.Name()} {live.Version} {(wasServing ? "serving" : "not serving")}",
            after: $"{LiveSlot.Name()} {live.Version} {(serving ? "serving" : running ? "unhealthy" : "not running")}", reason: message);
        return !serving;
    }

    public bool IsRollbackAvailable(DateTimeOffset now) =>
        RollbackAvailableUntil is { } until && until > now && SlotStatusOf(StandbySlot).State == SlotRunState.Running;

    internal void Record(Actor actor, string action, DateTimeOffset now, Guid? deploymentId = null, string? before = null,
        string? after = null, string? reason = null, string? details = null) =>
        _pendingAuditEvents.Add(AuditEvent.Create(actor, action, now, Name, deploymentId, before, after, reason, details));
}
