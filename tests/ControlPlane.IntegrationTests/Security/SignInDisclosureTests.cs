using System.Net;
using ControlPlane.Core.Identity;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// Issue 9: a sign-in failure does not tell whether the account exists or is locked, and redirects go only to local
/// relative paths — never to another site, never built from a forged Host header. Production environment.
/// </summary>
public sealed class SignInDisclosureTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string Password = "correct-horse-battery-staple";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private SecurityAppFactory _app = null!;

    public async ValueTask InitializeAsync() =>
        _app = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?>
        {
            ["environment"] = "Production",
            ["ControlPlane:RateLimits:SignInPerMinute"] = "1000",
        });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private async Task<string> FailedSignInLocationAsync(string userName, string password)
    {
        var (client, response) = await _app.SignInAsync(userName, password, "/applications");
        client.Dispose();
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return response.Headers.Location!.OriginalString;
    }

    [Fact]
    public async Task Unknown_wrong_password_and_locked_accounts_get_the_same_answer()
    {
        await _app.CreateUserAsync("rita", "ReleaseManager", Password);
        await _app.CreateUserAsync("lena", "Viewer", Password);
        using (var admin = _app.Api())
            Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/users/lena/lock", null, Ct)).StatusCode);

        var unknown = await FailedSignInLocationAsync("nobody-by-this-name", "whatever-password");
        var wrong = await FailedSignInLocationAsync("rita", "not-her-password");
        var lockedRightPassword = await FailedSignInLocationAsync("lena", Password);
        Assert.Equal(unknown, wrong);
        Assert.Equal(unknown, lockedRightPassword);

        // Locked by failed attempts: the answer still does not change.
        for (var i = 0; i < IdentityRules.MaxFailedAttempts; i++)
            Assert.Equal(unknown, await FailedSignInLocationAsync("rita", $"wrong-{i}"));
        Assert.Equal(unknown, await FailedSignInLocationAsync("rita", Password));

        // The page says the same words for every failure code it can be given.
        using var browser = _app.Api(token: null);
        var invalidPage = await browser.GetStringAsync("/signin?error=invalid", Ct);
        var lockedPage = await browser.GetStringAsync("/signin?error=locked", Ct);
        Assert.DoesNotContain("this account is locked", lockedPage);
        Assert.Equal(Alert(invalidPage), Alert(lockedPage));

        // The audit trail, for admins, keeps the real reasons.
        var reasons = (await _app.AuditAsync("user.sign-in-failed")).Select(e => e.GetProperty("reason").GetString()).ToHashSet();
        Assert.Superset(new HashSet<string?> { "unknown user name", "wrong password", "account locked out" }, reasons);
    }

    private static string Alert(string page)
    {
        var start = page.IndexOf("data-testid=\"signin-error\"", StringComparison.Ordinal);
        Assert.True(start >= 0, "no sign-in error shown");
        return page[start..page.IndexOf("</div>", start, StringComparison.Ordinal)];
    }

    [Theory]
    [InlineData("https://evil.example/phish")]
    [InlineData("//evil.example/phish")]
    [InlineData("/\\evil.example/phish")]
    [InlineData("/\t/evil.example/phish")]
    [InlineData("/applications\\..\\\\evil.example")]
    [InlineData("javascript:alert(1)")]
    public async Task Sign_in_goes_back_only_to_a_local_relative_path(string returnUrl)
    {
        await _app.CreateUserAsync("rita", "ReleaseManager", Password);
        var (client, response) = await _app.SignInAsync("rita", Password, returnUrl);
        client.Dispose();
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location!.OriginalString);

        var (other, kept) = await _app.SignInAsync("rita", Password, "/applications/demo-shop?tab=history");
        other.Dispose();
        Assert.Equal("/applications/demo-shop?tab=history", kept.Headers.Location!.OriginalString);
    }

    [Theory]
    [InlineData("/admin/tokens")]
    [InlineData("/")]
    public async Task A_forged_host_header_is_never_echoed_into_a_redirect(string path)
    {
        using var client = _app.Api(token: null);
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Host = "evil.example";
        var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = response.Headers.Location!.OriginalString;
        Assert.DoesNotContain("evil.example", location);
        Assert.StartsWith("/signin?", location);
    }
}
