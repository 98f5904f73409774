using System.Net;
using System.Text;
using System.Text.Json;
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

    /// <summary>Binding failures, answered by the framework before any endpoint code runs — the cases that were a bare 400 in Production.</summary>
    public static TheoryData<string, string, string, string?, string, HttpStatusCode, string> BindingCases => new()
    {
        { "unknown field", "POST", "/api/v1/applications/demo-shop/deployments", "application/json", """{"version":"2.0.0","verison":"x"}""", HttpStatusCode.BadRequest, "verison" },
        { "wrong type", "POST", "/api/v1/applications/demo-shop/deployments", "application/json", """{"version":2}""", HttpStatusCode.BadRequest, "version" },
        { "wrong nested type", "POST", "/api/v1/applications/demo-shop/deployments", "application/json", """{"version":"2.0.0","freezeOverride":{"reason":[]}}""", HttpStatusCode.BadRequest, "freezeOverride.reason" },
        { "malformed JSON", "POST", "/api/v1/applications/demo-shop/deployments", "application/json", """{"version": "2.0.0" """, HttpStatusCode.BadRequest, "body" },
        { "trailing garbage", "POST", "/api/v1/applications/demo-shop/rollback", "application/json", """{"reason":"x"} {""", HttpStatusCode.BadRequest, "body" },
        { "duplicate key", "POST", "/api/v1/applications/demo-shop/deployments", "application/json", """{"version":"2.0.0","version":"3.0.0"}""", HttpStatusCode.BadRequest, "version" },
        { "duplicate key in settings", "POST", "/api/v1/applications", "application/json",
            """{"name":"dup-app","router":{"kind":"embedded","settings":{"port":0,"port":1}},"deployer":{"kind":"external","settings":{}},"initialVersion":"1.0.0"}""",
            HttpStatusCode.BadRequest, "router.settings.port" },
        { "bad enum", "POST", "/api/v1/applications", "application/json", """{"name":"enum-app","liveSlot":"purple"}""", HttpStatusCode.BadRequest, "liveSlot" },
        { "number out of range", "POST", "/api/v1/applications", "application/json", """{"name":"big-app","policy":{"requiredApprovals":99999999999999999999}}""", HttpStatusCode.BadRequest, "policy.requiredApprovals" },
        { "array for an object", "POST", "/api/v1/tokens", "application/json", """[{"name":"x"}]""", HttpStatusCode.BadRequest, "body" },
        { "empty body", "POST", "/api/v1/applications/demo-shop/rollback", "application/json", "", HttpStatusCode.BadRequest, "body" },
        { "bad query integer", "GET", "/api/v1/audit?limit=ten", null, "", HttpStatusCode.BadRequest, "limit" },
        { "bad query date", "GET", "/api/v1/audit?from=yesterday", null, "", HttpStatusCode.BadRequest, "from" },
        { "bad query uuid", "GET", "/api/v1/audit/export?format=csv&deploymentId=42", null, "", HttpStatusCode.BadRequest, "deploymentId" },
        { "bad route uuid", "POST", "/api/v1/deployments/not-a-uuid/approve", "application/json", "{}", HttpStatusCode.BadRequest, "id" },
        { "text/plain body", "POST", "/api/v1/applications/demo-shop/deployments", "text/plain", """{"version":"2.0.0"}""", HttpStatusCode.UnsupportedMediaType, "Content-Type" },
        { "no content type", "POST", "/api/v1/applications/demo-shop/deployments", null, """{"version":"2.0.0"}""", HttpStatusCode.UnsupportedMediaType, "Content-Type" },
        { "unknown charset", "POST", "/api/v1/applications/demo-shop/deployments", "application/json; charset=ebcdic", """{"version":"2.0.0"}""", HttpStatusCode.UnsupportedMediaType, "Content-Type" },
        { "non-UTF-8 charset", "POST", "/api/v1/applications/demo-shop/rollback", "application/json; charset=utf-16", """{"reason":"x"}""", HttpStatusCode.UnsupportedMediaType, "Content-Type" },
    };

    [Theory]
    [MemberData(nameof(BindingCases))]
    public async Task A_binding_failure_is_a_problem_whose_errors_name_the_field_or_header(
        string what, string method, string url, string? contentType, string body, HttpStatusCode expected, string field)
    {
        using var admin = _factory.Admin();
        var before = await CountsAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method != "GET")
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            if (contentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        var response = await admin.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.True(response.StatusCode == expected, $"{what}: expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages) && messages.GetArrayLength() > 0, $"{what}: errors do not name '{field}': {text}");
        Assert.Equal(before, await CountsAsync());
    }

    [Fact]
    public async Task Malformed_JSON_is_located_by_line_and_byte()
    {
        using var admin = _factory.Admin();
        var response = await admin.PostAsync("/api/v1/applications/demo-shop/deployments",
            new StringContent("{\n  \"version\": \"2.0.0\",\n  \"reason\": oops\n}", Encoding.UTF8, "application/json"), Ct);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var message = problem.GetProperty("errors").GetProperty("reason")[0].GetString();
        Assert.Contains("line 3", message);
    }

    [Fact]
    public async Task A_wrong_type_says_what_the_field_takes()
    {
        using var admin = _factory.Admin();
        var response = await admin.PostAsync("/api/v1/applications",
            new StringContent("""{"name":"enum-app","liveSlot":"purple"}""", Encoding.UTF8, "application/json"), Ct);
        var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("errors").GetProperty("liveSlot")[0].GetString();
        Assert.Contains("Blue", message);
        Assert.Contains("Green", message);
    }

    [Fact]
    public async Task An_API_error_is_problem_json_even_when_the_client_accepts_only_html()
    {
        using var admin = _factory.Admin();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/audit?limit=ten");
        request.Headers.Accept.ParseAdd("text/html");
        var response = await admin.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("limit", await response.Content.ReadAsStringAsync(Ct));
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
