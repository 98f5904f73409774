using System.Net;
using System.Text;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;

namespace ControlPlane.IntegrationTests.Checks;

/// <summary>Releases judged on evidence: the demo's JSON checks (seed 001) and checks whose bad input is refused naming the field.</summary>
public sealed class EvidenceChecksTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const string App = "demo-shop";
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private static string VerifyMessage(JsonElement deployment) =>
        deployment.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "verify").GetProperty("message").GetString()!;

    [Fact]
    public async Task Cold_cache_and_db_down_fail_verification_naming_the_value_and_traffic_never_moves()
    {
        using var rm = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        var publicUrl = await rm.PublicUrlAsync(App);

        var cold = await rm.WaitForStateAsync((await rm.StartReleaseAsync(App, "2.0.0-cold-cache")).GetProperty("id").GetString()!, "Failed");
        Assert.Contains("check 'cache'", VerifyMessage(cold));
        Assert.Contains("$.hitRatio was 0.6, needs ≥ 0.85", VerifyMessage(cold));
        Assert.Contains("$.hitRatio was 0.6, needs ≥ 0.85", cold.GetProperty("outcome").GetString());
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        // The number the check read is kept with the release (charted on its page), with the verdict it got.
        var coldId = cold.GetProperty("id").GetString();
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM check_measurements WHERE deployment_id = '{coldId}' AND step = 'verify' " +
                                         "AND check_name = 'cache' AND name = '$.hitRatio' AND value = 0.6 AND outcome = 'Failed'"));

        var down = await rm.WaitForStateAsync((await rm.StartReleaseAsync(App, "2.0.0-db-down")).GetProperty("id").GetString()!, "Failed");
        Assert.Contains("check 'db'", VerifyMessage(down));
        Assert.Contains("$.status was \"disconnected\", needs \"connected\"", VerifyMessage(down));
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));

        // A good version passes the same checks, and the message says what was read.
        var good = await rm.WaitForStateAsync((await rm.StartReleaseAsync(App, "2.0.0")).GetProperty("id").GetString()!, "AwaitingApproval");
        Assert.Contains("$.hitRatio = 0.92", VerifyMessage(good));
        Assert.Contains("$.status = \"connected\"", VerifyMessage(good));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM check_measurements WHERE deployment_id = '{good.GetProperty("id").GetString()}' " +
                                         "AND check_name = 'cache' AND name = '$.hitRatio' AND value = 0.92 AND outcome = 'Passed'"));
    }

    [Fact]
    public async Task The_seeded_policy_and_a_registered_check_show_their_assertions()
    {
        using var admin = _factory.Admin();
        var app = await admin.GetJsonAsync($"/api/v1/applications/{App}");
        var checks = app.GetProperty("checks").EnumerateArray().ToList();
        var cache = checks.Single(c => c.GetProperty("name").GetString() == "cache");
        Assert.Equal("http", cache.GetProperty("kind").GetString());
        Assert.Equal("$.hitRatio", cache.GetProperty("json")[0].GetProperty("path").GetString());
        Assert.Equal(0.85, cache.GetProperty("json")[0].GetProperty("min").GetDouble());
        var db = checks.Single(c => c.GetProperty("name").GetString() == "db");
        Assert.Equal("connected", db.GetProperty("json")[0].GetProperty("equals").GetString());
        Assert.False(db.TryGetProperty("query", out _)); // fields of another kind are not shown
    }

    public static TheoryData<string, string, string> BadChecks => new()
    {
        { "unknown check kind", """{"kind":"datadog","name":"x"}""", "checks[0].kind" },
        { "invalid JSONPath", """{"name":"x","path":"/h","json":[{"path":"status","equals":"ok"}]}""", "checks[0].json[0].path" },
        { "recursive JSONPath", """{"name":"x","path":"/h","json":[{"path":"$..status","equals":"ok"}]}""", "checks[0].json[0].path" },
        { "min > max on an assertion", """{"name":"x","path":"/h","json":[{"path":"$.a","min":2,"max":1}]}""", "checks[0].json[0].min" },
        { "min > max on prometheus", """{"kind":"prometheus","name":"x","query":"up","min":2,"max":1}""", "checks[0].min" },
        { "empty query", """{"kind":"prometheus","name":"x","query":"","max":1}""", "checks[0].query" },
        { "missing query", """{"kind":"prometheus","name":"x","max":1}""", "checks[0].query" },
        { "assertion without a bound", """{"name":"x","json":[{"path":"$.a"}]}""", "checks[0].json[0].equals" },
        { "unknown assertion field", """{"name":"x","json":[{"path":"$.a","equal":"y"}]}""", "checks[0].json[0].equal" },
        { "unknown check field", """{"name":"x","treshold":1}""", "checks[0].treshold" },
        { "url not absolute", """{"name":"x","url":"/internal"}""", "checks[0].url" },
        { "http field on prometheus", """{"kind":"prometheus","name":"x","query":"up","max":1,"path":"/h"}""", "checks[0].path" },
        { "prometheus field on http", """{"name":"x","query":"up"}""", "checks[0].query" },
    };

    [Theory]
    [MemberData(nameof(BadChecks))]
    public async Task Bad_checks_are_refused_naming_the_field_and_nothing_is_registered(string what, string check, string field)
    {
        using var admin = _factory.Admin();
        var before = await CountAsync("SELECT count(*) FROM applications") + await CountAsync("SELECT count(*) FROM audit_events");
        var body = """
            {"name":"evidence-bad","router":{"kind":"embedded","settings":{"listenAddress":"127.0.0.1","listenPort":0}},
             "deployer":{"kind":"external","settings":{"blueUrl":"http://127.0.0.1:1","greenUrl":"http://127.0.0.1:2"}},
             "initialVersion":"1.0.0","checks":[
            """ + check + "]}";
        var response = await admin.PostAsync("/api/v1/applications", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{what}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out _), $"{what}: expected an error on {field}: {text}");
        Assert.Equal(before, await CountAsync("SELECT count(*) FROM applications") + await CountAsync("SELECT count(*) FROM audit_events"));
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
