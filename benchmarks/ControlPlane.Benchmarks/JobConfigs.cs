using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using Perfolizer.Mathematics.OutlierDetection;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ControlPlane.Benchmarks;

/// <summary>
/// One page per iteration (invocation count 1), so P95 and Max are the latencies of single pages rather than averages
/// of batches, and no outlier is dropped. In-process, because the database is loaded once by <see cref="Program"/>.
/// </summary>
public sealed class QueryJobConfig : ManualConfig
{
    public QueryJobConfig()
    {
        AddJob(Job.Default.WithId("Page")
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(3).WithIterationCount(30).WithInvocationCount(1).WithUnrollFactor(1)
            // A slow page is a result here, not noise: keep every measurement in Max and P95.
            .WithOutlierMode(OutlierMode.DontRemove));
        AddColumn(StatisticColumn.Min, StatisticColumn.P95, StatisticColumn.Max);
    }
}

public sealed class SingleRunJobConfig : ManualConfig
{
    public SingleRunJobConfig()
    {
        AddJob(Job.Default.WithId("Once")
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithStrategy(RunStrategy.ColdStart).WithLaunchCount(1).WithWarmupCount(0).WithIterationCount(1)
            .WithInvocationCount(1).WithUnrollFactor(1));
    }
}
