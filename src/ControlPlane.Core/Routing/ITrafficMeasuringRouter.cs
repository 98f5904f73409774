namespace ControlPlane.Core.Routing;

/// <summary>
/// A router that counts the real traffic it forwards, per slot: requests, 5xx answers and a latency histogram, each slot's
/// counters starting afresh when it becomes live (the embedded router's <c>GET /traffic</c>; nginx's Lua counters).
/// Traffic checks and the release page's chart read it.
/// </summary>
public interface ITrafficMeasuringRouter
{
    /// <summary>The measurement; null when the router does not run. Throws <see cref="RouterException"/> when it cannot be read.</summary>
    Task<RouterTraffic?> ReadTrafficAsync(RouterBinding binding, CancellationToken cancellationToken);
}
