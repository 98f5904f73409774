using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// What the process deployer knows about the process it started on a slot, stored as
/// <c>&lt;DataDirectory&gt;/slots/&lt;app&gt;/&lt;slot&gt;.json</c> so that a restarted ControlPlane finds it again.
/// </summary>
/// <param name="StartIdentity">The kernel's start time of the process; with <see cref="Pid"/> it tells our process from a later one that reused the PID.</param>
/// <param name="OwnSession">Started through <c>setsid</c>: the process leads its own process group, which is signalled as a whole.</param>
/// <param name="Fingerprint">Hash of the resolved command line, environment, port and version; a change means "replace the process".</param>
/// <param name="ReadyAt">When a deploy first found it healthy; a record that dies after this is stale, one that dies before it failed to start.</param>
/// <param name="LaunchId">Set in the process's environment at spawn. A record with <see cref="Pid"/> 0 is an intent written before the
/// spawn; the process's own PID file plus this id complete it after a crash in between.</param>
public sealed record SlotProcessRecord(
    string Application,
    string Slot,
    string Version,
    int Pid,
    string StartIdentity,
    bool OwnSession,
    int Port,
    string Fingerprint,
    string LogPath,
    DateTimeOffset StartedAt,
    DateTimeOffset? ReadyAt,
    string? LaunchId = null);

/// <summary>The few POSIX process operations the process deployer needs and .NET does not offer.</summary>
internal static class PosixProcess
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    /// <summary>
    /// A token that identifies one incarnation of a process: the start time from <c>/proc/&lt;pid&gt;/stat</c> on Linux.
    /// Null when no live (non-zombie) process has that PID.
    /// </summary>
    public static string? StartIdentityOf(int pid)
    {
        if (pid <= 0)
            return null;
        if (OperatingSystem.IsLinux())
        {
            string stat;
            try
            {
                stat = File.ReadAllText($"/proc/{pid}/stat");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
            // The command name (field 2) is in parentheses and may contain spaces: fields are counted after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var state = fields[0];
            if (state is "Z" or "X" or "x")
                return null;
            return fields.Length > 19 ? fields[19] : null;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : process.StartTime.ToUniversalTime().Ticks.ToString(CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    /// <summary>Whether the live process <paramref name="pid"/> has <paramref name="name"/>=<paramref name="value"/> in its environment.</summary>
    public static bool HasEnvironment(int pid, string name, string value)
    {
        try
        {
            var expected = $"{name}={value}";
            return File.ReadAllText($"/proc/{pid}/environ").Split('\0').Contains(expected, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static bool IsAlive(SlotProcessRecord record) => IsAlive(record.Pid, record.StartIdentity);

    public static bool IsAlive(int pid, string startIdentity) =>
        StartIdentityOf(pid) is { } identity && identity == startIdentity;

    /// <summary>Sends <paramref name="signal"/> to the process, or to its whole process group when it leads one.</summary>
    public static void Signal(SlotProcessRecord record, int signal) => Signal(record.Pid, record.StartIdentity, record.OwnSession, signal);

    public static void Signal(int pid, string startIdentity, bool ownSession, int signal)
    {
        if (!IsAlive(pid, startIdentity))
            return;
        if (ownSession && Kill(-pid, signal) == 0)
            return;
        Kill(pid, signal);
    }

    // DllImport rather than LibraryImport: the latter needs AllowUnsafeBlocks for the whole Core project.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
