namespace ControlPlane.Core.Deployers;

/// <summary>Finds the demo web app (<c>ControlPlane.DemoApp.dll</c>) that the demo's process deployer starts.</summary>
public static class DemoAppLocator
{
    public const string FileName = "ControlPlane.DemoApp.dll";

    /// <summary>The demo app's full path, or null; see <see cref="BundledProgram.Find"/> (<c>demo-app/</c> beside the application).</summary>
    public static string? Find(string? overridePath = null) => BundledProgram.Find("ControlPlane.DemoApp", "demo-app", overridePath);

    /// <inheritdoc cref="BundledProgram.DotnetHost"/>
    public static string DotnetHost() => BundledProgram.DotnetHost();
}
