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

    // The SDK's default buckets (0, 5, 10, 25 … 10000) suit milliseconds; these are seconds, from a quick pick-up to minutes.
    private static readonly InstrumentAdvice<double> Seconds = new()
    {
        HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    };
    private static readonly Histogram<double> TimeToRestore = Meter.CreateHistogram("controlplane.time_to_restore", "s",
        "From a rollback's request (for an automatic one: the breach detected) until the previous version serves again, by application and automatic",
        tags: null, advice: Seconds);
    private static readonly Histogram<double> WorkerLag = Meter.CreateHistogram("controlplane.worker.lag", "s",
        "How late the reconcile loop picked up a release's due step (claimed at minus due at)", tags: null, advice: Seconds);

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

    /// <summary>Called once a rollback is saved (the router moved back and answered with the previous version).</summary>
    public static void Restored(string application, bool automatic, DateTimeOffset requestedAt, DateTimeOffset restoredAt) =>
        TimeToRestore.Record(Math.Max(0, (restoredAt - requestedAt).TotalSeconds),
            new KeyValuePair<string, object?>("application", application), new("automatic", automatic ? "true" : "false"));

    /// <summary>Called when the loop claims a due step: how long after its due time.</summary>
    public static void PickedUp(double lateSeconds) => WorkerLag.Record(Math.Max(0, lateSeconds));

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
