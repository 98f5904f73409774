using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Execution;

/// <summary>
/// The host this ControlPlane runs on (<c>ControlPlane:HostId</c>, default the machine name). Slot processes (deployer
/// <c>process</c>) and embedded routers live on one host; an application using them records that host when its runtime is
/// first brought up, and a runtime leader on any other host refuses to start or move them instead of colliding on ports.
/// </summary>
public sealed record RuntimeHost(string Id)
{
    /// <summary>Deployer and router kinds whose processes, listeners or config files live on the host that runs them.</summary>
    public static readonly IReadOnlySet<string> HostLocalKinds = new HashSet<string>(StringComparer.Ordinal) { "process", "embedded", "nginx" };

    public static bool IsHostLocal(Application app) => HostLocalKinds.Contains(app.DeployerKind) || HostLocalKinds.Contains(app.RouterKind);

    /// <summary>Why this host must not act on <paramref name="app"/>'s runtime, or null when it may.</summary>
    public string? RefusalFor(Application app, ProviderRegistry? providers = null)
    {
        if (!IsHostLocal(app) || app.RuntimeHost is null || app.RuntimeHost == Id) return null;
        return $"{app.Name}'s slot processes and router run on host '{app.RuntimeHost}'; this ControlPlane runs on host '{Id}' and never starts " +
               $"processes that belong to another host. Run ControlPlane on '{app.RuntimeHost}' (it takes over when it leads).";
    }
}
