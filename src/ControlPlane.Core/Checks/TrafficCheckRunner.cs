using System.Globalization;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;

namespace ControlPlane.Core.Checks;

/// <summary>
/// Judges the new live slot's real traffic since the switch, as the router measured it: the share of 5xx answers and the p99
/// latency. Fewer than minRequests requests, or a router that does not measure, is inconclusive.
/// </summary>
public sealed class TrafficCheckRunner
{
    public const int DefaultMinRequests = 20;

    public async Task<CheckResult> RunAsync(HttpCheck check, CheckTarget target, CancellationToken cancellationToken)
    {
        RouterTraffic? report;
        try
        {
            report = target.Traffic is null ? null : await target.Traffic(cancellationToken);
        }
        catch (RouterException ex)
        {
            return new(check.Name, CheckOutcome.Inconclusive, $"the router's measurement could not be read: {ex.Message}");
        }
        if (report is null)
            return new(check.Name, CheckOutcome.Inconclusive,
                target.Traffic is null ? $"the {target.RouterKind} router does not measure traffic" : "the router is not running, so there is no measurement");
        if (!report.Measuring)
            return new(check.Name, CheckOutcome.Inconclusive, "the router's traffic measurement is off (router setting measureTraffic)");
        var live = report.Of(target.Slot);
        var previous = report.Of(target.Slot.Other());
        var minimum = check.MinRequests ?? DefaultMinRequests;
        if (live.Requests < minimum)
            return new(check.Name, CheckOutcome.Inconclusive, $"only {live.Requests} real request(s) on {target.Slot.Name()} since the switch; {minimum} needed to judge");

        var p99 = report.Quantile(live, 0.99);
        IReadOnlyList<CheckValue> values = p99 is { } q && double.IsFinite(q)
            ? [new("error rate", live.ErrorRate), new("p99 ms", q)] : [new("error rate", live.ErrorRate)];
        var rate = $"error rate {Percent(live.ErrorRate)} ({live.Errors} of {live.Requests} requests answered 5xx since the switch)";
        if (check.MaxErrorRate is { } maxRate)
        {
            if (check.RelativeToPrevious)
            {
                var increase = live.ErrorRate - previous.ErrorRate;
                if (increase > maxRate)
                    return new(check.Name, CheckOutcome.Failed,
                        $"{rate}, {Percent(increase)} above {target.Slot.Other().Name()}'s {Percent(previous.ErrorRate)} before the switch; needs at most {Percent(maxRate)} more") { Values = values };
            }
            else if (live.ErrorRate > maxRate)
                return new(check.Name, CheckOutcome.Failed, $"{rate}, needs ≤ {Percent(maxRate)}") { Values = values };
        }
        if (check.MaxP99Ms is { } maxP99 && p99 > maxP99)
            return new(check.Name, CheckOutcome.Failed, $"p99 latency {Ms(p99.Value)} over {live.Requests} requests since the switch, needs ≤ {Ms(maxP99)}") { Values = values };
        return new(check.Name, CheckOutcome.Passed, $"{rate}; p99 ≤ {Ms(p99 ?? 0)}") { Values = values };
    }

    private static string Percent(double share) => (share * 100).ToString("0.##", CultureInfo.InvariantCulture) + "%";

    private static string Ms(double ms) => double.IsPositiveInfinity(ms) ? "over the largest bucket" : ms.ToString("0.#", CultureInfo.InvariantCulture) + " ms";
}
