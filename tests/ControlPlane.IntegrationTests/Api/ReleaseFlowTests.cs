using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Api;

/// <summary>The release flow end to end through the REST API, on the seeded demo (real slot processes, real router).</summary>
public sealed class ReleaseFlowTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const string App = "demo-shop";
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task Good_release_with_two_person_approval_then_rollback_moves_real_traffic()
    {
        using var alice = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        using var oncall = await _factory.ClientWithRoleAsync("carol", "OnCall");
        var publicUrl = await alice.PublicUrlAsync(App);
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));

        var started = await alice.StartReleaseAsync(App, "2.0.0", "quarterly release");
        var id = started.GetProperty("id").GetString()!;
        Assert.Equal("green", started.GetProperty("targetSlot").GetString());
        Assert.Equal("1.0.0", started.GetProperty("fromVersion").GetString());
        await alice.WaitForStateAsync(id, "AwaitingApproval");

        var self = await alice.PostJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "mine" });
        Assert.Equal(HttpStatusCode.Forbidden, self.StatusCode);
        Assert.Equal("application/problem+json", self.Content.Headers.ContentType?.MediaType);

        var second = await bob.PostJsonAsync($"/api/v1/applications/{App}/deployments", new { version = "3.0.0" });
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);

        var approved = await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "looks good" });
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        var ready = await alice.WaitForStateAsync(id, "ReadyToSwitch");
        Assert.Equal("bob", ready.GetProperty("approvals")[0].GetProperty("by").GetString());
        Assert.Equal(1, ready.GetProperty("requiredApprovals").GetInt32());
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl)); // approval alone moves nothing

        var switched = await alice.PostJsonAsync($"/api/v1/deployments/{id}/switch", null);
        Assert.Equal(HttpStatusCode.Accepted, switched.StatusCode);
        await alice.WaitForStateAsync(id, "Monitoring");
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var app = await alice.GetJsonAsync($"/api/v1/applications/{App}");
        Assert.Equal("green", app.GetProperty("liveSlot").GetString());
        Assert.Equal("2.0.0", app.GetProperty("slots").GetProperty("green").GetProperty("version").GetString());
        Assert.Equal(JsonValueKind.String, app.GetProperty("rollbackAvailableUntil").ValueKind);

        var rollback = await oncall.PostJsonAsync($"/api/v1/applications/{App}/rollback", new { reason = "error rate up" });
        Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        // The very next request after the rollback call returned is answered by the old version.
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));

        var final = await alice.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal("RolledBack", final.GetProperty("state").GetString());
        using var admin = _factory.Admin();
        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={App}&action=application.rolled-back");
        var evt = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.Equal("carol", evt.GetProperty("actor").GetString());
        Assert.Equal("error rate up", evt.GetProperty("reason").GetString());
        var verify = await admin.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("valid").GetBoolean(), verify.ToString());
    }

    [Fact]
    public async Task Failed_verification_stops_the_release_and_traffic_never_moves()
    {
        using var alice = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        var publicUrl = await alice.PublicUrlAsync(App);
        var id = (await alice.StartReleaseAsync(App, "2.0.0-fail-verify")).GetProperty("id").GetString()!;

        var failed = await alice.WaitForStateAsync(id, "Failed");
        var verify = failed.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "verify");
        Assert.Equal("Failed", verify.GetProperty("state").GetString());
        Assert.Contains("500", verify.GetProperty("message").GetString());
        Assert.Contains("traffic never moved", failed.GetProperty("outcome").GetString());
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var app = await alice.GetJsonAsync($"/api/v1/applications/{App}");
        Assert.Equal("blue", app.GetProperty("liveSlot").GetString());
    }

    [Fact]
    public async Task Breach_during_monitoring_rolls_back_automatically_and_the_audit_says_why()
    {
        using var alice = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        using var bob = await _factory.ClientWithRoleAsync("bob", "ReleaseManager");
        var publicUrl = await alice.PublicUrlAsync(App);
        var id = (await alice.StartReleaseAsync(App, "2.1.0-fail-monitor")).GetProperty("id").GetString()!;
        await alice.WaitForStateAsync(id, "AwaitingApproval");
        (await bob.PostJsonAsync($"/api/v1/deployments/{id}/approve", null)).EnsureSuccessStatusCode();
        await alice.WaitForStateAsync(id, "ReadyToSwitch");
        (await alice.PostJsonAsync($"/api/v1/deployments/{id}/switch", null)).EnsureSuccessStatusCode();

        var rolledBack = await alice.WaitForStateAsync(id, "RolledBack");
        Assert.Contains("Automatically rolled back", rolledBack.GetProperty("outcome").GetString());
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var app = await alice.GetJsonAsync($"/api/v1/applications/{App}");
        Assert.Equal("blue", app.GetProperty("liveSlot").GetString());

        using var admin = _factory.Admin();
        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={App}&action=deployment.auto-rolled-back");
        var evt = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.Equal("system", evt.GetProperty("actor").GetString());
        Assert.Contains("during monitoring", evt.GetProperty("reason").GetString());
        Assert.Equal("Monitoring", evt.GetProperty("before").GetString());
    }

    [Fact]
    public async Task An_auditor_is_refused_every_mutation()
    {
        using var alice = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        using var auditor = await _factory.ClientWithRoleAsync("audrey", "Auditor");
        var id = (await alice.StartReleaseAsync(App, "2.0.0")).GetProperty("id").GetString()!;

        var mutations = new (string Url, object? Body)[]
        {
            ($"/api/v1/applications/{App}/deployments", new { version = "9.9.9" }),
            ($"/api/v1/deployments/{id}/approve", new { comment = "x" }),
            ($"/api/v1/deployments/{id}/switch", null),
            ($"/api/v1/deployments/{id}/abort", new { reason = "x" }),
            ($"/api/v1/applications/{App}/rollback", new { reason = "x" }),
            ("/api/v1/applications", new { name = "x" }),
            ("/api/v1/tokens", new { name = "x", role = "Admin" }),
        };
        foreach (var (url, body) in mutations)
        {
            var response = await auditor.PostJsonAsync(url, body);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"POST {url} by an Auditor → {(int)response.StatusCode}");
        }
        // …while reading is allowed, and the audit is theirs to read.
        (await auditor.GetAsync($"/api/v1/deployments/{id}", Ct)).EnsureSuccessStatusCode();
        (await auditor.GetAsync("/api/v1/audit", Ct)).EnsureSuccessStatusCode();
        using var anonymous = _factory.ClientWithToken(null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/applications", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.GetAsync("/api/v1/audit", Ct)).StatusCode);
    }
}
