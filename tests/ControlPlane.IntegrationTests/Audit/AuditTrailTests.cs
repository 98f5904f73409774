using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;

namespace ControlPlane.IntegrationTests.Audit;

public sealed class AuditTrailTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Theory]
    [InlineData("UPDATE audit_events SET reason = 'rewritten' WHERE sequence = 1")]
    [InlineData("DELETE FROM audit_events WHERE sequence = 1")]
    [InlineData("TRUNCATE audit_events")]
    public async Task PostgreSQL_refuses_to_change_or_remove_audit_events(string sql)
    {
        var ex = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(sql));
        Assert.Contains("append-only", ex.MessageText);
        using var admin = _factory.Admin();
        Assert.True((await admin.GetJsonAsync("/api/v1/audit/verify")).GetProperty("valid").GetBoolean());
    }

    [Fact]
    public async Task A_row_altered_behind_the_chain_is_named_by_verify()
    {
        using var admin = _factory.Admin();
        (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = "one", role = "Viewer" }, Ct)).EnsureSuccessStatusCode();
        (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = "two", role = "Viewer" }, Ct)).EnsureSuccessStatusCode();
        var ok = await admin.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(ok.GetProperty("valid").GetBoolean(), ok.ToString());
        var events = ok.GetProperty("events").GetInt64();
        Assert.True(events >= 3);

        // A superuser can switch the trigger off; the hash chain still catches the edit.
        await ExecuteAsync("""
            ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete;
            UPDATE audit_events SET actor = 'someone-else' WHERE sequence = 2;
            ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete;
            """);
        var broken = await admin.GetJsonAsync("/api/v1/audit/verify");
        Assert.False(broken.GetProperty("valid").GetBoolean());
        Assert.Equal(2, broken.GetProperty("firstInvalidSequence").GetInt64());
    }

    [Fact]
    public async Task A_time_window_in_any_offset_selects_the_same_events_as_in_utc()
    {
        using var admin = _factory.Admin();
        (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = "windowed", role = "Viewer" }, Ct)).EnsureSuccessStatusCode();
        var from = DateTimeOffset.UtcNow.AddHours(-1);
        var to = DateTimeOffset.UtcNow.AddHours(1);
        string Window(TimeSpan offset) =>
            $"from={Uri.EscapeDataString(from.ToOffset(offset).ToString("O"))}&to={Uri.EscapeDataString(to.ToOffset(offset).ToString("O"))}";

        // Npgsql writes only UTC to timestamptz: an offset used to be a 500 on the list and an export of the header alone.
        var utc = await admin.GetStringAsync($"/api/v1/audit/export?format=csv&{Window(TimeSpan.Zero)}", Ct);
        Assert.Contains("token.created", utc);
        Assert.Equal(utc, await admin.GetStringAsync($"/api/v1/audit/export?format=csv&{Window(TimeSpan.FromHours(2))}", Ct));
        Assert.Equal(utc, await admin.GetStringAsync($"/api/v1/audit/export?format=csv&{Window(TimeSpan.FromHours(-5))}", Ct));
        var page = await admin.GetJsonAsync($"/api/v1/audit?limit=500&{Window(TimeSpan.FromHours(2))}");
        Assert.Equal(utc.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length - 1, page.GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task Keyset_paging_walks_every_event_once_newest_first_and_export_matches_the_filter()
    {
        using var admin = _factory.Admin();
        for (var i = 0; i < 7; i++)
            (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = $"t{i}", role = "Viewer" }, Ct)).EnsureSuccessStatusCode();

        var seen = new List<long>();
        string? cursor = null;
        do
        {
            var page = await admin.GetJsonAsync($"/api/v1/audit?limit=3{(cursor is null ? "" : $"&cursor={cursor}")}");
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("sequence").GetInt64()));
            cursor = page.GetProperty("nextCursor").ValueKind == JsonValueKind.String ? page.GetProperty("nextCursor").GetString() : null;
        } while (cursor is not null);
        var total = (await admin.GetJsonAsync("/api/v1/audit/verify")).GetProperty("events").GetInt64();
        Assert.Equal(total, seen.Count);
        Assert.Equal(seen.OrderByDescending(s => s), seen);

        var jsonl = await admin.GetStringAsync("/api/v1/audit/export?format=jsonl&action=token.created", Ct);
        var lines = jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(7, lines.Length);
        Assert.All(lines, l => Assert.Equal("token.created", JsonDocument.Parse(l).RootElement.GetProperty("action").GetString()));

        var csv = await admin.GetAsync("/api/v1/audit/export?format=csv&action=token.created", Ct);
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        var rows = (await csv.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("sequence,occurredAt,actor", rows[0]);
        Assert.Equal(8, rows.Length);
        Assert.DoesNotContain(rows, r => r.Contains("cp_")); // a token secret is never in the trail
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(Ct);
    }
}
