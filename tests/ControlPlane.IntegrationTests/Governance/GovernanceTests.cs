using System.Globalization;
using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Governance;

/// <summary>Issue 4's governance through the REST API: approvals (two-person, N-of-M, expiry), freeze windows, break-glass rollback.</summary>
public sealed class GovernanceTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const string Demo = "demo-shop";
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static async Task AssertStatusAsync(HttpResponseMessage response, HttpStatusCode expected, string? detailContains = null)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} → {(int)response.StatusCode}, expected {(int)expected}: {text}");
        if (detailContains is not null) Assert.Contains(detailContains, text);
    }

    private async Task<JsonElement> AuditAsync(string app, string action)
    {
        using var admin = _factory.Admin();
        return (await admin.GetJsonAsync($"/api/v1/audit?application={app}&action={action}")).GetProperty("items");
    }

    private static async Task<string> FreezeNowAsync(HttpClient admin, string app, string name, TimeSpan lasting)
    {
        var response = await admin.PostJsonAsync($"/api/v1/applications/{app}/freeze-windows", new
        {
            name, reason = "year-end change freeze", kind = "oneOff", timeZone = "Europe/Berlin",
            start = Iso(DateTimeOffset.UtcNow.AddMinutes(-1)), end = Iso(DateTimeOffset.UtcNow + lasting),
        });
        await AssertStatusAsync(response, HttpStatusCode.Created);
        return (await response.JsonAsync()).GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task Two_person_rule_refuses_the_requester_under_any_spelling_of_their_name()
    {
        // Two tokens of one person: the second names its owner in another spelling (token names themselves are unique).
        using var admin = _factory.Admin();
        await AssertStatusAsync(await admin.PostJsonAsync("/api/v1/users", new { userName = "alice", role = "ReleaseManager", password = "alice-has-a-long-password" }), HttpStatusCode.Created);
        using var alice = await _factory.ClientWithTokenAsync(new { name = "alice-ci", role = "ReleaseManager", owner = "alice" });
        using var aliceShouting = await _factory.ClientWithTokenAsync(new { name = "alice-laptop", role = "ReleaseManager", owner = "ALICE" });
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var id = (await alice.StartReleaseAsync(Demo, "2.0.0")).GetProperty("id").GetString()!;
        await alice.WaitForStateAsync(id, "AwaitingApproval");

        await AssertStatusAsync(await alice.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.Forbidden, "another person must approve");
        await AssertStatusAsync(await aliceShouting.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.Forbidden, "another person must approve");
        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" }), HttpStatusCode.OK);

        var ready = await alice.WaitForStateAsync(id, "ReadyToSwitch");
        Assert.Equal("bob", Assert.Single(ready.GetProperty("approvals").EnumerateArray()).GetProperty("by").GetString());
    }

    [Fact]
    public async Task Two_of_three_approvals_from_distinct_people_make_a_release_ready()
    {
        using var admin = _factory.Admin();
        const string app = "two-of-three";
        await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 2, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1 });
        using var rita = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        using var carol = await _factory.ClientWithRoleAsync("carol", "ReleaseManager");
        using var dave = await _factory.ClientWithRoleAsync("dave", "Admin");
        var id = (await rita.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await rita.WaitForStateAsync(id, "AwaitingApproval");

        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        var one = await rita.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal(("AwaitingApproval", 1, 2), (one.GetProperty("state").GetString(), one.GetProperty("validApprovals").GetInt32(), one.GetProperty("requiredApprovals").GetInt32()));
        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.Conflict, "distinct people");
        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", null), HttpStatusCode.Conflict);

        await AssertStatusAsync(await carol.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        var ready = await rita.WaitForStateAsync(id, "ReadyToSwitch");
        Assert.Equal(["bob", "carol"], ready.GetProperty("approvals").EnumerateArray().Select(a => a.GetProperty("by").GetString()));
        // The third eligible person is no longer needed: the approval window closed.
        await AssertStatusAsync(await dave.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.Conflict, "only accepted while it is AwaitingApproval");
        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", null), HttpStatusCode.Accepted);
        await rita.WaitForStateAsync(id, "Succeeded");
    }

    [Fact]
    public async Task Approvals_expire_a_ready_release_goes_back_to_awaiting_approval_and_the_switch_is_refused()
    {
        using var admin = _factory.Admin();
        const string app = "expiring";
        await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 2, approvalValidForSeconds = 3 });
        using var rita = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        using var carol = await _factory.ClientWithRoleAsync("carol", "ReleaseManager");
        var id = (await rita.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await rita.WaitForStateAsync(id, "AwaitingApproval");

        // Bob's approval lapses before Carol's arrives: one valid approval of two.
        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        var approved = await rita.GetJsonAsync($"/api/v1/deployments/{id}");
        var bobs = Assert.Single(approved.GetProperty("approvals").EnumerateArray());
        Assert.Equal(JsonValueKind.String, bobs.GetProperty("expiresAt").ValueKind);
        Assert.True(bobs.GetProperty("valid").GetBoolean());
        await Task.Delay(TimeSpan.FromSeconds(3.5), Ct);
        await AssertStatusAsync(await carol.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        var waiting = await rita.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal(("AwaitingApproval", 1), (waiting.GetProperty("state").GetString(), waiting.GetProperty("validApprovals").GetInt32()));
        Assert.False(waiting.GetProperty("approvals").EnumerateArray().Single(a => a.GetProperty("by").GetString() == "bob").GetProperty("valid").GetBoolean());

        // Bob renews: ready. Nobody switches, the approvals lapse, and the worker sends it back.
        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        await rita.WaitForStateAsync(id, "ReadyToSwitch");
        await rita.WaitForStateAsync(id, "AwaitingApproval", seconds: 15);
        var expired = Assert.Single((await AuditAsync(app, "deployment.approval-expired")).EnumerateArray());
        Assert.Equal(("system", "ReadyToSwitch", "AwaitingApproval"),
            (expired.GetProperty("actor").GetString(), expired.GetProperty("before").GetString(), expired.GetProperty("after").GetString()));

        // A switch now is refused: the approvals it would rely on are gone.
        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", null), HttpStatusCode.Conflict);
        Assert.Equal("blue", (await rita.GetJsonAsync($"/api/v1/applications/{app}")).GetProperty("liveSlot").GetString());
    }

    [Fact]
    public async Task Freeze_windows_are_validated_field_by_field_and_managed_by_admins_only()
    {
        using var admin = _factory.Admin();
        using var rita = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");

        var bad = await admin.PostJsonAsync($"/api/v1/applications/{Demo}/freeze-windows", new
        {
            name = "bad", kind = "weekly", timeZone = "Mars/Olympus", daysOfWeek = new[] { "Monday", "Funday" }, startTime = "9:00", durationMinutes = 20000,
        });
        await AssertStatusAsync(bad, HttpStatusCode.BadRequest);
        var errors = (await bad.JsonAsync()).GetProperty("errors");
        Assert.Equal(["daysOfWeek[1]", "durationMinutes", "timeZone"], errors.EnumerateObject().Select(e => e.Name).Order());
        var backwards = await admin.PostJsonAsync($"/api/v1/applications/{Demo}/freeze-windows", new
        {
            name = "backwards", kind = "oneOff", timeZone = "UTC", start = "2099-01-02T00:00", end = "2099-01-01T00:00",
        });
        await AssertStatusAsync(backwards, HttpStatusCode.BadRequest, "must be after start");

        var weekly = new { name = "weekend", kind = "weekly", timeZone = "Europe/Berlin", daysOfWeek = new[] { "Sat", "Sun" }, startTime = "00:00", durationMinutes = 1440 };
        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/applications/{Demo}/freeze-windows", weekly), HttpStatusCode.Forbidden);
        var created = await admin.PostJsonAsync($"/api/v1/applications/{Demo}/freeze-windows", weekly);
        await AssertStatusAsync(created, HttpStatusCode.Created);
        var id = (await created.JsonAsync()).GetProperty("id").GetString()!;

        var list = await rita.GetJsonAsync($"/api/v1/applications/{Demo}/freeze-windows");
        var w = Assert.Single(list.EnumerateArray());
        Assert.Equal(("weekend", "weekly", "Europe/Berlin", "00:00", 1440),
            (w.GetProperty("name").GetString(), w.GetProperty("kind").GetString(), w.GetProperty("timeZone").GetString(), w.GetProperty("startTime").GetString(), w.GetProperty("durationMinutes").GetInt32()));
        Assert.Equal(["Saturday", "Sunday"], w.GetProperty("daysOfWeek").EnumerateArray().Select(d => d.GetString()));

        await AssertStatusAsync(await rita.DeleteAsync($"/api/v1/applications/{Demo}/freeze-windows/{id}", Ct), HttpStatusCode.Forbidden);
        await AssertStatusAsync(await admin.DeleteAsync($"/api/v1/applications/{Demo}/freeze-windows/{id}", Ct), HttpStatusCode.NoContent);
        await AssertStatusAsync(await admin.DeleteAsync($"/api/v1/applications/{Demo}/freeze-windows/{id}", Ct), HttpStatusCode.NotFound);
        Assert.Empty((await rita.GetJsonAsync($"/api/v1/applications/{Demo}/freeze-windows")).EnumerateArray());
        Assert.Equal("bootstrap", Assert.Single((await AuditAsync(Demo, "freeze.created")).EnumerateArray()).GetProperty("actor").GetString());
        Assert.Single((await AuditAsync(Demo, "freeze.deleted")).EnumerateArray());
    }

    [Fact]
    public async Task A_freeze_blocks_new_releases_and_forward_switches_unless_an_admin_overrides_with_a_reason()
    {
        using var admin = _factory.Admin();
        using var rita = await _factory.ClientWithRoleAsync("rita", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var publicUrl = await admin.PublicUrlAsync(Demo);
        await FreezeNowAsync(admin, Demo, "Year-end freeze", TimeSpan.FromHours(1));

        var blocked = await rita.PostJsonAsync($"/api/v1/applications/{Demo}/deployments", new { version = "2.0.0" });
        await AssertStatusAsync(blocked, HttpStatusCode.Conflict, "frozen by 'Year-end freeze' until ");
        Assert.Contains("Europe/Berlin", (await blocked.JsonAsync()).GetProperty("detail").GetString());
        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/applications/{Demo}/deployments", new { version = "2.0.0", freezeOverride = new { reason = "hotfix" } }),
            HttpStatusCode.Forbidden, "Only an Admin");
        var noReason = await admin.PostJsonAsync($"/api/v1/applications/{Demo}/deployments", new { version = "2.0.0", freezeOverride = new { reason = " " } });
        await AssertStatusAsync(noReason, HttpStatusCode.BadRequest);
        Assert.True((await noReason.JsonAsync()).GetProperty("errors").TryGetProperty("freezeOverride.reason", out _));

        var started = await admin.PostJsonAsync($"/api/v1/applications/{Demo}/deployments",
            new { version = "2.0.0", reason = "security fix", freezeOverride = new { reason = "CVE-2026-1234 must ship today" } });
        await AssertStatusAsync(started, HttpStatusCode.Accepted);
        var id = (await started.JsonAsync()).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        await admin.WaitForStateAsync(id, "ReadyToSwitch");

        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", null), HttpStatusCode.Conflict, "Forward switches are blocked");
        await AssertStatusAsync(await rita.PostJsonAsync($"/api/v1/deployments/{id}/switch", new { freezeOverride = new { reason = "please" } }), HttpStatusCode.Forbidden);
        Assert.Equal("1.0.0", (await ApiCalls.PublicAnswerAsync(publicUrl)).Version);

        await AssertStatusAsync(await admin.PostJsonAsync($"/api/v1/deployments/{id}/switch", new { freezeOverride = new { reason = "CVE fix verified in preview" } }),
            HttpStatusCode.Accepted);
        await admin.WaitForStateAsync(id, "Monitoring");
        Assert.Equal("2.0.0", (await ApiCalls.PublicAnswerAsync(publicUrl)).Version);

        var overrides = (await AuditAsync(Demo, "freeze.overridden")).EnumerateArray().Reverse().ToList();
        Assert.Equal(["CVE-2026-1234 must ship today", "CVE fix verified in preview"], overrides.Select(e => e.GetProperty("reason").GetString()));
        Assert.All(overrides, e => Assert.Equal("bootstrap", e.GetProperty("actor").GetString()));
        var details = overrides.Select(e => JsonDocument.Parse(e.GetProperty("details").GetString()!).RootElement).ToList();
        Assert.Equal(["release", "switch"], details.Select(d => d.GetProperty("action").GetString()));
        Assert.All(details, d => Assert.Equal("Year-end freeze", d.GetProperty("window").GetString()));
    }

    [Fact]
    public async Task Rollback_is_break_glass_allowed_during_a_freeze_with_a_reason_and_flagged_in_the_audit()
    {
        using var admin = _factory.Admin();
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        using var oscar = await _factory.ClientWithRoleAsync("oscar", "OnCall");
        var publicUrl = await admin.PublicUrlAsync(Demo);
        var id = (await admin.StartReleaseAsync(Demo, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        await admin.WaitForStateAsync(id, "ReadyToSwitch");
        await AssertStatusAsync(await admin.PostJsonAsync($"/api/v1/deployments/{id}/switch", null), HttpStatusCode.Accepted);
        await admin.WaitForStateAsync(id, "Monitoring");
        await FreezeNowAsync(admin, Demo, "Incident freeze", TimeSpan.FromHours(2));

        await AssertStatusAsync(await oscar.PostJsonAsync($"/api/v1/applications/{Demo}/rollback", new { reason = "" }), HttpStatusCode.BadRequest, "reason is required");
        await AssertStatusAsync(await oscar.PostJsonAsync($"/api/v1/applications/{Demo}/rollback", new { reason = "checkout errors" }), HttpStatusCode.OK);
        Assert.Equal("1.0.0", (await ApiCalls.PublicAnswerAsync(publicUrl)).Version);

        var evt = Assert.Single((await AuditAsync(Demo, "application.rolled-back")).EnumerateArray());
        Assert.Equal(("oscar", "checkout errors"), (evt.GetProperty("actor").GetString(), evt.GetProperty("reason").GetString()));
        var details = JsonDocument.Parse(evt.GetProperty("details").GetString()!).RootElement;
        Assert.True(details.GetProperty("breakGlass").GetBoolean());
        Assert.False(details.GetProperty("automatic").GetBoolean());
        Assert.Equal("Incident freeze", details.GetProperty("duringFreeze").GetString());
        var rolledBack = await admin.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal("RolledBack", rolledBack.GetProperty("state").GetString());
        Assert.True(rolledBack.GetProperty("breakGlassRollback").GetBoolean());
    }

    [Fact]
    public async Task The_worker_holds_a_switch_on_approval_until_the_freeze_ends()
    {
        using var admin = _factory.Admin();
        const string app = "auto-switch";
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 1, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1 });
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        await FreezeNowAsync(admin, app, "Short freeze", TimeSpan.FromSeconds(6));

        await AssertStatusAsync(await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null), HttpStatusCode.OK);
        var waiting = await admin.WaitForStateAsync(id, "ReadyToSwitch");
        var deadline = DateTime.UtcNow.AddSeconds(5);
        string? message = null;
        while (DateTime.UtcNow < deadline && message?.Contains("waiting for the freeze", StringComparison.Ordinal) != true)
        {
            waiting = await admin.GetJsonAsync($"/api/v1/deployments/{id}");
            message = waiting.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "switch").GetProperty("message").GetString();
            await Task.Delay(100, Ct);
        }
        Assert.Contains("waiting for the freeze 'Short freeze' to end", message);
        Assert.Equal("1.0.0", (await ApiCalls.PublicAnswerAsync(publicUrl)).Version);

        // When the window ends the worker switches by itself.
        await admin.WaitForStateAsync(id, "Succeeded", seconds: 40);
        Assert.Equal("2.0.0", (await ApiCalls.PublicAnswerAsync(publicUrl)).Version);
    }
}
