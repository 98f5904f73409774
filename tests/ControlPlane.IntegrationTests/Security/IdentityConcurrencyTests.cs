using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// Issue 9: requests racing for one name or one revocation against the real PostgreSQL — one winner, clean 409s naming
/// the field for the others, one audit event; never a 500. Production environment.
/// </summary>
public sealed class IdentityConcurrencyTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const int Racers = 6;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private SecurityAppFactory _app = null!;

    public async ValueTask InitializeAsync() =>
        _app = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?>
        {
            ["environment"] = "Production",
            ["ControlPlane:RateLimits:TokensPerMinute"] = "1000",
        });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    /// <summary>Fires the same request from <see cref="Racers"/> clients released at once.</summary>
    private async Task<List<HttpResponseMessage>> RaceAsync(Func<HttpClient, Task<HttpResponseMessage>> send)
    {
        var clients = Enumerable.Range(0, Racers).Select(_ => _app.Api()).ToList();
        // Warm every connection first, so the racing requests reach the server together.
        foreach (var c in clients) await c.GetAsync("/healthz", Ct);
        var start = new TaskCompletionSource();
        var tasks = clients.Select(async c => { await start.Task; return await send(c); }).ToList();
        start.SetResult();
        var responses = (await Task.WhenAll(tasks)).ToList();
        clients.ForEach(c => c.Dispose());
        return responses;
    }

    private static async Task AssertOneCreatedAndConflictsNamingAsync(List<HttpResponseMessage> responses, string field)
    {
        var summary = string.Join(", ", responses.Select(r => (int)r.StatusCode));
        Assert.True(responses.Count(r => r.StatusCode == HttpStatusCode.Created) == 1, $"expected exactly one 201: {summary}");
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            var text = await refused.Content.ReadAsStringAsync(Ct);
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, $"expected 409: {(int)refused.StatusCode} {text}");
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty(field, out _), text);
        }
    }

    [Fact]
    public async Task Concurrent_creation_of_one_user_name_gives_one_201_and_409s()
    {
        var responses = await RaceAsync(c => c.PostAsJsonAsync("/api/v1/users", new { userName = "racer", role = "Viewer", password = "a-long-enough-password" }, Ct));
        await AssertOneCreatedAndConflictsNamingAsync(responses, "userName");
        Assert.Single(await _app.AuditAsync("user.created"), e => e.GetProperty("details").GetString()!.Contains("racer"));
    }

    [Fact]
    public async Task Concurrent_creation_of_one_token_name_gives_one_201_and_409s()
    {
        var responses = await RaceAsync(c => c.PostAsJsonAsync("/api/v1/tokens", new { name = "ci-race", role = "Viewer" }, Ct));
        await AssertOneCreatedAndConflictsNamingAsync(responses, "name");
        Assert.Single(await _app.AuditAsync("token.created"));
    }

    [Fact]
    public async Task Concurrent_revokes_of_one_token_all_succeed_and_write_one_event()
    {
        var (id, secret) = await _app.CreateTokenAsync("ci-revoke", "Viewer");
        var responses = await RaceAsync(c => c.DeleteAsync($"/api/v1/tokens/{id}", Ct));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        foreach (var r in responses) Assert.False((await r.JsonAsync()).GetProperty("usable").GetBoolean());
        Assert.Single(await _app.AuditAsync("token.revoked"));
        using var revoked = _app.Api(secret);
        Assert.Equal(HttpStatusCode.Unauthorized, (await revoked.GetAsync("/api/v1/applications", Ct)).StatusCode);
    }
}
