using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// Issue 9: one identity per request and people, not token names — the two-person rule attacked as one insider would,
/// end to end against the demo application, in the Production environment.
/// </summary>
public sealed class OneIdentityTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string Password = "correct-horse-battery-staple";
    private const string Demo = "demo-shop";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private SecurityAppFactory _app = null!;

    public async ValueTask InitializeAsync()
    {
        _app = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?>
        {
            ["environment"] = "Production",
            ["ControlPlane:Demo:Enabled"] = "true",
            ["ControlPlane:Demo:RouterPort"] = "0",
        });
        Assert.True(_app.Services.GetRequiredService<IHostEnvironment>().IsProduction());
        await _app.CreateUserAsync("mallory", "Viewer", Password);
        await _app.CreateUserAsync("alice", "ReleaseManager", Password);
        await _app.CreateUserAsync("bob", "ReleaseManager", Password);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private async Task<string> TokenAsync(string name, string role, string? owner)
    {
        using var admin = _app.Api();
        var response = await admin.PostAsJsonAsync("/api/v1/tokens", new { name, role, owner }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create token → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.JsonAsync()).GetProperty("token").GetString()!;
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} → {(int)response.StatusCode}, expected {(int)expected}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<string> AwaitingApprovalAsync(HttpClient requester)
    {
        var id = (await requester.StartReleaseAsync(Demo, "2.0.0")).GetProperty("id").GetString()!;
        using var admin = _app.Api();
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        return id;
    }

    [Fact]
    public async Task A_session_cookie_next_to_a_bearer_token_is_ignored_the_request_is_the_token_s_owner_alone()
    {
        var aliceToken = await TokenAsync("alice-ci", "ReleaseManager", "alice");
        var (mallory, signedIn) = await _app.SignInAsync("mallory", Password);
        Assert.Equal("/", signedIn.Headers.Location!.OriginalString);
        mallory.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", aliceToken);

        // Mallory's cookie rides along with alice's token: the release is alice's, and the audit says so.
        var response = await mallory.PostAsJsonAsync($"/api/v1/applications/{Demo}/deployments", new { version = "2.0.0" }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var release = await response.JsonAsync();
        Assert.Equal("alice", release.GetProperty("requestedBy").GetString());
        var requested = Assert.Single(await _app.AuditAsync("deployment.requested"));
        Assert.Equal(("alice", "Token"), (requested.GetProperty("actor").GetString(), requested.GetProperty("actorKind").GetString()));
        Assert.Equal("alice-ci", JsonDocument.Parse(requested.GetProperty("details").GetString()!).RootElement.GetProperty("viaToken").GetString());

        // Alice's token (with anyone's cookie) cannot approve her own release; the refusal names alice, not mallory.
        using var admin = _app.Api();
        var id = release.GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        var refused = await ProblemAsync(await mallory.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { }, Ct), HttpStatusCode.Forbidden);
        Assert.Contains("alice requested this release", refused.GetProperty("detail").GetString());
        Assert.DoesNotContain("mallory", refused.GetProperty("detail").GetString());

        // The other way round: a Viewer's token with a ReleaseManager's cookie is a Viewer, and the 403 names the Viewer.
        var malloryToken = await TokenAsync("mallory-cli", "Viewer", "mallory");
        var (alice, _) = await _app.SignInAsync("alice", Password);
        alice.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", malloryToken);
        var forbidden = await ProblemAsync(await alice.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { }, Ct), HttpStatusCode.Forbidden);
        var detail = forbidden.GetProperty("detail").GetString()!;
        Assert.StartsWith("mallory (token mallory-cli) (Viewer) may not approve", detail);
        Assert.DoesNotContain("alice", detail);
        Assert.Equal("AwaitingApproval", (await admin.GetJsonAsync($"/api/v1/deployments/{id}")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Two_tokens_of_one_owner_are_one_person_under_any_spelling()
    {
        using var aliceCi = _app.Api(await TokenAsync("alice-ci", "ReleaseManager", "alice"));
        using var aliceLaptop = _app.Api(await TokenAsync("alice-laptop", "ReleaseManager", "ALICE"));
        using var bob = _app.Api(await TokenAsync("bob-cli", "ReleaseManager", "bob"));
        var id = await AwaitingApprovalAsync(aliceCi);

        var refused = await ProblemAsync(await aliceLaptop.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { }, Ct), HttpStatusCode.Forbidden);
        Assert.Contains("alice requested this release", refused.GetProperty("detail").GetString());

        Assert.Equal(HttpStatusCode.OK, (await bob.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" }, Ct)).StatusCode);
        var approved = Assert.Single(await _app.AuditAsync("deployment.approved"));
        Assert.Equal("bob", approved.GetProperty("actor").GetString());
        Assert.Equal("bob-cli", JsonDocument.Parse(approved.GetProperty("details").GetString()!).RootElement.GetProperty("viaToken").GetString());
    }

    [Fact]
    public async Task A_token_and_a_session_of_one_person_are_one_person()
    {
        // Alice starts the release in the dashboard (her session acts as the user "Alice")…
        Deployment started;
        await using (var scope = _app.Services.CreateAsyncScope())
            started = await scope.ServiceProvider.GetRequiredService<ReleaseCommands>()
                .StartReleaseAsync(Demo, "2.0.0", null, new Actor("Alice", ActorKind.User, "10.0.0.7"), Ct);
        using var admin = _app.Api();
        await admin.WaitForStateAsync(started.Id.ToString(), "AwaitingApproval");

        // …and cannot approve it with her token.
        using var aliceCi = _app.Api(await TokenAsync("alice-ci", "ReleaseManager", "alice"));
        var refused = await ProblemAsync(await aliceCi.PostAsJsonAsync($"/api/v1/deployments/{started.Id}/approve", new { }, Ct), HttpStatusCode.Forbidden);
        Assert.Contains("alice requested this release", refused.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task The_bootstrap_token_is_its_own_identity_and_a_machine_token_is_named_after_itself()
    {
        using var ci = _app.Api(await TokenAsync("ci-pipeline", "ReleaseManager", owner: null));
        var id = await AwaitingApprovalAsync(ci);
        Assert.Equal("ci-pipeline", (await ci.GetJsonAsync($"/api/v1/deployments/{id}")).GetProperty("requestedBy").GetString());

        // The bootstrap admin is another identity than the machine token, so its approval counts.
        using var bootstrap = _app.Api();
        Assert.Equal(HttpStatusCode.OK, (await bootstrap.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { }, Ct)).StatusCode);
        Assert.Equal("bootstrap", Assert.Single(await _app.AuditAsync("deployment.approved")).GetProperty("actor").GetString());
    }

    [Fact]
    public async Task A_cookie_alone_still_reads_the_api_but_never_changes_it()
    {
        var (alice, _) = await _app.SignInAsync("alice", Password);
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("/api/v1/applications", Ct)).StatusCode);
        var refused = await ProblemAsync(await alice.PostAsJsonAsync($"/api/v1/applications/{Demo}/deployments", new { version = "2.0.0" }, Ct), HttpStatusCode.Unauthorized);
        Assert.Equal("API token required", refused.GetProperty("title").GetString());
        Assert.Empty(await _app.AuditAsync("deployment.requested"));
    }
}
