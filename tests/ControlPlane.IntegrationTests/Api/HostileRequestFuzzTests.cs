using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Npgsql;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>
/// Hostile requests generated from the served OpenAPI document, for every <c>/api</c> operation, as each role and as nobody,
/// against a Production host on a real PostgreSQL. Every request carries exactly one fault, so every answer must be a 4xx.
/// The oracle:
/// <list type="bullet">
/// <item>never a 5xx, never a 2xx/3xx;</item>
/// <item>every 4xx is <c>application/problem+json</c>;</item>
/// <item>a 400 or 415 <em>names the field or header</em>: its <c>errors</c> object has at least one key, and every key is a
/// route parameter or query parameter of the operation, the <c>Content-Type</c> header, <c>body</c> (the JSON document
/// itself, optionally with an index path such as <c>body[0]</c>) or a JSON path (<c>policy.requiredApprovals</c>,
/// <c>checks[0].path</c>) whose first segment is a property of the operation's request schema or one the request sent;
/// when the fault is at a known place (a wrong type, an unknown or repeated field, a bad query or route value, a charset)
/// that exact name is among the keys;</item>
/// <item>a 401 says which header to send (its detail names <c>Authorization</c>); any other 4xx has a detail;</item>
/// <item>nothing changed: the audit trail, deployments, approvals, freeze windows, applications, users and tokens are as before.</item>
/// </list>
/// The generator is seeded: a failure prints the seed and the request, and the same seed replays the same requests.
/// </summary>
public sealed partial class HostileRequestFuzzTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const int CasesPerOperationAndIdentity = 15;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly string[] Roles = ["Admin", "ReleaseManager", "OnCall", "Auditor", "Viewer"];

    private ControlPlaneAppFactory _base = null!;
    private Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program> _factory = null!;

    public async ValueTask InitializeAsync()
    {
        _base = new ControlPlaneAppFactory(await postgres.CreateDatabaseWithRolesAsync("fuzz"));
        // Thousands of token requests from one address would otherwise meet the per-IP limit long before the binder.
        _factory = _base.WithWebHostBuilder(b => b.UseSetting("ControlPlane:RateLimits:TokensPerMinute", "1000000"));
        _ = _factory.Services;
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        await _base.DisposeAsync();
    }

    [Fact]
    public async Task Thousands_of_hostile_requests_at_every_route_as_every_role_are_refused_with_problems_naming_the_fault_and_change_nothing()
    {
        var seed = Environment.GetEnvironmentVariable("CONTROLPLANE_FUZZ_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : Random.Shared.Next();
        var random = new Random(seed);

        using var admin = Client(ControlPlaneAppFactory.AdminToken);
        await admin.PublicUrlAsync("demo-shop"); // the demo is attached: nothing in the background writes any more
        var identities = new List<(string Name, HttpClient Client)>();
        foreach (var role in Roles)
            identities.Add((role, await ClientWithRoleAsync(admin, "fuzz-" + role.ToLowerInvariant(), role)));
        identities.Add(("none", Client(null)));

        var document = JsonNode.Parse(await admin.GetStringAsync("/openapi/v1.json", Ct))!;
        var operations = Operations(document).ToList();
        Assert.True(operations.Count >= 20, $"the OpenAPI document lists only {operations.Count} API operations");

        var before = await SnapshotAsync();
        var failures = new List<(string Problem, string Kind, string Example)>();
        var sent = 0;
        var statuses = new Dictionary<int, int>();
        foreach (var operation in operations)
        foreach (var (identity, client) in identities)
        {
            for (var i = 0; i < CasesPerOperationAndIdentity; i++)
            {
                var fault = Generate(operation, random);
                using var request = fault.ToRequest();
                using var response = await client.SendAsync(request, Ct);
                var body = await response.Content.ReadAsStringAsync(Ct);
                sent++;
                statuses[(int)response.StatusCode] = statuses.GetValueOrDefault((int)response.StatusCode) + 1;
                if (Judge(operation, fault, response, body) is { } problem)
                    failures.Add((problem, fault.Kind, $"as {identity}: {fault}\n      → {(int)response.StatusCode} {response.Content.Headers.ContentType}: {Shorten(body)}"));
            }
        }
        var after = await SnapshotAsync();

        Assert.True(sent >= 2000, $"only {sent} requests were sent");
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {sent} hostile requests were answered wrongly (seed {seed}; replay with CONTROLPLANE_FUZZ_SEED={seed}):\n" +
            string.Join("\n", failures.GroupBy(f => (f.Problem, f.Kind)).OrderByDescending(g => g.Count())
                .Select(g => $"  {g.Count()}× {g.Key.Problem} [{g.Key.Kind}], e.g.\n    {g.First().Example}")));
        Assert.Equal(before, after);
        TestContext.Current.TestOutputHelper?.WriteLine($"seed {seed}: {sent} requests; statuses {string.Join(", ", statuses.OrderBy(p => p.Key).Select(p => $"{p.Key}×{p.Value}"))}");
    }

    // ---- The operations, from the document ---------------------------------------------------------------------------------

    private sealed record Field(string Path, JsonNode Schema);

    private sealed record Operation(string Method, string Path, List<(string Name, string In, JsonNode Schema)> Parameters, JsonNode? Body, JsonNode Document)
    {
        public JsonNode? BodySchema => Body is null ? null : Resolve(Document, Body);

        public IEnumerable<string> BodyProperties => BodySchema?["properties"]?.AsObject().Select(p => p.Key) ?? [];

        public override string ToString() => $"{Method} {Path}";
    }

    private static IEnumerable<Operation> Operations(JsonNode document)
    {
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            if (!path.StartsWith("/api/", StringComparison.Ordinal)) continue;
            foreach (var (method, operation) in item!.AsObject())
            {
                var parameters = (operation!["parameters"]?.AsArray() ?? [])
                    .Select(p => (p!["name"]!.GetValue<string>(), p["in"]!.GetValue<string>(), Resolve(document, p["schema"]!))).ToList();
                var body = operation["requestBody"]?["content"]?["application/json"]?["schema"];
                yield return new(method.ToUpperInvariant(), path, parameters, body, document);
            }
        }
    }

    /// <summary>Follows <c>$ref</c> and drops the <c>null</c> alternative of a nullable schema.</summary>
    private static JsonNode Resolve(JsonNode document, JsonNode schema)
    {
        for (var i = 0; i < 10; i++)
        {
            if (schema["$ref"]?.GetValue<string>() is { } reference)
                schema = document["components"]!["schemas"]![reference.Split('/')[^1]]!;
            else if ((schema["oneOf"] ?? schema["anyOf"])?.AsArray() is { } alternatives
                     && alternatives.FirstOrDefault(a => a!["type"]?.ToString() != "null") is { } chosen)
                schema = chosen;
            else return schema;
        }
        return schema;
    }

    private static string Kind(JsonNode schema)
    {
        if (schema["enum"] is not null) return "enum";
        return schema["type"] switch
        {
            JsonArray types => types.Select(t => t!.GetValue<string>()).FirstOrDefault(t => t != "null") ?? "any",
            JsonValue type => type.GetValue<string>(),
            _ => schema["properties"] is not null ? "object" : "any",
        };
    }

    /// <summary>Every typed field of the body, nested objects and the first item of arrays included.</summary>
    private static IEnumerable<Field> Fields(JsonNode document, JsonNode schema, string prefix = "", int depth = 0)
    {
        if (depth > 3 || schema["properties"]?.AsObject() is not { } properties) yield break;
        foreach (var (name, raw) in properties)
        {
            var field = Resolve(document, raw!);
            var path = prefix.Length == 0 ? name : $"{prefix}.{name}";
            yield return new(path, field);
            if (Kind(field) == "object") foreach (var inner in Fields(document, field, path, depth + 1)) yield return inner;
            if (Kind(field) == "array" && field["items"] is { } items && Kind(Resolve(document, items)) == "object")
                foreach (var inner in Fields(document, Resolve(document, items), path + "[0]", depth + 1)) yield return inner;
        }
    }

    // ---- The faults ----------------------------------------------------------------------------------------------------------

    private sealed record Fault(string Kind, string Method, string Url, byte[]? Body, string? ContentType, string? Expected)
    {
        public HttpRequestMessage ToRequest()
        {
            var request = new HttpRequestMessage(new HttpMethod(Method), Url);
            if (Body is not null)
            {
                request.Content = new ByteArrayContent(Body);
                if (ContentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
            }
            return request;
        }

        public override string ToString() =>
            $"[{Kind}] {Method} {Url} {(ContentType is null ? "" : $"({ContentType}) ")}{(Body is null ? "" : Shorten(Encoding.UTF8.GetString(Body)))}";
    }

    // No %00: a path with a NUL never reaches the application (Kestrel refuses the request line; TestServer throws).
    private static readonly string[] JunkSegments =
        ["no-such-thing", "not-a-uuid", "1", "%2F", "%25", "a%20b", "%27%20OR%201%3D1--", "%F0%9F%98%80", new string('z', 300), "00000000-0000-0000-0000-00000000000g"];

    private static readonly string[] BadContentTypes =
        ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "%%%", "application/json; charset=ebcdic",
         "application/json; charset=utf-16", "application/json; charset=latin1", "application/json; charset=\"x-unknown\""];

    private static readonly string[] MalformedJson =
        ["{", "{\"a\":", "{\"a\":1,}", "{'a':1}", "{\"a\":NaN}", "{\"a\":1} trailing", "/* comment */ {}", "nul", "[1,2", "\"unterminated",
         new string('[', 200) + new string(']', 200), "{\"a\":\"\\uZZZZ\"}", "{\"a\":01}"];

    private static Fault Generate(Operation operation, Random random)
    {
        var hasBody = operation.Body is not null;
        var routeParameters = operation.Parameters.Where(p => p.In == "path").ToList();
        var typedQuery = operation.Parameters.Where(p => p.In == "query" && Kind(p.Schema) is "integer" or "number" or "boolean" || p.In == "query" && p.Schema["format"] is not null).ToList();
        var fields = hasBody ? Fields(operation.Document, operation.BodySchema!).ToList() : [];

        var kinds = new List<string> { "junk segment", "bad charset" };
        if (routeParameters.Count > 0) kinds.Add("route value");
        if (typedQuery.Count > 0) { kinds.Add("query value"); kinds.Add("query value"); }
        if (hasBody)
        {
            kinds.AddRange(["unknown field", "malformed JSON", "content type", "not an object", "huge body"]);
            if (fields.Count > 0) kinds.AddRange(["wrong type", "wrong type", "wrong type", "duplicate key", "duplicate key", "number out of range"]);
        }
        var kind = kinds[random.Next(kinds.Count)];

        // Route values that exist (so the body is what is at fault) — except where no body can be at fault: then nothing
        // may exist, or the request would be a legitimate one.
        var values = routeParameters.ToDictionary(p => p.Name, p => Kind(p.Schema) == "string" && p.Schema["format"]?.ToString() == "uuid"
            ? Guid.NewGuid().ToString() : hasBody && p.Name == "name" ? "demo-shop" : "no-such-" + random.Next(1_000_000));
        string Url(IReadOnlyDictionary<string, string> v, string query = "") =>
            ParameterPattern().Replace(operation.Path, m => v[m.Groups[1].Value]) + query;
        byte[] Json(JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString());
        var minimal = hasBody ? Minimal(operation) : null;

        switch (kind)
        {
            case "junk segment":
                return new(kind, operation.Method, Url(values) + "/" + JunkSegments[random.Next(JunkSegments.Length)],
                    minimal is null ? null : Json(minimal), hasBody ? "application/json" : null, null);
            case "bad charset":
            {
                var charset = random.Next(3) switch { 0 => "ebcdic", 1 => "utf-16", _ => "x-" + random.Next(1000) };
                return new(kind, operation.Method, Url(values), Encoding.UTF8.GetBytes(minimal?.ToJsonString() ?? "{}"), $"application/json; charset={charset}", "Content-Type");
            }
            case "route value":
            {
                var parameter = routeParameters[random.Next(routeParameters.Count)];
                var junk = new Dictionary<string, string>(values) { [parameter.Name] = JunkSegments[random.Next(JunkSegments.Length)] };
                var typed = parameter.Schema["format"]?.ToString() == "uuid";
                return new(kind, operation.Method, Url(junk), minimal is null ? null : Json(minimal), hasBody ? "application/json" : null, typed ? parameter.Name : null);
            }
            case "query value":
            {
                var parameter = typedQuery[random.Next(typedQuery.Count)];
                string[] bad = Kind(parameter.Schema) is "integer" or "number"
                    ? ["ten", "1.5", "99999999999999999999", "-99999999999999999999", "0x10", "1e3", "%00"]
                    : parameter.Schema["format"]?.ToString() == "uuid" ? ["42", "not-a-uuid", "{}", "00000000-0000-0000-0000"]
                    : ["yesterday", "2030-13-45T00:00:00Z", "31/12/2030", "now", "%27"];
                var query = $"?{parameter.Name}={bad[random.Next(bad.Length)]}";
                if (random.Next(4) == 0) query = $"?{parameter.Name}=1&{parameter.Name}={bad[random.Next(bad.Length)]}"; // repeated
                return new(kind, operation.Method, Url(values, query), null, null, parameter.Name);
            }
            case "unknown field":
            {
                var body = minimal!.DeepClone().AsObject();
                var name = "unexpected" + random.Next(1000);
                body[name] = random.Next(2) == 0 ? "x" : JsonValue.Create(1);
                return new(kind, operation.Method, Url(values), Json(body), "application/json", name);
            }
            case "malformed JSON":
                return new(kind, operation.Method, Url(values), Encoding.UTF8.GetBytes(MalformedJson[random.Next(MalformedJson.Length)]), "application/json", null);
            case "content type":
            {
                var contentType = random.Next(BadContentTypes.Length + 1) is var i && i < BadContentTypes.Length ? BadContentTypes[i] : null;
                return new(kind, operation.Method, Url(values), Json(minimal!), contentType, "Content-Type");
            }
            case "not an object":
            {
                string[] bodies = ["[]", "[{}]", "\"text\"", "42", "true", "null", ""];
                return new(kind, operation.Method, Url(values), Encoding.UTF8.GetBytes(bodies[random.Next(bodies.Length)]), "application/json", null);
            }
            case "huge body":
            {
                var body = minimal!.DeepClone().AsObject();
                body[operation.BodyProperties.First()] = new string('x', 70 * 1024);
                return new(kind, operation.Method, Url(values), Json(body), "application/json", "body");
            }
            case "wrong type":
            {
                var field = fields[random.Next(fields.Count)];
                var body = minimal!.DeepClone().AsObject();
                Set(body, field.Path, WrongValue(Kind(field.Schema), random));
                return new(kind, operation.Method, Url(values), Json(body), "application/json", Kind(field.Schema) == "any" ? null : field.Path);
            }
            case "duplicate key":
            {
                // The same field twice (sometimes in another letter case, which the case-insensitive binder treats as the same).
                var name = operation.BodyProperties.ElementAt(random.Next(operation.BodyProperties.Count()));
                var rest = minimal!.DeepClone().AsObject();
                var value = rest[name]?.ToJsonString() ?? "null";
                rest.Remove(name);
                var again = random.Next(3) == 0 ? char.ToUpperInvariant(name[0]) + name[1..] : name;
                var others = rest.ToJsonString();
                var text = $"{{{JsonSerializer.Serialize(name)}:{value},{JsonSerializer.Serialize(again)}:{value}{(others == "{}" ? "" : "," + others[1..^1])}}}";
                return new(kind, operation.Method, Url(values), Encoding.UTF8.GetBytes(text), "application/json", again == name ? name : null);
            }
            default: // number out of range
            {
                var numeric = fields.Where(f => Kind(f.Schema) is "integer").ToList();
                var field = numeric.Count > 0 ? numeric[random.Next(numeric.Count)] : fields[random.Next(fields.Count)];
                var body = minimal!.DeepClone().AsObject();
                Set(body, field.Path, JsonNode.Parse(random.Next(3) switch { 0 => "99999999999999999999999", 1 => "-99999999999999999999999", _ => "-2147483649" }));
                return new(kind, operation.Method, Url(values), Json(body), "application/json", Kind(field.Schema) == "any" ? null : field.Path);
            }
        }
    }

    /// <summary>The required fields with a plausible value each; never a complete valid request for a route with a body fault.</summary>
    private static JsonObject Minimal(Operation operation)
    {
        var body = new JsonObject();
        var schema = operation.BodySchema!;
        foreach (var required in schema["required"]?.AsArray().Select(r => r!.GetValue<string>()) ?? [])
        {
            var field = Resolve(operation.Document, schema["properties"]![required]!);
            body[required] = Kind(field) switch
            {
                "integer" or "number" => 1,
                "boolean" => false,
                "object" => new JsonObject(),
                "array" => new JsonArray(),
                _ => required == "version" ? "9.9.9-fuzz" : "fuzz",
            };
        }
        return body;
    }

    private static JsonNode? WrongValue(string kind, Random random)
    {
        JsonNode?[] candidates = kind switch
        {
            "string" => [5, true, new JsonObject(), new JsonArray(), 1.5],
            "integer" => ["1", true, new JsonObject(), new JsonArray(), 1.5],
            "number" => ["1", true, new JsonObject(), new JsonArray()],
            "boolean" => ["true", 1, new JsonObject(), new JsonArray()],
            "object" => ["x", 5, new JsonArray(), true],
            "array" => ["x", 5, new JsonObject(), true],
            "enum" => ["purple", "", 7, new JsonObject()],
            _ => [JsonNode.Parse("{\"a\":1}")],
        };
        return candidates[random.Next(candidates.Length)];
    }

    private static void Set(JsonObject root, string path, JsonNode? value)
    {
        var segments = path.Split('.');
        JsonNode current = root;
        for (var i = 0; i < segments.Length; i++)
        {
            var (name, index) = segments[i].EndsWith("[0]", StringComparison.Ordinal) ? (segments[i][..^3], true) : (segments[i], false);
            var last = i == segments.Length - 1;
            var obj = current.AsObject();
            if (index)
            {
                if (obj[name] is not JsonArray array) obj[name] = array = new JsonArray(new JsonObject());
                if (array.Count == 0) array.Add(new JsonObject());
                current = array[0]!;
                if (last) array[0] = value;
            }
            else if (last) obj[name] = value;
            else
            {
                if (obj[name] is not JsonObject next) obj[name] = next = new JsonObject();
                current = next;
            }
        }
    }

    // ---- The oracle ------------------------------------------------------------------------------------------------------------

    private static string? Judge(Operation operation, Fault fault, HttpResponseMessage response, string body)
    {
        var status = (int)response.StatusCode;
        if (status >= 500) return "a server error";
        if (status < 400) return "accepted a hostile request";
        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json") return "a 4xx that is not problem+json";
        JsonElement problem;
        try { problem = JsonDocument.Parse(body).RootElement; }
        catch (JsonException) { return "a problem+json that is not JSON"; }
        if (!problem.TryGetProperty("status", out var s) || s.GetInt32() != status) return "a problem whose status differs from the answer's";
        var detail = problem.TryGetProperty("detail", out var d) ? d.GetString() : null;

        if (status is 400 or 415)
        {
            if (!problem.TryGetProperty("errors", out var errors) || errors.ValueKind != JsonValueKind.Object || !errors.EnumerateObject().Any())
                return "a 400/415 whose errors name nothing";
            var keys = errors.EnumerateObject().Select(e => e.Name).ToList();
            if (keys.FirstOrDefault(k => !Names(operation, fault, k)) is { } stranger) return $"an error key '{stranger}' that names no field, parameter or header";
            if (errors.EnumerateObject().Any(e => e.Value.ValueKind != JsonValueKind.Array || e.Value.GetArrayLength() == 0 || e.Value.EnumerateArray().Any(m => string.IsNullOrWhiteSpace(m.GetString()))))
                return "an error without its reason";
            if (fault.Expected is { } expected && !keys.Contains(expected, StringComparer.Ordinal))
                return $"the errors do not name '{expected}'";
            return null;
        }
        if (string.IsNullOrWhiteSpace(detail)) return $"a {status} without a detail";
        if (status == 401 && !detail.Contains("Authorization", StringComparison.Ordinal)) return "a 401 that does not name the Authorization header";
        return null;
    }

    private static bool Names(Operation operation, Fault fault, string key)
    {
        if (key == "Content-Type" || key == "body" || key.StartsWith("body[", StringComparison.Ordinal)) return true;
        if (operation.Parameters.Any(p => p.Name == key)) return true;
        var first = FirstSegment().Match(key).Value;
        if (first.Length == 0) return false;
        if (operation.BodyProperties.Contains(first, StringComparer.OrdinalIgnoreCase)) return true;
        // A field the request itself sent (an unknown one is named so the sender can find it).
        return fault.Body is not null && Encoding.UTF8.GetString(fault.Body).Contains($"\"{first}\"", StringComparison.Ordinal);
    }

    // ---- Plumbing --------------------------------------------------------------------------------------------------------------

    private HttpClient Client(string? token)
    {
        var client = _factory.CreateClient(new() { AllowAutoRedirect = false });
        if (token is not null) client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return client;
    }

    private async Task<HttpClient> ClientWithRoleAsync(HttpClient admin, string name, string role)
    {
        var response = await admin.PostAsync("/api/v1/tokens", new StringContent(JsonSerializer.Serialize(new { name, role }), Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return Client((await response.JsonAsync()).GetProperty("token").GetString());
    }

    /// <summary>What a hostile request must not change (token last-use times are allowed to move).</summary>
    private async Task<string> SnapshotAsync()
    {
        await using var connection = new NpgsqlConnection(_base.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("""
            SELECT concat_ws(E'\n',
              'audit ' || (SELECT count(*) FROM audit_events) || ' up to ' || (SELECT coalesce(max(sequence), 0) FROM audit_events),
              'deployments ' || (SELECT count(*) FROM deployments) || ', approvals ' || (SELECT count(*) FROM approvals),
              'freeze windows ' || (SELECT count(*) FROM freeze_windows),
              'applications ' || (SELECT coalesce(string_agg(md5(concat_ws('|', name, live_slot, router_kind, router_settings::text, deployer_kind,
                  deployer_settings::text, policy::text, checks::text, verify_path, blue_version, green_version)), ',' ORDER BY name), '') FROM applications),
              'users ' || (SELECT coalesce(string_agg(md5(concat_ws('|', user_name, role, lockout_end, security_stamp, password_hash)), ',' ORDER BY user_name), '') FROM users),
              'tokens ' || (SELECT coalesce(string_agg(concat_ws('|', name, role, revoked_at, expires_at), ',' ORDER BY id), '') FROM api_tokens))
            """, connection);
        return (string)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    private static string Shorten(string text) => text.Length > 300 ? text[..300] + "…" : text;

    [GeneratedRegex(@"\{([^}:]+)\}")]
    private static partial Regex ParameterPattern();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_-]*")]
    private static partial Regex FirstSegment();
}
