using System.Collections;
using System.Diagnostics;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// The environment of every process ControlPlane starts (slot processes, router processes, PostgreSQL tools): a minimal
/// base needed to run a program, plus exactly what the caller names. ControlPlane's own configuration
/// (<c>ControlPlane__*</c>, <c>ConnectionStrings__*</c>, <c>ASPNETCORE_*</c>) and secrets never reach a child.
/// </summary>
public static class ChildProcessEnvironment
{
    /// <summary>Passed on when ControlPlane has them: where to find programs, whose home, which language and time zone.</summary>
    private static readonly HashSet<string> BaseNames = new(StringComparer.Ordinal)
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
        // What the .NET host needs to find and start a runtime (and run without ICU where there is none).
        "DOTNET_ROOT", "DOTNET_ROOT_X64", "DOTNET_ROOT_ARM64", "DOTNET_ROOT_X86", "DOTNET_BUNDLE_EXTRACT_BASE_DIR",
        "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "DOTNET_SYSTEM_GLOBALIZATION_PREDEFINED_CULTURES_ONLY", "DOTNET_RUNNING_IN_CONTAINER",
    };

    /// <summary>The base taken from <paramref name="current"/> (ControlPlane's own environment when null).</summary>
    public static Dictionary<string, string> Base(IDictionary? current = null)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in current ?? Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string name && entry.Value is string value && IsBase(name))
                result[name] = value;
        }
        return result;
    }

    public static bool IsBase(string name) => BaseNames.Contains(name) || name.StartsWith("LC_", StringComparison.Ordinal);

    /// <summary>Replaces <paramref name="startInfo"/>'s inherited environment with the base plus <paramref name="named"/>.</summary>
    public static void Apply(ProcessStartInfo startInfo, IEnumerable<KeyValuePair<string, string>>? named = null)
    {
        var environment = Base();
        foreach (var (name, value) in named ?? [])
            environment[name] = value;
        startInfo.Environment.Clear();
        foreach (var (name, value) in environment)
            startInfo.Environment[name] = value;
    }
}
