using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>Issue 14: a person changes their own password; an admin resets someone's, which forces a change at sign-in.</summary>
public sealed partial class PasswordTests(PostgresFixture postgres)
{
    private const string Password = "correct-horse-battery-staple";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_person_changes_their_own_password_with_the_current_one_and_bad_input_names_the_field()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        await app.CreateUserAsync("rita", "ReleaseManager", Password);
        using var rita = app.Api(await OwnTokenAsync(app, "rita"));

        await AssertFieldAsync(await rita.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = Password, newPassword = "short" }, Ct), "newPassword");
        await AssertFieldAsync(await rita.PutAsJsonAsync("/api/v1/account/password", new { newPassword = "another-long-password" }, Ct), "currentPassword");
        await AssertFieldAsync(await rita.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = Password, newPassword = Password }, Ct), "newPassword");
        await AssertFieldAsync(await rita.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = Password, newPassword = 42 }, Ct), "newPassword");
        // A wrong current password is refused, audited and counts towards the lockout like a failed sign-in.
        await AssertFieldAsync(await rita.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = "not-the-password", newPassword = "another-long-password" }, Ct), "currentPassword");
        var failed = Assert.Single(await app.AuditAsync("user.password-change-failed"));
        Assert.Equal("rita", failed.GetProperty("actor").GetString());
        Assert.Empty(await app.AuditAsync("user.password-changed"));
        // A session is re-checked against the account at its first request and then every 30 s: this one is first looked at
        // after the change.
        var (stillOld, signedIn) = await app.SignInAsync("rita", Password);
        Assert.Equal("/", signedIn.Headers.Location!.OriginalString);

        // The session cookie cannot change anything on the API (cross-site request forgery), not even the password.
        var (cookieOnly, _) = await app.SignInAsync("rita", Password);
        var viaCookie = await cookieOnly.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = Password, newPassword = "another-long-password" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, viaCookie.StatusCode);

        var ok = await rita.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = Password, newPassword = "another-long-password" }, Ct);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.DoesNotContain("another-long-password", await ok.Content.ReadAsStringAsync(Ct));
        var changed = Assert.Single(await app.AuditAsync("user.password-changed"));
        Assert.Equal("rita", changed.GetProperty("actor").GetString());
        // Her other sessions end; the old password no longer signs in, the new one does.
        Assert.Equal(JsonValueKind.Null, (await stillOld.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").ValueKind);
        Assert.Contains("error=invalid", (await app.SignInAsync("rita", Password)).Response.Headers.Location!.OriginalString);
        Assert.Equal("/", (await app.SignInAsync("rita", "another-long-password")).Response.Headers.Location!.OriginalString);

        // A machine token has no password to change.
        var (_, machine) = await app.CreateTokenAsync("ci-build", "Viewer");
        using var ci = app.Api(machine);
        Assert.Equal(HttpStatusCode.Forbidden, (await ci.PutAsJsonAsync("/api/v1/account/password", new { currentPassword = "x", newPassword = "another-long-password" }, Ct)).StatusCode);
    }

    [Fact]
    public async Task An_admin_reset_ends_sessions_and_the_next_sign_in_requires_a_new_password_before_anything_else()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        await app.CreateUserAsync("carol", "OnCall", Password);
        await app.CreateUserAsync("bob", "ReleaseManager", Password);
        // Sessions are re-checked at their first request and every 30 s after: this one is first looked at after the reset.
        var (carolSession, signedIn) = await app.SignInAsync("carol", Password);
        Assert.Equal("/", signedIn.Headers.Location!.OriginalString);

        using var admin = app.Api();
        // Bad input names the field and changes nothing; a non-Admin is refused; an unknown user is a 404.
        await AssertFieldAsync(await admin.PostAsJsonAsync("/api/v1/users/carol/password-reset", new { password = "short" }, Ct), "password");
        await AssertFieldAsync(await admin.PostAsJsonAsync("/api/v1/users/carol/password-reset", new { password = "" }, Ct), "password");
        await AssertFieldAsync(await admin.PostAsJsonAsync("/api/v1/users/carol/password-reset", new { passwort = "a-long-enough-password" }, Ct), "passwort");
        using var bob = app.Api(await OwnTokenAsync(app, "bob"));
        Assert.Equal(HttpStatusCode.Forbidden, (await bob.PostAsJsonAsync("/api/v1/users/carol/password-reset", new { }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsJsonAsync("/api/v1/users/nobody-here/password-reset", new { }, Ct)).StatusCode);
        Assert.Empty(await app.AuditAsync("user.password-reset"));

        var reset = await admin.PostAsJsonAsync("/api/v1/users/carol/password-reset", new { }, Ct);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.Equal("no-store", reset.Headers.CacheControl?.ToString());
        var body = await reset.JsonAsync();
        var oneTime = body.GetProperty("generatedPassword").GetString()!;
        Assert.True(oneTime.Length >= 12);
        Assert.True(body.GetProperty("mustChangePassword").GetBoolean());
        var audited = Assert.Single(await app.AuditAsync("user.password-reset"));
        Assert.Contains("\"userName\":\"carol\"", audited.GetProperty("details").GetString());
        Assert.DoesNotContain(oneTime, audited.GetRawText());
        Assert.DoesNotContain(app.Logs.Lines, l => l.Contains(oneTime));

        // Her session ended; the old password is gone.
        Assert.Equal(JsonValueKind.Null, (await carolSession.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").ValueKind);
        Assert.Contains("error=invalid", (await app.SignInAsync("carol", Password)).Response.Headers.Location!.OriginalString);

        // The one-time password leads only to the change form: no session until she has chosen her own.
        var (browser, signIn) = await app.SignInAsync("carol", oneTime, "/applications/shop");
        Assert.StartsWith("/account/password", signIn.Headers.Location!.OriginalString);
        Assert.Equal(JsonValueKind.Null, (await browser.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").ValueKind);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync("/", Ct)).StatusCode);
        var page = signIn.Headers.Location!.OriginalString; // the form posts back to its own address, returnUrl included
        var form = await browser.GetStringAsync(page, Ct);
        Assert.Contains("password-change-required", form);
        Assert.DoesNotContain("currentPassword", form);

        // Mismatch and the admin's own password are refused, inline, naming the field.
        var mismatch = await PostChangeAsync(browser, page, form, "a-brand-new-password", "something-else-entirely");
        Assert.Contains("error-confirmPassword", await mismatch.Content.ReadAsStringAsync(Ct));
        var same = await PostChangeAsync(browser, page, form, oneTime, oneTime);
        Assert.Contains("error-newPassword", await same.Content.ReadAsStringAsync(Ct));
        Assert.Equal(JsonValueKind.Null, (await browser.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").ValueKind);

        var done = await PostChangeAsync(browser, page, form, "a-brand-new-password", "a-brand-new-password");
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Equal("/applications/shop", new Uri(new Uri("http://localhost"), done.Headers.Location!).PathAndQuery);
        Assert.Equal("OnCall", (await browser.GetJsonAsync(SecurityAppFactory.WhoAmIPath)).GetProperty("role").GetString());
        var changed = Assert.Single(await app.AuditAsync("user.password-changed"));
        Assert.Contains("\"wasReset\":true", changed.GetProperty("details").GetString());
        Assert.Single(await app.AuditAsync("user.password-change-required"));
        // The one-time password is spent.
        Assert.Contains("error=invalid", (await app.SignInAsync("carol", oneTime)).Response.Headers.Location!.OriginalString);
    }

    private static async Task<HttpResponseMessage> PostChangeAsync(HttpClient browser, string page, string form, string newPassword, string confirm) =>
        await browser.PostAsync(page, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["newPassword"] = newPassword, ["confirmPassword"] = confirm, ["_handler"] = "change-password",
            ["__RequestVerificationToken"] = AntiforgeryField().Match(form).Groups[1].Value,
        }), Ct);

    private static async Task<string> OwnTokenAsync(SecurityAppFactory app, string owner)
    {
        using var admin = app.Api();
        var response = await admin.PostAsJsonAsync("/api/v1/tokens", new { name = $"{owner}-laptop", role = "Viewer", owner }, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.JsonAsync()).GetProperty("token").GetString()!;
    }

    private static async Task AssertFieldAsync(HttpResponseMessage response, string field)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(field, JsonDocument.Parse(text).RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
