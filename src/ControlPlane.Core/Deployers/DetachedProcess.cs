using System.Diagnostics;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// Starts a process that outlives ControlPlane: in its own session (a terminal's Ctrl+C to ControlPlane never reaches it),
/// with stdio on a log file rather than a pipe of ours (which would break when we exit), writing its own PID to a file
/// before it execs (so a crash right after the spawn cannot lose it), and with an explicit environment only.
/// </summary>
public static class DetachedProcess
{
    private const string ShellScript = "echo $$ >\"$2\"; exec >>\"$1\" 2>&1 </dev/null; shift 2; exec \"$@\"";

    public static string? SetsidPath { get; } =
        File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : File.Exists("/bin/setsid") ? "/bin/setsid" : null;

    /// <summary>Whether started processes lead their own process group (and are signalled as a group).</summary>
    public static bool OwnSession => SetsidPath is not null;

    public static Process Start(string command, IEnumerable<string> arguments, string? workingDirectory, string logPath, string pidFile,
        IEnumerable<KeyValuePair<string, string>> environment, string name)
    {
        var startInfo = new ProcessStartInfo(SetsidPath ?? "/bin/sh") { UseShellExecute = false, WorkingDirectory = workingDirectory ?? "" };
        // setsid puts the process in a new session and execs without forking, because a child of ours is not a group
        // leader; sh then points stdio at the log and execs the command, so the PID stays the one we started.
        if (SetsidPath is not null)
            startInfo.ArgumentList.Add("/bin/sh");
        foreach (var argument in (string[])["-c", ShellScript, name, logPath, pidFile, command, .. arguments])
            startInfo.ArgumentList.Add(argument);
        ChildProcessEnvironment.Apply(startInfo, environment);
        File.Delete(pidFile);
        return Process.Start(startInfo) ?? throw new InvalidOperationException("Process.Start returned no process.");
    }
}
