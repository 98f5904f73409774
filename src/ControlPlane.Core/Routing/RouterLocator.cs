using ControlPlane.Core.Deployers;

namespace ControlPlane.Core.Routing;

/// <summary>Finds the embedded router's data-plane executable (<c>ControlPlane.Router.dll</c>), the way the demo app is found.</summary>
public static class RouterLocator
{
    public const string FileName = "ControlPlane.Router.dll";

    /// <summary>The router's full path, or null; see <see cref="BundledProgram.Find"/> (<c>router/</c> beside the application).</summary>
    public static string? Find(string? overridePath = null) => BundledProgram.Find("ControlPlane.Router", "router", overridePath);
}
