using System.Diagnostics;
using System.Diagnostics.Metrics;
using ControlPlane.Core.Audit;

namespace ControlPlane.Core.Telemetry;

/// <summary>
/// ControlPlane's own meters and spans (exported by the Web host: /metrics through OpenTelemetry's Prometheus exporter, spans
/// over OTLP when configured). Counted from what is saved, so every replica reports what it did.
/// </summary>
public static class ControlPlaneTelemetry
{
    public const string MeterName = "ControlPlane";
    public const string ActivitySourceName = "ControlPlane.Releases";

    public static readonly Meter Meter = new(MeterName);
    public static readonly ActivitySource Releases = new(ActivitySourceName);

    private static readonly Counter<long> AuditEvents = Meter.CreateCounter<long>("controlplane.audit.events", "{event}", "Audit events saved, by action");
    private static readonly Counter<long> ReleasesEnded = Meter.CreateCounter<long>("controlplane.releases", "{release}", "Releases that ended, by application and outcome");
    private static readonly Histogram<double> StepDuration = Meter.CreateHistogram<double>("controlplane.release.step.duration", "s", "How long one reconcile step of a release took, by state");
    private static readonly Histogram<double> TrafficMoveDuration = Meter.CreateHistogram<double>("controlplane.traffic.move.duration", "s", "How long a switch or rollback took (the router's move and its verification), by kind");

    private static readonly Dictionary<string, string> Outcomes = new(StringComparer.Ordinal)
    {
        ["deployment.succeeded"] = "succeeded",
        ["deployment.failed"] = "failed",
        ["deployment.switch-failed"] = "failed",
        ["deployment.aborted"] = "aborted",
        ["deployment.auto-rolled-back"] = "rolled_back_automatically",
        ["deployment.rolled-back"] = "rolled_back",
    };

    /// <summary>Called once the events are saved with the change they record.</summary>
    public static void Saved(IEnumerable<AuditEvent> events)
    {
        foreach (var e in events)
        {
            AuditEvents.Add(1, new KeyValuePair<string, object?>("action", e.Action));
            if (Outcomes.TryGetValue(e.Action, out var outcome))
                ReleasesEnded.Add(1, new("application", e.Application), new("outcome", outcome));
        }
    }

    /// <summary>A span and a duration for one reconcile step of a release; dispose when the step is done.</summary>
    public static StepTiming StartStep(string application, string version, string state) =>
        new(Releases.StartActivity($"release.{state}") is { } activity
                ? activity.SetTag("controlplane.application", application).SetTag("controlplane.version", version).SetTag("controlplane.state", state)
                : null,
            state, Stopwatch.GetTimestamp());

    public readonly record struct StepTiming(Activity? Activity, string State, long Started) : IDisposable
    {
        public void Dispose()
        {
            var seconds = Stopwatch.GetElapsedTime(Started).TotalSeconds;
            StepDuration.Record(seconds, new KeyValuePair<string, object?>("state", State));
            if (State is "Switching" or "RollingBack") TrafficMoveDuration.Record(seconds, new KeyValuePair<string, object?>("kind", State == "Switching" ? "switch" : "rollback"));
            Activity?.Dispose();
        }
    }
}
