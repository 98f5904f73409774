using System.Net;
using System.Text;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>Bad input gets a 4xx problem+json naming what is wrong, and changes nothing.</summary>
public sealed class BadInputTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;
    private HttpClient _rm = null!;

    public async ValueTask InitializeAsync()
    {
        _factory = await ControlPlaneAppFactory.StartAsync(postgres);
        _rm = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
    }

    public async ValueTask DisposeAsync()
    {
        _rm.Dispose();
        await _factory.DisposeAsync();
    }

    public static TheoryData<string, string, string, HttpStatusCode, string> Cases => new()
    {
        { "unknown application", "/api/v1/applications/no-such-app/deployments", """{"version":"2.0.0"}""", HttpStatusCode.NotFound, "no-such-app" },
        { "path-like version", "/api/v1/applications/demo-shop/deployments", """{"version":"../../etc/passwd"}""", HttpStatusCode.BadRequest, "version" },
        { "empty version", "/api/v1/applications/demo-shop/deployments", """{"version":""}""", HttpStatusCode.BadRequest, "version" },
        { "missing version", "/api/v1/applications/demo-shop/deployments", """{}""", HttpStatusCode.BadRequest, "version" },
        { "unknown field", "/api/v1/applications/demo-shop/deployments", """{"version":"2.0.0","verison":"x"}""", HttpStatusCode.BadRequest, "verison" },
        { "malformed JSON", "/api/v1/applications/demo-shop/deployments", """{"version": "2.0.0" """, HttpStatusCode.BadRequest, "JSON" },
        { "missing rollback reason", "/api/v1/applications/demo-shop/rollback", """{}""", HttpStatusCode.BadRequest, "reason" },
        { "blank rollback reason", "/api/v1/applications/demo-shop/rollback", """{"reason":"  "}""", HttpStatusCode.BadRequest, "reason" },
        { "unknown deployment", $"/api/v1/deployments/{Guid.NewGuid()}/approve", """{}""", HttpStatusCode.NotFound, "does not exist" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Is_refused_with_a_problem_naming_the_fault_and_nothing_changes(string what, string url, string body, HttpStatusCode expected, string mentioned)
    {
        var before = await CountsAsync();
        var response = await _rm.PostAsync(url, new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.True(response.StatusCode == expected, $"{what}: expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(mentioned, text, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, await CountsAsync());
    }

    [Fact]
    public async Task A_multi_megabyte_body_is_refused_with_413()
    {
        var before = await CountsAsync();
        var huge = """{"version":"2.0.0","reason":" """ + new string('x', 3 * 1024 * 1024) + "\"}";
        var response = await _rm.PostAsync("/api/v1/applications/demo-shop/deployments", new StringContent(huge, Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, await CountsAsync());
    }

    [Fact]
    public async Task Registration_errors_name_each_field()
    {
        using var admin = _factory.Admin();
        var response = await admin.PostAsync("/api/v1/applications", new StringContent("""
            {"name":"Bad Name","router":{"kind":"teleport"},"deployer":{"kind":"process","settings":{"command":"","bluePort":70000,"greenPort":1}},
             "initialVersion":"1.0.0","checks":[{"name":"x","path":"nope"}],"policy":{"requiredApprovals":-1}}
            """, Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        foreach (var field in new[] { "\"name\"", "router.kind", "deployer.settings.command", "deployer.settings.bluePort", "checks[0].path", "policy.requiredApprovals" })
            Assert.Contains(field, text);
    }

    [Theory]
    [InlineData("kubernetes", "{}", "external", "{}", "router.settings.namespace", "deployer.settings.blueUrl")]
    [InlineData("aws-alb", "{\"region\":\"moon-1\"}", "kubernetes", "{}", "router.settings.region", "deployer.settings.namespace")]
    [InlineData("nginx", "{\"mode\":\"teleport\"}", "process", "{}", "router.settings.mode", "deployer.settings.command")]
    public async Task Every_router_and_deployer_kind_validates_its_settings_field_by_field(
        string router, string routerSettings, string deployer, string deployerSettings, string routerField, string deployerField)
    {
        using var admin = _factory.Admin();
        var body = $$"""{"name":"real-app","router":{"kind":"{{router}}","settings":{{routerSettings}}},"deployer":{"kind":"{{deployer}}","settings":{{deployerSettings}}},"initialVersion":"1.0.0"}""";
        var response = await admin.PostAsync("/api/v1/applications", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(routerField, text);
        Assert.Contains(deployerField, text);
    }

    private async Task<(long Audit, long Deployments)> CountsAsync()
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM deployments)", connection);
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
