using System.Reflection;

namespace ControlPlane.Core.Deployers;

/// <summary>Finds the demo web app (<c>ControlPlane.DemoApp.dll</c>) that the demo's process deployer starts.</summary>
public static class DemoAppLocator
{
    public const string FileName = "ControlPlane.DemoApp.dll";
    private const string TargetFramework = "net10.0";

    /// <summary>
    /// The full path of the demo app, or null when it cannot be found. An explicit <paramref name="overridePath"/> (the dll, or
    /// the folder holding it) is the only place looked at when given, so a wrong setting is not silently papered over.
    /// Otherwise: <c>demo-app/</c> next to the running application (copied there by the Web project's build), then the
    /// DemoApp project's build output found by walking up from the application's folder (a source checkout; the
    /// running assembly's Debug/Release configuration first).
    /// </summary>
    public static string? Find(string? overridePath = null)
    {
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            var full = Path.GetFullPath(overridePath);
            if (File.Exists(full))
                return full;
            var inFolder = Path.Combine(full, FileName);
            return File.Exists(inFolder) ? inFolder : null;
        }

        var baseDirectory = AppContext.BaseDirectory;
        var besideApp = Path.Combine(baseDirectory, "demo-app", FileName);
        if (File.Exists(besideApp))
            return besideApp;

        string[] configurations = RunningConfiguration() == "Release" ? ["Release", "Debug"] : ["Debug", "Release"];
        for (var directory = new DirectoryInfo(baseDirectory); directory is not null; directory = directory.Parent)
        {
            foreach (var configuration in configurations)
            {
                var candidate = Path.Combine(directory.FullName, "src", "ControlPlane.DemoApp", "bin", configuration, TargetFramework, FileName);
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        return null;
    }

    /// <summary>The <c>dotnet</c> host to start the demo app with: the one running us when we run under it, else from PATH.</summary>
    public static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            return current;
        var fromCli = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(fromCli) && File.Exists(fromCli) ? fromCli : "dotnet";
    }

    private static string? RunningConfiguration() =>
        (Assembly.GetEntryAssembly() ?? typeof(DemoAppLocator).Assembly).GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration;
}
