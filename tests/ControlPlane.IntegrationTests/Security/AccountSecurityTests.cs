using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Core.Identity;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.IntegrationTests.Security;

public sealed class AccountSecurityTests(PostgresFixture postgres)
{
    private const string Password = "correct-horse-battery-staple";

    [Fact]
    public async Task Repeated_wrong_passwords_lock_the_account_and_are_audited()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        await app.CreateUserAsync("mallory-target", "ReleaseManager", Password);

        for (var i = 1; i <= IdentityRules.MaxFailedAttempts; i++)
        {
            var (client, response) = await app.SignInAsync("mallory-target", $"wrong-password-{i}");
            client.Dispose();
            // The same answer every time: whether the account exists or is locked is not told to the person trying.
            Assert.Contains("error=invalid", response.Headers.Location!.OriginalString);
        }
        // Locked: even the right password is refused now.
        var (locked, refused) = await app.SignInAsync("mallory-target", Password);
        locked.Dispose();
        Assert.Contains("error=invalid", refused.Headers.Location!.OriginalString);

        var failed = await app.AuditAsync("user.sign-in-failed");
        Assert.Equal(IdentityRules.MaxFailedAttempts + 1, failed.Count(e => e.GetProperty("actor").GetString() == "mallory-target"));
        Assert.Contains(failed, e => e.GetProperty("reason").GetString() == "account locked out");
        var lockout = Assert.Single(await app.AuditAsync("user.locked-out"));
        Assert.Equal("mallory-target", lockout.GetProperty("actor").GetString());
        Assert.False(string.IsNullOrEmpty(lockout.GetProperty("sourceIp").GetString() ?? "-"));

        // An admin unlocks; the right password works again and the success is audited.
        using var admin = app.Api();
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/users/mallory-target/unlock", null, TestContext.Current.CancellationToken)).StatusCode);
        var (_, ok) = await app.SignInAsync("mallory-target", Password);
        Assert.Equal("/", ok.Headers.Location!.OriginalString);
        Assert.Single(await app.AuditAsync("user.signed-in"));
        Assert.Single(await app.AuditAsync("user.unlocked"));
    }

    [Fact]
    public async Task A_revoked_token_is_refused_on_its_next_request_and_the_list_shows_no_secret()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        var (id, secret) = await app.CreateTokenAsync("ci-build", "ReleaseManager");
        using var ci = app.Api(secret);
        Assert.Equal(HttpStatusCode.OK, (await ci.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken)).StatusCode);

        using var admin = app.Api();
        var listed = await admin.GetStringAsync("/api/v1/tokens", TestContext.Current.CancellationToken);
        Assert.Contains("ci-build", listed);
        Assert.Contains("lastUsedAt", listed);
        Assert.DoesNotContain(secret, listed);
        Assert.DoesNotContain(ControlPlane.Core.Security.ApiToken.Hash(secret), listed);

        var revoke = await admin.DeleteAsync($"/api/v1/tokens/{id}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ci.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken)).StatusCode);
        var revoked = Assert.Single(await app.AuditAsync("token.revoked"));
        Assert.Equal("bootstrap", revoked.GetProperty("actor").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/v1/tokens/{Guid.NewGuid()}", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task User_administration_is_audited_and_keeps_one_usable_admin()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        using var admin = app.Api();
        var weak = await admin.PostAsJsonAsync("/api/v1/users", new { userName = "shorty", role = "Viewer", password = "short" }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, weak.StatusCode);
        Assert.Contains("password", (await weak.JsonAsync()).GetProperty("errors").EnumerateObject().Select(p => p.Name));
        Assert.DoesNotContain(await app.AuditAsync("user.created"), e => e.GetProperty("details").GetString()!.Contains("shorty"));

        await app.CreateUserAsync("vera", "Viewer", Password);
        var (session, _) = await app.SignInAsync("vera", Password);
        Assert.Equal("Viewer", (await session.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/users/vera/role", new { role = "Auditor" }, TestContext.Current.CancellationToken)).StatusCode);
        var changed = Assert.Single(await app.AuditAsync("user.role-changed"));
        Assert.Equal("Viewer", changed.GetProperty("before").GetString());
        Assert.Equal("Auditor", changed.GetProperty("after").GetString());

        // The last admin can be neither demoted, locked nor deleted.
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PutAsJsonAsync("/api/v1/users/admin/role", new { role = "Viewer" }, TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await admin.DeleteAsync("/api/v1/users/admin", TestContext.Current.CancellationToken)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/users/vera", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Single(await app.AuditAsync("user.deleted"));
        Assert.Equal(2, (await app.AuditAsync("user.created")).Count); // the initial admin and vera
    }

    [Fact]
    public async Task A_session_ends_when_its_account_is_deleted_or_locked()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        using var admin = app.Api();
        await app.CreateUserAsync("dora", "OnCall", Password);
        await app.CreateUserAsync("lars", "OnCall", Password);
        var (dora, _) = await app.SignInAsync("dora", Password);
        var (lars, _) = await app.SignInAsync("lars", Password);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/users/dora", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/users/lars/lock", null, TestContext.Current.CancellationToken)).StatusCode);

        foreach (var session in new[] { dora, lars })
        {
            Assert.Equal(JsonValueKind.Null, (await session.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").ValueKind);
            Assert.Equal(HttpStatusCode.Redirect, (await session.GetAsync("/", TestContext.Current.CancellationToken)).StatusCode);
        }
        Assert.Single(await app.AuditAsync("user.locked"));
    }

    [Fact]
    public async Task The_development_sign_in_is_off_by_default_and_works_only_when_enabled()
    {
        await using (var app = await SecurityAppFactory.StartAsync(postgres))
        {
            using var client = app.Api(token: null);
            Assert.DoesNotContain("dev-signin-label", await client.GetStringAsync("/signin", TestContext.Current.CancellationToken));
        }
        await using var dev = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?> { ["ControlPlane:DevSignIn:Enabled"] = "true" });
        var (session, _) = await dev.SignInAsync("nobody", "irrelevant-password"); // gets the antiforgery cookie
        var page = await session.GetStringAsync("/signin", TestContext.Current.CancellationToken);
        Assert.Contains("dev-signin-label", page);
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
        var response = await session.PostAsync("/auth/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["name"] = "devon", ["role"] = "Auditor", ["returnUrl"] = "/", ["__RequestVerificationToken"] = token,
        }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("Auditor", (await session.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").GetString());
    }

    [Fact]
    public async Task Sign_in_is_rate_limited_with_a_429_problem()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?> { ["ControlPlane:RateLimits:SignInPerMinute"] = "3" });
        HttpResponseMessage? last = null;
        for (var i = 0; i < 4; i++) (_, last) = await app.SignInAsync("admin", "wrong-password-here");
        Assert.Equal(HttpStatusCode.TooManyRequests, last!.StatusCode);
        Assert.Equal("application/problem+json", last.Content.Headers.ContentType?.MediaType);
        Assert.True(last.Headers.RetryAfter is not null);
    }

    [Fact]
    public async Task The_initial_admin_gets_a_generated_password_logged_once_at_warning_that_signs_in()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?> { ["ControlPlane:Identity:InitialAdminPassword"] = "" });
        var banner = Assert.Single(app.Logs.Lines, l => l.Contains("generated password"));
        Assert.StartsWith("Warning", banner);
        var password = banner.Split('\n').Select(l => l.Trim()).First(l => l.Length >= IdentityRules.MinPasswordLength && !l.Contains(' '));
        var (_, response) = await app.SignInAsync("admin", password);
        Assert.Equal("/", response.Headers.Location!.OriginalString);
        Assert.Single(await app.AuditAsync("user.created"));
    }

    [Fact]
    public async Task Responses_carry_the_security_headers_and_a_strict_session_cookie()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        await app.CreateUserAsync("hedda", "Viewer", Password);
        var (_, response) = await app.SignInAsync("hedda", Password);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("controlplane.session=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);

        using var anonymous = app.Api(token: null);
        using var page = await anonymous.GetAsync("/signin", TestContext.Current.CancellationToken);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", page.Headers.GetValues("Referrer-Policy").Single());
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Contains("script-src 'self' 'nonce-", csp);
        Assert.DoesNotContain("unsafe-eval", csp);
        Assert.DoesNotContain("frame-ancestors 'self'", csp);

        // Live circuits re-check the session (deleted, locked, re-roled people lose it).
        await using var scope = app.Services.CreateAsyncScope();
        Assert.IsType<ControlPlane.Web.Security.CircuitSessionRevalidator>(
            scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider>());
    }
}
