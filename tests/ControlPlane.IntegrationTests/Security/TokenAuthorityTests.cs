using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// Issue 9: a token acts as its owner and never above the owner's current role; a demotion, lock or deletion takes effect
/// on the token's next request. Answers checked in the Production environment.
/// </summary>
public sealed class TokenAuthorityTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string Password = "correct-horse-battery-staple";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private SecurityAppFactory _app = null!;

    public async ValueTask InitializeAsync() =>
        _app = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?> { ["environment"] = "Production" });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private async Task<HttpResponseMessage> CreateAsync(object body)
    {
        using var admin = _app.Api();
        return await admin.PostAsJsonAsync("/api/v1/tokens", body, Ct);
    }

    private async Task<string> TokenAsync(string name, string role, string? owner)
    {
        var response = await CreateAsync(new { name, role, owner });
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create token → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.JsonAsync()).GetProperty("token").GetString()!;
    }

    /// <summary>The problem's <c>errors</c> names exactly this field.</summary>
    private static async Task<string> FieldErrorAsync(HttpResponseMessage response, HttpStatusCode expected, string field)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"→ {(int)response.StatusCode}, expected {(int)expected}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), $"no error for '{field}': {text}");
        return messages[0].GetString()!;
    }

    private async Task<HttpStatusCode> UseAsync(string secret)
    {
        using var client = _app.Api(secret);
        return (await client.GetAsync("/api/v1/applications", Ct)).StatusCode;
    }

    [Fact]
    public async Task A_token_never_exceeds_its_owner_s_role_and_names_the_field_when_asked_for_more()
    {
        await _app.CreateUserAsync("rita", "ReleaseManager", Password);
        await _app.CreateUserAsync("otto", "OnCall", Password);

        Assert.Contains("exceeds the owner's role (ReleaseManager)", await FieldErrorAsync(await CreateAsync(new { name = "rita-admin", role = "Admin", owner = "rita" }), HttpStatusCode.BadRequest, "role"));
        // Roles are not a ladder: an OnCall may not read the audit trail, so an Auditor token is above an OnCall.
        await FieldErrorAsync(await CreateAsync(new { name = "otto-audit", role = "Auditor", owner = "otto" }), HttpStatusCode.BadRequest, "role");
        await FieldErrorAsync(await CreateAsync(new { name = "ghost", role = "Viewer", owner = "nobody-here" }), HttpStatusCode.BadRequest, "owner");
        await FieldErrorAsync(await CreateAsync(new { name = "bootstrap", role = "Viewer" }), HttpStatusCode.BadRequest, "name");
        // A machine token may not take a person's name (it would act as "rita" without being rita).
        await FieldErrorAsync(await CreateAsync(new { name = "RITA", role = "Viewer" }), HttpStatusCode.Conflict, "name");

        await TokenAsync("rita-ci", "ReleaseManager", "Rita");
        await TokenAsync("otto-pager", "OnCall", "otto");
        await FieldErrorAsync(await CreateAsync(new { name = "RITA-CI", role = "Viewer", owner = "rita" }), HttpStatusCode.Conflict, "name");
        Assert.Equal(2, (await _app.AuditAsync("token.created")).Count);

        // The list shows whom each token acts as (the owner's own spelling).
        using var admin = _app.Api();
        var list = (await admin.GetJsonAsync("/api/v1/tokens")).EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Equal("rita", list["rita-ci"].GetProperty("owner").GetString());
        Assert.Equal("otto", list["otto-pager"].GetProperty("owner").GetString());
    }

    [Fact]
    public async Task Demotion_revokes_the_owner_s_tokens_above_the_new_role_in_the_same_transaction_and_keeps_the_rest()
    {
        await _app.CreateUserAsync("ada", "Admin", Password);
        var adminToken = await TokenAsync("ada-admin", "Admin", "ada");
        var rmToken = await TokenAsync("ada-release", "ReleaseManager", "ada");
        var viewerToken = await TokenAsync("ada-view", "Viewer", "ada");
        Assert.Equal(HttpStatusCode.OK, await UseAsync(adminToken));

        using var admin = _app.Api();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/users/ada/role", new { role = "ReleaseManager" }, Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, await UseAsync(adminToken));
        Assert.Equal(HttpStatusCode.OK, await UseAsync(rmToken));
        Assert.Equal(HttpStatusCode.OK, await UseAsync(viewerToken));
        var revoked = Assert.Single(await _app.AuditAsync("token.revoked"));
        Assert.Equal("its owner's role changed from Admin to ReleaseManager", revoked.GetProperty("reason").GetString());
        var changed = Assert.Single(await _app.AuditAsync("user.role-changed"));
        // One transaction: the two events are adjacent in the chain.
        Assert.Equal(changed.GetProperty("sequence").GetInt64() + 1, revoked.GetProperty("sequence").GetInt64());

        // A re-promotion does not revive a revoked token.
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/users/ada/role", new { role = "Admin" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await UseAsync(adminToken));
    }

    [Fact]
    public async Task A_token_above_its_owner_s_current_role_is_refused_even_when_the_role_changed_behind_our_back()
    {
        await _app.CreateUserAsync("rita", "ReleaseManager", Password);
        var token = await TokenAsync("rita-ci", "ReleaseManager", "rita");
        Assert.Equal(HttpStatusCode.OK, await UseAsync(token));

        // E.g. a demotion that raced with the token's creation: the request-time check refuses what the revocation missed.
        await using (var connection = await _app.Services.GetRequiredService<NpgsqlDataSource>().OpenConnectionAsync(Ct))
        {
            await using var demote = new NpgsqlCommand("UPDATE users SET role = 'Viewer' WHERE user_name = 'rita'", connection);
            Assert.Equal(1, await demote.ExecuteNonQueryAsync(Ct));
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await UseAsync(token));
    }

    [Fact]
    public async Task Locking_stops_the_owner_s_tokens_until_unlocked_and_deletion_revokes_them()
    {
        await _app.CreateUserAsync("rita", "ReleaseManager", Password);
        var token = await TokenAsync("rita-ci", "ReleaseManager", "rita");
        using var admin = _app.Api();

        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/users/rita/lock", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await UseAsync(token));
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/users/rita/unlock", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, await UseAsync(token));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/users/rita", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await UseAsync(token));
        Assert.Equal("its owner was deleted", Assert.Single(await _app.AuditAsync("token.revoked")).GetProperty("reason").GetString());

        // A new account of the same name does not inherit the old one's tokens.
        await _app.CreateUserAsync("rita", "ReleaseManager", Password);
        Assert.Equal(HttpStatusCode.Unauthorized, await UseAsync(token));
    }

    [Fact]
    public async Task An_admin_token_of_a_demoted_admin_cannot_mint_tokens_or_manage_users()
    {
        await _app.CreateUserAsync("ada", "Admin", Password);
        using var ada = _app.Api(await TokenAsync("ada-admin", "Admin", "ada"));
        Assert.Equal(HttpStatusCode.Created, (await ada.PostAsJsonAsync("/api/v1/tokens", new { name = "minted-before", role = "Admin" }, Ct)).StatusCode);

        using var admin = _app.Api();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/users/ada/role", new { role = "Viewer" }, Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await ada.PostAsJsonAsync("/api/v1/tokens", new { name = "minted-after", role = "Admin" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ada.PostAsJsonAsync("/api/v1/users", new { userName = "sock", role = "Admin", password = Password }, Ct)).StatusCode);
        var names = (await admin.GetJsonAsync("/api/v1/tokens")).EnumerateArray().Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.DoesNotContain("minted-after", names);
    }
}
