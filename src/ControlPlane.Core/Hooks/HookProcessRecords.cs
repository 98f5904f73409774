using System.Text.Json;
using ControlPlane.Core.Deployers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Hooks;

/// <summary>A command hook's process as recorded while it runs: PID and kernel start time (a reused PID is not ours).</summary>
public sealed record HookProcessRecord(Guid ReleaseId, string Step, int Attempt, int Pid, string StartIdentity, bool OwnSession, string Path);

/// <summary>
/// Command hooks run in their own session (setsid), so they outlive a ControlPlane killed with SIGKILL. While one runs, its
/// PID is recorded as <c>&lt;DataDirectory&gt;/hooks/&lt;release&gt;-&lt;step&gt;.json</c> (command hooks run only on the runtime host,
/// whose data directory the next ControlPlane there shares); the next ControlPlane that finds the step interrupted kills the
/// leftover process group before it decides anything, so a hook never runs twice at once and an orphan does no more work.
/// </summary>
public sealed class HookProcessRecords(IOptions<ControlPlaneOptions> options, ILogger<HookProcessRecords> logger)
{
    private string Directory => System.IO.Path.Combine(options.Value.FullDataDirectory, "hooks");

    private string PathOf(Guid releaseId, string step) => System.IO.Path.Combine(Directory, $"{releaseId:N}-{step}.json");

    public HookProcessRecord? Write(HookContext context, int pid, bool ownSession)
    {
        if (PosixProcess.StartIdentityOf(pid) is not { } identity) return null; // already gone
        var record = new HookProcessRecord(context.ReleaseId, context.Step, context.Attempt, pid, identity, ownSession, PathOf(context.ReleaseId, context.Step));
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            var temporary = record.Path + ".tmp";
            File.WriteAllText(temporary, JsonSerializer.Serialize(record));
            File.Move(temporary, record.Path, overwrite: true);
            return record;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not record the {Step} hook's process {Pid}: {Reason}", context.Step, pid, ex.Message);
            return null;
        }
    }

    public void Remove(HookProcessRecord? record)
    {
        if (record is null) return;
        try { File.Delete(record.Path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Kills the process group an interrupted attempt left running; returns what was done (null when nothing ran any more).</summary>
    public string? KillLeftover(Guid releaseId, string step)
    {
        var path = PathOf(releaseId, step);
        HookProcessRecord? record;
        try
        {
            record = File.Exists(path) ? JsonSerializer.Deserialize<HookProcessRecord>(File.ReadAllText(path)) : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not read the hook process record {Path}: {Reason}", path, ex.Message);
            return null;
        }
        if (record is null) return null;
        string? done = null;
        if (PosixProcess.IsAlive(record.Pid, record.StartIdentity))
        {
            PosixProcess.Signal(record.Pid, record.StartIdentity, record.OwnSession, PosixProcess.SigKill);
            done = $"its process (PID {record.Pid}{(record.OwnSession ? " and its process group" : "")}) was still running and was killed";
            logger.LogWarning("Killed the {Step} hook's process {Pid} left running by an interrupted attempt {Attempt} of release {Release}",
                step, record.Pid, record.Attempt, releaseId);
        }
        Remove(record);
        return done;
    }
}
