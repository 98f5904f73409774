using System.Diagnostics;
using System.Globalization;
using System.Text;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace ControlPlane.Benchmarks.SideBySide;

public sealed record StreamRow(string Name, double Seconds, double? FirstByteMs, long? Bytes, long? BaselineRss, long? PeakRss)
{
    /// <summary>Every run's time, in the order measured, when this row stands for several.</summary>
    public IReadOnlyList<double> RunSeconds { get; init; } = [Seconds];

    /// <summary>
    /// The run of median time stands for the row's time; the first byte and the memory shown are the worst of any run (the
    /// slowest first byte, the largest growth), so a single buffered run cannot hide behind the median.
    /// </summary>
    public static StreamRow MedianOf(IReadOnlyList<StreamRow> runs)
    {
        var median = runs.OrderBy(r => r.Seconds).ElementAt(runs.Count / 2);
        var worst = runs.MaxBy(r => (r.PeakRss ?? 0) - (r.BaselineRss ?? 0))!;
        return median with
        {
            FirstByteMs = runs.Max(r => r.FirstByteMs), BaselineRss = worst.BaselineRss, PeakRss = worst.PeakRss,
            RunSeconds = runs.Select(r => r.Seconds).ToList(),
        };
    }
}

public sealed record ControlPlaneResult(long Events, StreamRow Export, StreamRow Copy, StreamRow Verify, StreamRow SqlScan, Tools.WrkResult Applications,
    Tools.WrkResult ApplicationsCold, ReleaseFlowResult Flow);

/// <summary>
/// ControlPlane itself (the Web project's build, as a process of its own) on a PostgreSQL holding a bulk-loaded, hash-chained
/// audit trail: the audit export and verify through the REST API against <c>psql \copy</c> and the same chain walk done in
/// SQL (three of each, in alternation, medians compared), with the process's peak RSS sampled every 10 ms; and
/// <c>GET /api/v1/applications</c> under wrk.
/// </summary>
public static class ControlPlaneRows
{
    public static async Task<ControlPlaneResult> RunAsync(string webDll, string work, int events, bool quick, TextWriter log)
    {
        await using var postgres = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions("", Ephemeral: true), NullLogger.Instance);
        await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
        await using (var db = new ControlPlaneDbContext(BenchmarkDatabase.Options(dataSource)))
            await db.Database.MigrateAsync();
        var clock = Stopwatch.StartNew();
        await AuditTrailLoader.LoadAsync(dataSource, new AuditTrailGenerator().Generate(events), CancellationToken.None);
        await using (var vacuum = dataSource.CreateCommand("VACUUM (ANALYZE) audit_events")) await vacuum.ExecuteNonQueryAsync();
        log.WriteLine($"  loaded {events:N0} audit events in {clock.Elapsed.TotalSeconds:F1} s");

        var port = Tools.FreePort();
        var baseUrl = new Uri($"http://127.0.0.1:{port}/");
        var web = Tools.StartControlPlane(webDll, postgres.ConnectionString, baseUrl, work);
        try
        {
            await Tools.WaitForHttpAsync(new Uri(baseUrl, "healthz"), TimeSpan.FromSeconds(120));
            var applicationsUrl = new Uri(baseUrl, "api/v1/applications");
            // Straight after the start: every method still runs its first, unoptimized JIT tier (see docs/benchmarks.md).
            var cold = await Tools.WrkAsync(applicationsUrl, 16, TimeSpan.FromSeconds(3), $"Authorization: Bearer {Tools.ControlPlaneToken}");
            log.WriteLine($"  GET /api/v1/applications right after the start, 16 conns: {cold.RequestsPerSecond:N0} req/s, p99 {cold.P99Ms:F1} ms");
            using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromMinutes(10) };
            http.DefaultRequestHeaders.Authorization = new("Bearer", Tools.ControlPlaneToken);
            // Warm the routes (JIT, pools) on a small filtered export and a page, then let the process settle.
            (await http.GetAsync("api/v1/audit/export?format=csv&application=nothing-here")).EnsureSuccessStatusCode();
            (await http.GetAsync("api/v1/audit?limit=10")).EnsureSuccessStatusCode();
            await Task.Delay(TimeSpan.FromSeconds(2));

            // Each pair measured in alternation, three times, the median of each side compared: one export against one psql run
            // swung between 0.6x and 1.6x on this machine from one minute to the next. The first export is among the three,
            // so the cold run still counts.
            var (export, copy) = await AlternatingAsync(() => ExportAsync(http, web.Id), () => PsqlCopyAsync(postgres));
            log.WriteLine($"  export: {export.Seconds:F2} s median of {Runs(export)}, slowest first byte {export.FirstByteMs:F0} ms, {export.Bytes:N0} bytes, RSS {Mb(export.BaselineRss)} -> {Mb(export.PeakRss)} MB");
            log.WriteLine($"  psql \\copy: {copy.Seconds:F2} s median of {Runs(copy)}, {copy.Bytes:N0} bytes");
            var (verify, scan) = await AlternatingAsync(() => VerifyAsync(http, web.Id), () => SqlScanAsync(dataSource));
            log.WriteLine($"  verify: {verify.Seconds:F2} s median of {Runs(verify)}, RSS {Mb(verify.BaselineRss)} -> {Mb(verify.PeakRss)} MB");
            log.WriteLine($"  SQL-side chain scan: {scan.Seconds:F2} s median of {Runs(scan)}");

            var flow = await ReleaseFlow.RunAsync(baseUrl, http, Tools.ControlPlaneToken, web.Id, work, quick, log);
            // After the release flow, so the list has an application with a release history to read (every query of
            // ApplicationStatusQuery runs). Warmed first, as every data-plane target is: the JIT's tiering takes tens of
            // seconds on two busy cores.
            await Tools.WrkAsync(applicationsUrl, 16, TimeSpan.FromSeconds(quick ? 5 : 20), $"Authorization: Bearer {Tools.ControlPlaneToken}");
            var applications = await Tools.WrkAsync(applicationsUrl, 16, TimeSpan.FromSeconds(quick ? 3 : 15), $"Authorization: Bearer {Tools.ControlPlaneToken}");
            log.WriteLine($"  GET /api/v1/applications, 16 conns: {applications.RequestsPerSecond:N0} req/s, p99 {applications.P99Ms:F1} ms, failed {applications.Failed}");
            return new ControlPlaneResult(events, export, copy, verify, scan, applications, cold, flow);
        }
        finally
        {
            await Tools.TerminateAsync(web, TimeSpan.FromSeconds(20));
        }
    }

    private const int Pairs = 3;

    private static async Task<(StreamRow Ours, StreamRow Reference)> AlternatingAsync(Func<Task<StreamRow>> ours, Func<Task<StreamRow>> reference)
    {
        var (a, b) = (new List<StreamRow>(), new List<StreamRow>());
        for (var i = 0; i < Pairs; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1)); // let the previous run's connections and GC settle
            a.Add(await ours());
            await Task.Delay(TimeSpan.FromSeconds(1));
            b.Add(await reference());
        }
        return (StreamRow.MedianOf(a), StreamRow.MedianOf(b));
    }

    private static string Runs(StreamRow row) => string.Join(" / ", row.RunSeconds.Select(s => s.ToString("F2", CultureInfo.InvariantCulture))) + " s";

    private static async Task<StreamRow> ExportAsync(HttpClient http, int pid)
    {
        await using var rss = new Tools.RssSampler(pid);
        var clock = Stopwatch.StartNew();
        using var response = await http.GetAsync("api/v1/audit/export?format=csv", HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[1 << 16];
        double? firstByte = null;
        long bytes = 0;
        int read;
        while ((read = await body.ReadAsync(buffer)) > 0)
        {
            firstByte ??= clock.Elapsed.TotalMilliseconds;
            bytes += read;
        }
        var seconds = clock.Elapsed.TotalSeconds;
        await rss.DisposeAsync();
        return new StreamRow("export (CSV, REST)", seconds, firstByte, bytes, rss.Baseline, rss.Peak);
    }

    private static async Task<StreamRow> VerifyAsync(HttpClient http, int pid)
    {
        await using var rss = new Tools.RssSampler(pid);
        var clock = Stopwatch.StartNew();
        var text = await http.GetStringAsync("api/v1/audit/verify");
        var seconds = clock.Elapsed.TotalSeconds;
        await rss.DisposeAsync();
        if (!text.Contains("\"events\"", StringComparison.Ordinal)) throw new InvalidOperationException($"verify answered {text}");
        return new StreamRow("verify (REST)", seconds, null, null, rss.Baseline, rss.Peak);
    }

    /// <summary>The same columns in the same order, written by PostgreSQL's COPY through psql to a file.</summary>
    private static async Task<StreamRow> PsqlCopyAsync(EmbeddedPostgres postgres)
    {
        var c = new NpgsqlConnectionStringBuilder(postgres.ConnectionString);
        var file = Path.Combine(Path.GetTempPath(), $"cp-bench-copy-{Guid.NewGuid():N}.csv");
        var clock = Stopwatch.StartNew();
        var (code, output) = await Tools.RunAsync("psql", ["-X", "-q", "-h", c.Host!, "-p", c.Port.ToString(CultureInfo.InvariantCulture), "-U", c.Username!, "-d", c.Database!, "-c",
            "\\copy (SELECT sequence, occurred_at, actor, actor_kind, source_ip, action, application, deployment_id, before_state, after_state, " +
            $"reason, details, previous_hash, hash FROM audit_events ORDER BY sequence) TO '{file}' WITH (FORMAT csv, HEADER)"],
            new Dictionary<string, string> { ["PGPASSWORD"] = c.Password! });
        var seconds = clock.Elapsed.TotalSeconds;
        if (code != 0) throw new InvalidOperationException($"psql \\copy failed: {output}");
        var bytes = new FileInfo(file).Length;
        File.Delete(file);
        return new StreamRow("psql \\copy (CSV)", seconds, null, bytes, null, null);
    }

    /// <summary>
    /// The verifier's walk done inside PostgreSQL: every row read in sequence order, its link to the previous hash checked and
    /// a SHA-256 computed over its fields. Not the same hash format (that lives in C#), the same amount of work per row.
    /// </summary>
    private static async Task<StreamRow> SqlScanAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT count(*), count(*) FILTER (WHERE previous IS DISTINCT FROM previous_hash AND sequence > 1),
                   sum(length(sha256(convert_to(concat_ws('|', sequence, occurred_at, actor, actor_kind, source_ip, action, application,
                       deployment_id, before_state, after_state, reason, details, previous_hash), 'UTF8'))))
            FROM (SELECT *, lag(hash) OVER (ORDER BY sequence) AS previous FROM audit_events) t
            """);
        command.CommandTimeout = 600;
        var clock = Stopwatch.StartNew();
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new StreamRow("chain walk in SQL", clock.Elapsed.TotalSeconds, null, null, null, null);
    }

    private static string Mb(long? bytes) => bytes is { } b ? (b / 1024.0 / 1024).ToString("F0", CultureInfo.InvariantCulture) : "—";

    public static string Table(ControlPlaneResult r)
    {
        var text = new StringBuilder();
        string Growth(StreamRow s) => s.PeakRss is { } p && s.BaselineRss is { } b ? $"{Mb(b)} → {Mb(p)} MB (+{Mb(p - b)})" : "—";
        text.AppendLine(CultureInfo.InvariantCulture, $"| {r.Events:N0} events | ratio | time (median) | runs, in alternation | first byte (slowest) | bytes | ControlPlane RSS (largest growth) |");
        text.AppendLine("|---|---|---|---|---|---|---|");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {r.Export.Name} | **{r.Export.Seconds / r.Copy.Seconds:F2}× psql \\copy** | {r.Export.Seconds:F2} s | {Runs(r.Export)} | {r.Export.FirstByteMs:F0} ms | {r.Export.Bytes:N0} | {Growth(r.Export)} |");
        text.AppendLine(CultureInfo.InvariantCulture, $"| {r.Copy.Name} | 1.00× | {r.Copy.Seconds:F2} s | {Runs(r.Copy)} | — | {r.Copy.Bytes:N0} | — |");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| {r.Verify.Name} | **{r.Verify.Seconds / r.SqlScan.Seconds:F2}× the SQL walk** | {r.Verify.Seconds:F2} s | {Runs(r.Verify)} | — | — | {Growth(r.Verify)} |");
        text.AppendLine(CultureInfo.InvariantCulture, $"| {r.SqlScan.Name} | 1.00× | {r.SqlScan.Seconds:F2} s | {Runs(r.SqlScan)} | — | — | — |");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"`GET /api/v1/applications` (16 connections, bearer token, after a warm-up): **{r.Applications.RequestsPerSecond:N0} req/s**, p50 {r.Applications.P50Ms:F2} ms, " +
            $"p99 {r.Applications.P99Ms:F2} ms, {r.Applications.Failed} failed of {r.Applications.Requests:N0}; in the first 3 s after ControlPlane answered " +
            $"(cold JIT) {r.ApplicationsCold.RequestsPerSecond:N0} req/s, p99 {r.ApplicationsCold.P99Ms:F2} ms.");
        return text.ToString();
    }
}
