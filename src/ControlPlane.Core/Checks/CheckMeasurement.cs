using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Checks;

/// <summary>
/// One number one check evaluation read (a JSON value, a Prometheus sample, an error rate, a response time), kept with the
/// release so its page can chart each check's values over time next to the switch and any rollback. Written in the same save
/// as the step the evaluation belongs to.
/// </summary>
public sealed class CheckMeasurement
{
    private CheckMeasurement() { }

    public Guid Id { get; private set; }
    public Guid DeploymentId { get; private set; }
    public DateTimeOffset At { get; private set; }

    /// <summary>The step that ran the check: <c>verify</c> (the standby, before the switch) or <c>monitor</c> (the live slot after it).</summary>
    public string Step { get; private set; } = "";
    public string CheckName { get; private set; } = "";

    /// <summary>What the number is: <c>$.hitRatio</c>, <c>error rate</c>, <c>p99 ms</c>, <c>response ms</c>, a Prometheus series.</summary>
    public string Name { get; private set; } = "";
    public double Value { get; private set; }
    public CheckOutcome Outcome { get; private set; }

    /// <summary>One row per number each result read; results without numbers (no data, unreachable) add none.</summary>
    public static IEnumerable<CheckMeasurement> From(Deployment d, string step, IEnumerable<CheckResult> results, DateTimeOffset at) =>
        results.SelectMany(r => r.Values.Select(v => new CheckMeasurement
        {
            Id = Guid.CreateVersion7(at),
            DeploymentId = d.Id,
            At = at,
            Step = step,
            CheckName = Truncate(r.Name, 100),
            Name = Truncate(v.Name, 200),
            Value = v.Value,
            Outcome = r.Outcome,
        }));

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max];
}
