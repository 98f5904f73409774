using System.Reflection;

namespace ControlPlane.Core.Deployers;

/// <summary>Finds a program of this repository that ControlPlane starts as a child process (the demo app, the router).</summary>
public static class BundledProgram
{
    private const string TargetFramework = "net10.0";

    /// <summary>
    /// The full path of <c>&lt;project&gt;.dll</c>, or null. An explicit <paramref name="overridePath"/> (the dll, or the folder
    /// holding it) is the only place looked at when given, so a wrong setting is not silently papered over. Otherwise:
    /// <paramref name="besideFolder"/> next to the running application (copied there by the Web project's build and the
    /// Dockerfile), then the project's build output found by walking up from the application's folder (a source checkout;
    /// the running assembly's Debug/Release configuration first).
    /// </summary>
    public static string? Find(string project, string besideFolder, string? overridePath)
    {
        var fileName = project + ".dll";
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            var full = Path.GetFullPath(overridePath);
            if (File.Exists(full))
                return full;
            var inFolder = Path.Combine(full, fileName);
            return File.Exists(inFolder) ? inFolder : null;
        }

        var besideApp = Path.Combine(AppContext.BaseDirectory, besideFolder, fileName);
        if (File.Exists(besideApp))
            return besideApp;

        var running = (Assembly.GetEntryAssembly() ?? typeof(BundledProgram).Assembly).GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration;
        string[] configurations = running == "Release" ? ["Release", "Debug"] : ["Debug", "Release"];
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            foreach (var configuration in configurations)
            {
                var candidate = Path.Combine(directory.FullName, "src", project, "bin", configuration, TargetFramework, fileName);
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        return null;
    }

    /// <summary>The <c>dotnet</c> host to start a program with: the one running us when we run under it, else from PATH.</summary>
    public static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            return current;
        var fromCli = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(fromCli) && File.Exists(fromCli) ? fromCli : "dotnet";
    }
}
