using BenchmarkDotNet.Attributes;
using ControlPlane.Core.Audit;

namespace ControlPlane.Benchmarks;

/// <summary>The audit explorer's pages through the real <see cref="AuditQuery"/>, one fresh context per page.</summary>
[Config(typeof(QueryJobConfig))]
public class AuditExplorerBenchmarks
{
    public const int PageSize = 50;
    public const long DeepCursor = 500_000;

    public static readonly IReadOnlyDictionary<string, (AuditFilter Filter, long? Before)> Cases = new Dictionary<string, (AuditFilter, long?)>
    {
        [nameof(FirstPage)] = (new AuditFilter(), null),
        [nameof(ByApplication)] = (new AuditFilter(Application: "ledger"), null),
        [nameof(ByActorAndAction)] = (new AuditFilter(Actor: "alice", Action: "deployment.approved"), null),
        // A week in the middle of the year: the rows are far from the newest end of the table.
        [nameof(ByTimeRange)] = (new AuditFilter(From: AuditTrailGenerator.Start.AddDays(180), To: AuditTrailGenerator.Start.AddDays(187)), null),
        // The oldest week: the worst case for a newest-first scan that has to pass every later row first.
        [nameof(ByTimeRangeOldest)] = (new AuditFilter(From: AuditTrailGenerator.Start, To: AuditTrailGenerator.Start.AddDays(7)), null),
        [nameof(DeepPageByCursor)] = (new AuditFilter(), DeepCursor),
    };

    [Benchmark(Description = "first page, unfiltered")]
    public Task<AuditPage> FirstPage() => PageAsync(nameof(FirstPage));

    [Benchmark(Description = "application = ledger")]
    public Task<AuditPage> ByApplication() => PageAsync(nameof(ByApplication));

    [Benchmark(Description = "actor = alice + action = deployment.approved")]
    public Task<AuditPage> ByActorAndAction() => PageAsync(nameof(ByActorAndAction));

    [Benchmark(Description = "occurred_at in one week, 6 months back")]
    public Task<AuditPage> ByTimeRange() => PageAsync(nameof(ByTimeRange));

    [Benchmark(Description = "occurred_at in the oldest week")]
    public Task<AuditPage> ByTimeRangeOldest() => PageAsync(nameof(ByTimeRangeOldest));

    [Benchmark(Description = "unfiltered, cursor before = 500000")]
    public Task<AuditPage> DeepPageByCursor() => PageAsync(nameof(DeepPageByCursor));

    public static async Task<AuditPage> PageAsync(string name)
    {
        var (filter, before) = Cases[name];
        await using var db = BenchmarkDatabase.CreateContext();
        return await new AuditQuery(db).PageAsync(filter, PageSize, before, CancellationToken.None);
    }
}

/// <summary>Verifying the whole chain reads every row; it takes seconds, so it is measured once, not averaged.</summary>
[Config(typeof(SingleRunJobConfig))]
public class AuditVerifierBenchmarks
{
    [Benchmark(Description = "AuditVerifier.VerifyAsync, whole trail")]
    public async Task<AuditVerification> VerifyWholeTrail()
    {
        await using var db = BenchmarkDatabase.CreateContext();
        var result = await new AuditVerifier(db).VerifyAsync(CancellationToken.None);
        // A broken chain would make this a benchmark of the early exit.
        return result.Valid ? result : throw new InvalidOperationException($"Audit chain invalid: {result.Problem}");
    }
}
