using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;

namespace ControlPlane.Core.Execution;

/// <summary>Finds the router and deployer of an application's kinds and builds their bindings.</summary>
public sealed class ProviderRegistry(IEnumerable<ITrafficRouter> routers, IEnumerable<ISlotDeployer> deployers)
{
    private readonly Dictionary<string, ITrafficRouter> _routers = routers.ToDictionary(r => r.Kind, StringComparer.Ordinal);
    private readonly Dictionary<string, ISlotDeployer> _deployers = deployers.ToDictionary(d => d.Kind, StringComparer.Ordinal);

    public IReadOnlyCollection<string> RouterKinds => _routers.Keys;
    public IReadOnlyCollection<string> DeployerKinds => _deployers.Keys;

    public ITrafficRouter? FindRouter(string kind) => _routers.GetValueOrDefault(kind);
    public ISlotDeployer? FindDeployer(string kind) => _deployers.GetValueOrDefault(kind);

    public ITrafficRouter RouterFor(Application app) =>
        FindRouter(app.RouterKind) ?? throw new InvalidOperationException($"No router of kind '{app.RouterKind}' is available for {app.Name}.");

    public ISlotDeployer DeployerFor(Application app) =>
        FindDeployer(app.DeployerKind) ?? throw new InvalidOperationException($"No deployer of kind '{app.DeployerKind}' is available for {app.Name}.");

    public DeployerBinding DeployerBindingFor(Application app) => new(app.Name, app.DeployerSettingsJson);

    /// <summary>What switching <paramref name="app"/> from one slot to the other changes, in its router's terms (for confirmations).</summary>
    public string DescribeSwitch(Application app, Slot from, Slot to)
    {
        try
        {
            return RouterFor(app).DescribeSwitch(RouterBindingFor(app), from, to);
        }
        catch (Exception ex) when (ex is RouterException or InvalidOperationException or System.Text.Json.JsonException)
        {
            return $"{app.RouterKind} router: traffic moves from {from.Name()} to {to.Name()} (its settings could not be read: {ex.Message})";
        }
    }

    public RouterBinding RouterBindingFor(Application app)
    {
        var deployer = DeployerFor(app);
        var binding = DeployerBindingFor(app);
        return new(app.Name, app.RouterSettingsJson, deployer.EndpointOf(binding, Slot.Blue), deployer.EndpointOf(binding, Slot.Green), app.VerifyPath);
    }
}
