using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>Issue 14: an Admin edits a registered application with registration's rules; concurrent edits and bad input change nothing.</summary>
public sealed class ApplicationEditTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Admin_edits_policy_checks_and_router_port_with_an_audited_diff_and_the_router_moves_to_the_new_port()
    {
        using var admin = _factory.Admin();
        const string app = "edit-me";
        var oldUrl = await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 1, holdWindowSeconds = 600 });
        var (body, etag) = await ReadForEditAsync(admin, app);
        body["policy"]!["holdWindowSeconds"] = 300;
        body["checks"]!.AsArray().Add(new JsonObject { ["name"] = "health", ["path"] = "/healthz" });
        var newPort = Core.Deployers.LoopbackPorts.PickForLater();
        body["router"]!["settings"]!["listenPort"] = newPort;

        var response = await PutAsync(admin, app, body, etag);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var edited = await response.JsonAsync();
        Assert.Equal(300, edited.GetProperty("policy").GetProperty("holdWindowSeconds").GetInt32());
        Assert.Equal(2, edited.GetProperty("checks").GetArrayLength());

        var evt = Assert.Single((await admin.GetJsonAsync($"/api/v1/audit?application={app}&action=application.edited")).GetProperty("items").EnumerateArray());
        var changes = JsonDocument.Parse(evt.GetProperty("details").GetString()!).RootElement.GetProperty("changes");
        Assert.Equal((600, 300), (changes.GetProperty("policy.holdWindowSeconds").GetProperty("before").GetInt32(),
            changes.GetProperty("policy.holdWindowSeconds").GetProperty("after").GetInt32()));
        Assert.Equal(JsonValueKind.Null, changes.GetProperty("checks[1]").GetProperty("before").ValueKind);
        Assert.Equal("health", changes.GetProperty("checks[1]").GetProperty("after").GetProperty("name").GetString());
        Assert.True(changes.TryGetProperty("router.settings.listenPort", out _));
        Assert.False(changes.TryGetProperty("deployer.kind", out _));

        // The runtime leader brings the router up again on the new port (through its attach, not from the request).
        var newUrl = await admin.PublicUrlAsync(app);
        Assert.NotEqual(oldUrl, newUrl);
        Assert.Equal(newPort, new Uri(newUrl).Port);
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(newUrl));
    }

    [Fact]
    public async Task A_stale_edit_is_409_bad_fields_are_named_and_neither_changes_anything()
    {
        using var admin = _factory.Admin();
        const string app = "edit-guarded";
        await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 1 });
        var (body, etag) = await ReadForEditAsync(admin, app);

        body["policy"]!["monitoringWindowSeconds"] = 45;
        Assert.Equal(HttpStatusCode.OK, (await PutAsync(admin, app, body, etag)).StatusCode);
        // A second editor still holding the first read: refused, not silently overwritten.
        body["policy"]!["monitoringWindowSeconds"] = 90;
        var stale = await PutAsync(admin, app, body, etag);
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Contains("changed by someone else", (await stale.JsonAsync()).GetProperty("detail").GetString());

        var (fresh, freshTag) = await ReadForEditAsync(admin, app);
        fresh["policy"]!["requiredApprovals"] = -1;
        fresh["router"]!["kind"] = "nope";
        fresh["name"] = "renamed";
        var bad = await PutAsync(admin, app, fresh, freshTag);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        var errors = (await bad.JsonAsync()).GetProperty("errors");
        Assert.True(errors.TryGetProperty("policy.requiredApprovals", out _), errors.ToString());
        Assert.True(errors.TryGetProperty("router.kind", out _), errors.ToString());
        Assert.True(errors.TryGetProperty("name", out _), errors.ToString());

        var after = await admin.GetJsonAsync($"/api/v1/applications/{app}");
        Assert.Equal(45, after.GetProperty("policy").GetProperty("monitoringWindowSeconds").GetInt32());
        Assert.Equal(1, after.GetProperty("policy").GetProperty("requiredApprovals").GetInt32());
        Assert.Single((await admin.GetJsonAsync($"/api/v1/audit?application={app}&action=application.edited")).GetProperty("items").EnumerateArray());

        using var manager = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        Assert.Equal(HttpStatusCode.Forbidden, (await PutAsync(manager, app, fresh, freshTag)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await PutAsync(admin, "no-such-app", body, null)).StatusCode);
    }

    [Fact]
    public async Task Archive_asks_for_confirmation_naming_what_stops_then_the_runtime_stops_slots_and_router_and_history_stays()
    {
        using var admin = _factory.Admin();
        const string app = "archive-me";
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1 });
        var release = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(release, "Succeeded");

        var unconfirmed = await admin.DeleteAsync($"/api/v1/applications/{app}", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, unconfirmed.StatusCode);
        var problem = await unconfirmed.JsonAsync();
        Assert.True(problem.GetProperty("errors").TryGetProperty("confirm", out _), problem.ToString());
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("slot green (2.0.0, process)", detail);
        Assert.Contains($"the embedded router at {publicUrl}", detail);
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));

        using var manager = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        Assert.Equal(HttpStatusCode.Forbidden, (await manager.DeleteAsync($"/api/v1/applications/{app}?confirm={app}", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Accepted, (await admin.DeleteAsync($"/api/v1/applications/{app}?confirm={app}&reason=retired", Ct)).StatusCode);
        // The runtime leader stops what ran, on its next round.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (ControlPlaneProcess.SlotProcesses(app).Any() && DateTime.UtcNow < deadline) await Task.Delay(250, Ct);
        Assert.Empty(ControlPlaneProcess.SlotProcesses(app));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => ApiCalls.PublicAnswerAsync(publicUrl));

        Assert.DoesNotContain((await admin.GetJsonAsync("/api/v1/applications")).EnumerateArray(), a => a.GetProperty("name").GetString() == app);
        var archived = await admin.GetJsonAsync($"/api/v1/applications/{app}");
        Assert.Equal(JsonValueKind.String, archived.GetProperty("archivedAt").ValueKind);
        Assert.Single((await admin.GetJsonAsync($"/api/v1/applications/{app}/deployments")).EnumerateArray());
        var audit = (await admin.GetJsonAsync($"/api/v1/audit?application={app}")).GetProperty("items").EnumerateArray().ToList();
        Assert.Contains(audit, e => e.GetProperty("action").GetString() == "application.archived" && e.GetProperty("reason").GetString() == "retired");
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (!audit.Any(e => e.GetProperty("action").GetString() == "application.runtime-stopped") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, Ct);
            audit = (await admin.GetJsonAsync($"/api/v1/audit?application={app}")).GetProperty("items").EnumerateArray().ToList();
        }
        Assert.Single(audit, e => e.GetProperty("action").GetString() == "application.runtime-stopped");

        var again = await admin.PostJsonAsync($"/api/v1/applications/{app}/deployments", new { version = "3.0.0" });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("archived", (await again.JsonAsync()).GetProperty("detail").GetString());
    }

    private static async Task<(JsonObject Body, string ETag)> ReadForEditAsync(HttpClient admin, string app)
    {
        var response = await admin.GetAsync($"/api/v1/applications/{app}", Ct);
        response.EnsureSuccessStatusCode();
        var etag = response.Headers.ETag?.Tag ?? throw new InvalidOperationException("GET sent no ETag");
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();
        var body = new JsonObject
        {
            ["name"] = json["name"]!.DeepClone(),
            ["router"] = json["router"]!.DeepClone(),
            ["deployer"] = json["deployer"]!.DeepClone(),
            ["checks"] = json["checks"]!.DeepClone(),
            ["policy"] = json["policy"]!.DeepClone(),
            ["verifyPath"] = json["verifyPath"]!.DeepClone(),
        };
        return (body, etag);
    }

    private static async Task<HttpResponseMessage> PutAsync(HttpClient client, string app, JsonObject body, string? etag)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/applications/{app}") { Content = JsonContent.Create(body) };
        if (etag is not null) request.Headers.TryAddWithoutValidation("If-Match", etag);
        return await client.SendAsync(request, Ct);
    }
}
