using System.Text.Json.Nodes;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>What a client generator reads from <c>/openapi/v1.json</c>: how to authenticate, what can go wrong, what it must send.</summary>
public sealed class OpenApiDocumentTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;
    private JsonNode _document = null!;

    public async ValueTask InitializeAsync()
    {
        _factory = await ControlPlaneAppFactory.StartAsync(postgres);
        using var client = _factory.ClientWithToken(null);
        _document = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json", Ct))!;
    }

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private IEnumerable<(string Method, string Path, JsonNode Operation)> ApiOperations() =>
        from path in _document["paths"]!.AsObject()
        where path.Key.StartsWith("/api/", StringComparison.Ordinal)
        from operation in path.Value!.AsObject()
        select (operation.Key.ToUpperInvariant(), path.Key, operation.Value!);

    [Fact]
    public void The_bearer_scheme_is_declared_and_required_by_every_API_operation()
    {
        var scheme = _document["components"]?["securitySchemes"]?["Bearer"];
        Assert.NotNull(scheme);
        Assert.Equal("http", scheme["type"]?.GetValue<string>());
        Assert.Equal("bearer", scheme["scheme"]?.GetValue<string>());
        Assert.NotEmpty(ApiOperations());
        Assert.All(ApiOperations(), o =>
            Assert.True(o.Operation["security"]?.AsArray().Any(r => r?["Bearer"] is not null) == true, $"{o.Method} {o.Path} declares no bearer requirement"));
        Assert.Null(_document["paths"]!["/healthz"]!["get"]!["security"]);
    }

    [Fact]
    public void Every_API_operation_declares_its_problem_json_errors()
    {
        foreach (var (method, path, operation) in ApiOperations())
        {
            var expected = new List<string> { "401", "403" };
            if (operation["requestBody"] is not null) expected.AddRange(["400", "413", "415"]);
            if (path.Contains("{id}", StringComparison.Ordinal)) expected.AddRange(["400", "404"]);
            if (path.Contains('{')) expected.Add("404");
            if (method != "GET") expected.Add("409");
            foreach (var status in expected.Distinct())
            {
                var response = operation["responses"]?[status];
                Assert.True(response?["content"]?["application/problem+json"]?["schema"] is not null, $"{method} {path} declares no problem+json {status}");
            }
        }
        var validation = _document["components"]!["schemas"]!["ValidationProblemDetails"]!;
        Assert.NotNull(validation["properties"]?["errors"]);
    }

    [Theory]
    [InlineData("StartReleaseRequest", new[] { "version" })]
    [InlineData("ApproveRequest", new string[0])]
    [InlineData("SwitchRequest", new string[0])]
    [InlineData("ReasonRequest", new[] { "reason" })]
    [InlineData("RegisterApplicationRequest", new[] { "name", "router", "deployer", "initialVersion" })]
    [InlineData("CreateTokenRequest", new[] { "name", "role" })]
    public void Only_the_fields_the_server_requires_are_marked_required(string schema, string[] required)
    {
        var node = _document["components"]!["schemas"]![schema];
        Assert.NotNull(node);
        var marked = node["required"]?.AsArray().Select(r => r!.GetValue<string>()).Order().ToArray() ?? [];
        Assert.Equal(required.Order().ToArray(), marked);
    }
}
