using ControlPlane.Core.Checks;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;

namespace ControlPlane.UnitTests.Checks;

public sealed class TrafficCheckTests
{
    private static readonly double[] Bounds = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
    private static readonly DateTimeOffset T = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    private static SlotTraffic Measured(long requests, long errors, int slowBucket = 1, long slow = 0)
    {
        var buckets = new long[Bounds.Length + 1];
        buckets[0] = requests - slow;
        buckets[slowBucket] += slow;
        return new SlotTraffic(T, requests, errors, buckets);
    }

    private static Task<CheckResult> Run(HttpCheck check, RouterTraffic? report) =>
        new TrafficCheckRunner().RunAsync(check, new CheckTarget(new Uri("http://127.0.0.1:1"), "shop", ControlPlane.Core.Deployments.Slot.Green, "2.0.0")
        {
            Monitoring = true, RouterKind = "embedded", Traffic = _ => Task.FromResult(report),
        }, CancellationToken.None);


    [Fact]
    public async Task Five_percent_errors_fail_a_one_percent_bound_naming_the_measured_rate()
    {
        var result = await Run(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.01 }, new RouterTraffic(true, Bounds, Measured(100, 0), Measured(200, 10)));
        Assert.True(result.Failed);
        Assert.Equal("error rate 5% (10 of 200 requests answered 5xx since the switch), needs ≤ 1%", result.Message);
    }

    [Fact]
    public async Task Too_few_requests_is_inconclusive()
    {
        var result = await Run(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.01, MinRequests = 50 }, new RouterTraffic(true, Bounds, Measured(100, 0), Measured(49, 10)));
        Assert.True(result.Inconclusive);
        Assert.Contains("only 49 real request(s) on green since the switch; 50 needed", result.Message);
    }

    [Fact]
    public async Task No_measurement_or_measurement_off_is_inconclusive()
    {
        Assert.True((await Run(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.01 }, null)).Inconclusive);
        var off = await Run(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.01 }, new RouterTraffic(false, Bounds, Measured(0, 0), Measured(0, 0)));
        Assert.True(off.Inconclusive);
        Assert.Contains("measureTraffic", off.Message);
    }

    [Fact]
    public async Task Relative_bound_compares_with_the_previous_slot()
    {
        var check = new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.01, RelativeToPrevious = true };
        Assert.True((await Run(check, new RouterTraffic(true, Bounds, Measured(100, 4), Measured(200, 9)))).Passed); // 4.5% vs 4% before
        var worse = await Run(check, new RouterTraffic(true, Bounds, Measured(100, 1), Measured(100, 5)));
        Assert.True(worse.Failed);
        Assert.Contains("4% above blue's 1% before the switch", worse.Message);
    }

    [Fact]
    public async Task P99_from_the_histogram()
    {
        var check = new HttpCheck { Kind = "traffic", Name = "t", MaxP99Ms = 100 };
        // 2 of 100 requests took up to 500 ms: p99 lies in that bucket.
        var slow = await Run(check, new RouterTraffic(true, Bounds, Measured(0, 0), Measured(100, 0, slowBucket: 6, slow: 2)));
        Assert.True(slow.Failed);
        Assert.Equal("p99 latency 500 ms over 100 requests since the switch, needs ≤ 100 ms", slow.Message);
        // 1 of 100 slow: the 99th request is still fast.
        Assert.True((await Run(check, new RouterTraffic(true, Bounds, Measured(0, 0), Measured(100, 0, slowBucket: 6, slow: 1)))).Passed);
    }

    [Fact]
    public void Traffic_fields_are_validated_and_refused_on_other_kinds()
    {
        static List<string> Fields(HttpCheck c) => [.. c.Validate("checks[0]").Select(e => e.Field)];
        Assert.Empty(Fields(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.01, MaxP99Ms = 500, MinRequests = 20 }));
        Assert.Equal(["checks[0].maxErrorRate"], Fields(new HttpCheck { Kind = "traffic", Name = "t" }));
        Assert.Equal(["checks[0].maxErrorRate"], Fields(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 1.5 }));
        Assert.Equal(["checks[0].minRequests"], Fields(new HttpCheck { Kind = "traffic", Name = "t", MaxErrorRate = 0.1, MinRequests = 0 }));
        Assert.Equal(["checks[0].maxErrorRate"], Fields(new HttpCheck { Name = "h", MaxErrorRate = 0.1 }));
    }
}
