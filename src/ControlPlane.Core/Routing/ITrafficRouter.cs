using System.Text.Json;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Routing;

/// <summary>
/// Decides which slot of one application receives production traffic. One implementation per router kind;
/// the release flow never knows which kind it drives.
/// </summary>
public interface ITrafficRouter
{
    /// <summary>The kind name used in application registration, e.g. <c>embedded</c>.</summary>
    string Kind { get; }

    /// <summary>Field-level errors in this kind's settings (empty when valid). Field names are relative, e.g. <c>listenPort</c>.</summary>
    IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings);

    /// <summary>
    /// Makes the router serve the application with traffic on <paramref name="liveSlot"/> (start a listener, write a config)
    /// when it is ours to run; called at start-up and on registration. Returns the public URL users reach the application on.
    /// Idempotent.
    /// </summary>
    Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken);

    /// <summary>Which slot the router sends traffic to right now, or null when it cannot tell.</summary>
    Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken);

    /// <summary>Atomically sends all new traffic to <paramref name="target"/>; in-flight requests complete. A no-op when already there.</summary>
    Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken);

    /// <summary>
    /// Proves through the router's data plane (a real request via the public URL) that <paramref name="expectedVersion"/>
    /// on <paramref name="expectedSlot"/> answers. Never reports success on faith.
    /// </summary>
    Task<DataPlaneVerification> VerifyDataPlaneAsync(RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken);

    /// <summary>What a switch from <paramref name="from"/> to <paramref name="to"/> changes, in the router's own terms, shown before
    /// an operator confirms a switch or rollback.</summary>
    string DescribeSwitch(RouterBinding binding, Slot from, Slot to) =>
        $"{Kind} router: traffic moves from {from.Name()} ({binding.EndpointOf(from)}) to {to.Name()} ({binding.EndpointOf(to)})";

    /// <summary>Stops serving the application (embedded listener closed); a no-op for routers we do not run.</summary>
    Task DetachAsync(string application, CancellationToken cancellationToken);
}

/// <summary>What a router needs to know about one application.</summary>
/// <param name="Settings">The router kind's own settings as registered.</param>
/// <param name="BlueEndpoint">Base URL of the blue slot (from the deployer).</param>
/// <param name="GreenEndpoint">Base URL of the green slot (from the deployer).</param>
/// <param name="VerifyPath">Path requested through the router to prove which version answers.</param>
public sealed record RouterBinding(string Application, JsonElement Settings, Uri BlueEndpoint, Uri GreenEndpoint, string VerifyPath = "/")
{
    public Uri EndpointOf(Slot slot) => slot == Slot.Blue ? BlueEndpoint : GreenEndpoint;
}

public sealed record DataPlaneVerification(bool Verified, string Message)
{
    public static DataPlaneVerification Ok(string message) => new(true, message);
    public static DataPlaneVerification Fail(string message) => new(false, message);
}

/// <summary>A router fault an operator can act on (message is shown as is).</summary>
public sealed class RouterException(string message, Exception? inner = null) : Exception(message, inner);
