using System.Collections.Concurrent;
using ControlPlane.Core.Notifications;

namespace ControlPlane.Core.Execution;

/// <summary>What keeps an application from serving, as the runtime found it (kept by the replica that runs the runtime).</summary>
public enum RuntimeFaultKind { BringUp, LiveSlot }

public sealed record RuntimeFault(string Application, RuntimeFaultKind Kind, string Reason, DateTimeOffset Since);

/// <summary>
/// The runtime's current faults in words, for the overview, <c>/healthz</c> and the log. A fault retried every
/// housekeeping round is reported once when it appears or its reason changes, and once when it clears, so the log says
/// what changed instead of repeating the same stack trace every few seconds.
/// </summary>
public sealed class RuntimeFaults(TimeProvider time, ChangeNotifier? notifier = null)
{
    private readonly ConcurrentDictionary<(string Application, RuntimeFaultKind Kind), RuntimeFault> _faults = new();

    /// <summary>Records the fault; true when it is new or its reason changed (then the caller logs it).</summary>
    public bool Report(string application, RuntimeFaultKind kind, string reason)
    {
        var changed = false;
        _faults.AddOrUpdate((application, kind),
            _ => { changed = true; return new RuntimeFault(application, kind, reason, time.GetUtcNow()); },
            (_, old) =>
            {
                if (old.Reason == reason) return old;
                changed = true;
                return new RuntimeFault(application, kind, reason, time.GetUtcNow());
            });
        if (changed) Announce(application);
        return changed;
    }

    /// <summary>Clears the fault; true when there was one (then the caller logs that it is over).</summary>
    public bool Clear(string application, RuntimeFaultKind kind)
    {
        if (!_faults.TryRemove((application, kind), out _)) return false;
        Announce(application);
        return true;
    }

    // Pages showing this application re-read it (in this process: faults are the runtime leader's own observations).
    private void Announce(string application) => notifier?.Publish(new ChangeNotice(ChangeNotice.ApplicationKind, application, null));

    public IReadOnlyList<RuntimeFault> For(string application) =>
        [.. _faults.Values.Where(f => f.Application == application).OrderBy(f => f.Kind)];

    public IReadOnlyList<RuntimeFault> All => [.. _faults.Values.OrderBy(f => f.Application, StringComparer.Ordinal).ThenBy(f => f.Kind)];

    /// <summary>The first line of a provider's message: the words, without the log tail or stack trace some append.</summary>
    public static string Words(Exception ex)
    {
        var message = ex.Message;
        var end = message.IndexOfAny(['\r', '\n']);
        return (end < 0 ? message : message[..end]).Trim();
    }
}
