using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Issue 4 (identity): the first admin signs in on the real page, manages users and API tokens, and signs out.</summary>
public sealed class IdentityJourneyTests(PostgresFixture postgres)
{
    // MudBlazor puts a text field's extra attributes on the input itself (or its wrapper, depending on the component).
    private static ILocator Input(IPage page, string testId) => page.Locator($"input[data-testid={testId}], [data-testid={testId}] input").First;

    [Fact]
    public async Task Admin_signs_in_creates_a_user_and_a_token_revokes_it_and_signs_out()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_identity"));
        await using var browser = await Browser.LaunchAsync();
        var page = await browser.NewPageAsync(server.BaseAddress);

        // A wrong password is refused with a plain message; the right one signs the initial admin in.
        await page.GotoAsync("/admin/tokens");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/signin"));
        await Expect(page.GetByTestId("dev-signin-label")).ToHaveCountAsync(0); // the development sign-in is off by default
        await browser.ScreenshotAsync(page, "signin");
        await page.Locator("#userName").FillAsync("admin");
        await page.Locator("#password").FillAsync("not-the-password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("signin-error")).ToContainTextAsync("wrong user name or password");
        await page.Locator("#userName").FillAsync("admin");
        await page.Locator("#password").FillAsync(DashboardServer.InitialAdminPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/admin/tokens$"));
        await Expect(page.GetByTestId("signed-in-role")).ToHaveTextAsync("Admin");

        // A token for CI: its secret is shown once, it works, and once revoked it is refused.
        await Input(page, "new-token-name").FillAsync("ci-checkout");
        await page.GetByTestId("create-token").ClickAsync();
        var secret = await page.GetByTestId("new-token-secret").TextContentAsync();
        Assert.StartsWith("cp_", secret);
        await Expect(page.GetByTestId("tokens-table")).ToContainTextAsync("ci-checkout");
        await browser.ScreenshotAsync(page, "admin-tokens");
        using (var ci = server.Api(secret))
            Assert.True((await ci.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken)).IsSuccessStatusCode);
        await page.GetByTestId("revoke-token").First.ClickAsync();
        await page.Locator(".mud-dialog").GetByRole(AriaRole.Button, new() { Name = "Revoke", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("tokens-table")).ToContainTextAsync("revoked");
        using (var ci = server.Api(secret))
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await ci.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken)).StatusCode);

        // A user, created through the admin menu's users page.
        await page.GetByTestId("admin-menu").ClickAsync();
        await page.GetByText("Users", new() { Exact = true }).ClickAsync();
        await Input(page, "new-user-name").FillAsync("rita");
        await Input(page, "new-user-password").FillAsync("rita-has-a-long-password");
        await page.GetByTestId("create-user").ClickAsync();
        await Expect(page.GetByTestId("users-table")).ToContainTextAsync("rita");
        await browser.ScreenshotAsync(page, "admin-users");

        await page.GetByTestId("sign-out").ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/signin"));
        Assert.Empty(browser.CspViolations);
    }
}
