using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using ControlPlane.Benchmarks;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Npgsql;

// Starts a throwaway PostgreSQL, migrates it, loads the audit trail, then hands over to BenchmarkDotNet.
// CONTROLPLANE_BENCH_EVENTS (default 1000000) shrinks the trail for a quick try; CONTROLPLANE_BENCH_EXPLAIN=1 also
// prints the executed plan of every explorer page (auto_explain) before measuring; CONTROLPLANE_BENCH_HOLD=1 prints the
// connection string and waits for a line on stdin, to try queries and indexes by hand on the loaded database.
if (args.FirstOrDefault() == "side-by-side")
    return await ControlPlane.Benchmarks.SideBySide.SideBySideCommand.RunAsync(args[1..]);

var events = int.Parse(Environment.GetEnvironmentVariable("CONTROLPLANE_BENCH_EVENTS") ?? "1000000", CultureInfo.InvariantCulture);
var explain = Environment.GetEnvironmentVariable("CONTROLPLANE_BENCH_EXPLAIN") == "1";
var hold = Environment.GetEnvironmentVariable("CONTROLPLANE_BENCH_HOLD") == "1";

using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true));
await using var postgres = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions("", Ephemeral: true), loggerFactory.CreateLogger("EmbeddedPostgres"));
await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
BenchmarkDatabase.Use(dataSource);

await using (var db = BenchmarkDatabase.CreateContext())
    await db.Database.MigrateAsync();

var clock = Stopwatch.StartNew();
var loaded = await AuditTrailLoader.LoadAsync(dataSource, new AuditTrailGenerator().Generate(events), CancellationToken.None);
var loadTime = clock.Elapsed;
clock.Restart();
// Autovacuum would have done this long ago on a real trail; without it the first reads set hint bits and the
// insert-triggered autovacuum could start in the middle of a measurement.
await using (var command = dataSource.CreateCommand("VACUUM (ANALYZE) audit_events"))
    await command.ExecuteNonQueryAsync();
var vacuumTime = clock.Elapsed;

await using (var command = dataSource.CreateCommand(
    "SELECT version(), pg_size_pretty(pg_total_relation_size('audit_events')), min(occurred_at), max(occurred_at), " +
    "count(DISTINCT application), count(DISTINCT actor), count(DISTINCT action) FROM audit_events"))
await using (var reader = await command.ExecuteReaderAsync())
{
    await reader.ReadAsync();
    Console.WriteLine($"Loaded {loaded:N0} audit events in {loadTime.TotalSeconds:F1} s (binary COPY, hashes chained); VACUUM ANALYZE {vacuumTime.TotalSeconds:F1} s.");
    Console.WriteLine($"Table with indexes: {reader.GetString(1)}; {reader.GetFieldValue<DateTimeOffset>(2):u} .. {reader.GetFieldValue<DateTimeOffset>(3):u}; " +
        $"{reader.GetInt64(4)} applications, {reader.GetInt64(5)} actors, {reader.GetInt64(6)} actions.");
    Console.WriteLine(reader.GetString(0));
}

// Every case must return a full page, or it would measure an empty result.
foreach (var name in AuditExplorerBenchmarks.Cases.Keys)
{
    var page = await AuditExplorerBenchmarks.PageAsync(name);
    Console.WriteLine($"{name}: {page.Items.Count} items, sequences {page.Items[0].Sequence}..{page.Items[^1].Sequence}, next cursor {page.NextCursor}");
    if (page.Items.Count != AuditExplorerBenchmarks.PageSize || page.NextCursor is null)
        throw new InvalidOperationException($"{name} returned {page.Items.Count} items; the benchmark data does not fit the case.");
}
if (explain) await ExplainPlans.PrintAsync(dataSource);
if (hold)
{
    Console.WriteLine($"Holding the database open: {postgres.ConnectionString}");
    Console.WriteLine("Press Enter to run the benchmarks.");
    Console.ReadLine();
}

var config = DefaultConfig.Instance
    .WithArtifactsPath(Path.Combine(Directory.GetCurrentDirectory(), "artifacts", "benchmarks"))
    .WithOptions(ConfigOptions.JoinSummary);
BenchmarkRunner.Run([typeof(AuditExplorerBenchmarks), typeof(AuditVerifierBenchmarks)], config, args);
return 0;
