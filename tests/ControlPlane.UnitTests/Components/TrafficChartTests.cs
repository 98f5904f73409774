using Bunit;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using ControlPlane.Web.Components.Shared;
using ControlPlane.Web.Hosting;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Components;

/// <summary>The release page's traffic chart: rates per slot from the router's cumulative counters, the switch marked, live updates.</summary>
public sealed class TrafficChartTests : IDisposable
{
    private static readonly double[] Bounds = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
    private readonly BunitContext _ctx = new();
    private readonly TrafficHistory _history = new();

    public TrafficChartTests()
    {
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
        _ctx.Services.AddMudServices();
        _ctx.Services.AddSingleton(_history);
    }

    private static SlotTraffic Counters(DateTimeOffset since, long requests, long errors)
    {
        var buckets = new long[Bounds.Length + 1];
        buckets[2] = requests;
        return new SlotTraffic(since, requests, errors, buckets);
    }

    private void Sample(DateTimeOffset at, SlotTraffic blue, SlotTraffic green) =>
        _history.Add("shop", new TrafficSample(at, new RouterTraffic(true, Bounds, blue, green), "1.0.0", "2.0.0", Slot.Green));

    [Fact]
    public void Shows_rates_per_slot_marks_the_switch_and_follows_new_readings()
    {
        var builder = ADeployment().InState(DeploymentState.Monitoring);
        var d = builder.Build();
        var switched = d.Step(StepNames.Switch).FinishedAt!.Value;
        Sample(switched.AddSeconds(-4), Counters(T0, 100, 0), Counters(T0, 0, 0));
        Sample(switched, Counters(T0, 120, 0), Counters(T0, 0, 0));
        // Green became live: its counters start afresh; blue's stay where they were.
        Sample(switched.AddSeconds(4), Counters(T0, 120, 0), Counters(switched, 40, 2));

        var chart = _ctx.Render<TrafficChart>(p => p.Add(c => c.Deployment, d));

        var latest = chart.FindAll("[data-testid=traffic-latest]").Select(e => e.TextContent).ToList();
        Assert.Contains("blue 0/s · green 10/s", latest[0]);
        Assert.Contains("blue 0% · green 5%", latest[1]);
        Assert.Contains("green 25 ms", latest[2]);
        Assert.Contains(">switch</text>", chart.Markup);
        Assert.DoesNotContain(">rollback</text>", chart.Markup);

        Sample(switched.AddSeconds(8), Counters(T0, 120, 0), Counters(switched, 120, 2));
        chart.WaitForAssertion(() => Assert.Contains("green 20/s", chart.FindAll("[data-testid=traffic-latest]")[0].TextContent));
    }

    [Fact]
    public void Says_so_when_there_are_no_readings()
    {
        var d = ADeployment().InState(DeploymentState.Monitoring).Build();
        var chart = _ctx.Render<TrafficChart>(p => p.Add(c => c.Deployment, d));
        Assert.Contains("No traffic readings yet", chart.Markup);
    }

    public void Dispose() => _ctx.Dispose();
}
