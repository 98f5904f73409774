namespace ControlPlane.Core.Deployments;

public sealed partial class Deployment
{
    /// <summary>
    /// While monitoring: which checks could not judge at the last look and why ("check 'errors' inconclusive: no data …");
    /// null when every check judged. Watching goes on meanwhile; the dashboard says what it is still waiting for.
    /// </summary>
    public string? MonitoringInconclusive { get; private set; }

    /// <summary>Records what the last monitoring look could not judge (null: everything judged). Not audited: no state change.</summary>
    public void NoteMonitoringEvidence(string? inconclusive, DateTimeOffset now)
    {
        if (MonitoringInconclusive == inconclusive) return;
        MonitoringInconclusive = inconclusive;
        UpdatedAt = now;
    }
}
