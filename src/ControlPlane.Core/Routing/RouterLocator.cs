using System.Reflection;

namespace ControlPlane.Core.Routing;

/// <summary>Finds the embedded router's data-plane executable (<c>ControlPlane.Router.dll</c>), the way the demo app is found.</summary>
public static class RouterLocator
{
    public const string FileName = "ControlPlane.Router.dll";
    private const string TargetFramework = "net10.0";

    /// <summary>
    /// The full path, or null. An explicit <paramref name="overridePath"/> (the dll or its folder) is the only place looked at
    /// when given. Otherwise <c>router/</c> next to the running application (copied there by the Web project's build and by
    /// the Dockerfile), then the Router project's build output found by walking up from the application's folder.
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

        var besideApp = Path.Combine(AppContext.BaseDirectory, "router", FileName);
        if (File.Exists(besideApp))
            return besideApp;

        var running = (Assembly.GetEntryAssembly() ?? typeof(RouterLocator).Assembly).GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration;
        string[] configurations = running == "Release" ? ["Release", "Debug"] : ["Debug", "Release"];
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            foreach (var configuration in configurations)
            {
                var candidate = Path.Combine(directory.FullName, "src", "ControlPlane.Router", "bin", configuration, TargetFramework, FileName);
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        return null;
    }
}
