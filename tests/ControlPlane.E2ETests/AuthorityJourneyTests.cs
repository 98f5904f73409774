using System.Net;
using System.Net.Http.Json;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>
/// Issue 9: authority is checked at the moment of the act. People demoted or deleted while /admin/tokens and a release
/// page stay open in their browser cannot mint a token or approve with the next click, and their tokens above the new
/// role stop working at once.
/// </summary>
public sealed class AuthorityJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ILocator Input(IPage page, string testId) => page.Locator($"input[data-testid={testId}], [data-testid={testId}] input").First;

    private static async Task<List<string?>> TokenNamesAsync(HttpClient admin) =>
        [.. (await admin.GetJsonAsync("/api/v1/tokens")).EnumerateArray().Select(t => t.GetProperty("name").GetString())];

    [Fact]
    public async Task Demoted_and_deleted_people_are_refused_from_pages_they_left_open()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_authority"));
        using var admin = server.Api();
        await admin.PublicUrlAsync(App);
        await using var browser = await Browser.LaunchAsync();

        // Two admins open the tokens page; a release manager opens a release waiting for approval.
        var ada = await browser.SignInAsync(server.BaseAddress, "ada", "Admin");
        await ada.GotoAsync("/admin/tokens");
        await Expect(ada.GetByTestId("tokens-table")).ToBeVisibleAsync();
        var ed = await browser.SignInAsync(server.BaseAddress, "ed", "Admin");
        await ed.GotoAsync("/admin/tokens");
        await Expect(ed.GetByTestId("tokens-table")).ToBeVisibleAsync();
        var adaToken = await CreateTokenAsync(admin, new { name = "ada-admin", role = "Admin", owner = "ada" });

        var id = await admin.StartReleaseAsync(App, "2.0.0", "authority journey");
        var alice = await browser.SignInAsync(server.BaseAddress, "alice", "ReleaseManager");
        await alice.GotoAsync($"/deployments/{id}");
        await Expect(alice.GetByTestId("deployment-state")).ToHaveTextAsync("AwaitingApproval", new() { Timeout = 60_000 });
        await Expect(alice.GetByTestId("approve-button")).ToBeEnabledAsync();

        // An admin demotes ada and alice to Viewer and deletes ed; their pages stay open.
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/users/ada/role", new { role = "Viewer" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/users/alice/role", new { role = "Viewer" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/users/ed", Ct)).StatusCode);

        // Ada's Admin token stopped at once.
        using (var adaApi = server.Api(adaToken))
            Assert.Equal(HttpStatusCode.Unauthorized, (await adaApi.GetAsync("/api/v1/tokens", Ct)).StatusCode);

        // The next click on the open tokens pages is refused and mints nothing.
        foreach (var (page, name) in new[] { (ada, "ada-after-demotion"), (ed, "ed-after-deletion") })
        {
            await Input(page, "new-token-name").FillAsync(name);
            await page.GetByTestId("create-token").ClickAsync();
            await Expect(page.Locator(".mud-snackbar").Filter(new() { HasText = "Refused" })).ToBeVisibleAsync();
            await Expect(page.GetByTestId("new-token-secret")).ToHaveCountAsync(0);
            await browser.ScreenshotAsync(page, $"refused-{name}");
        }
        var names = await TokenNamesAsync(admin);
        Assert.DoesNotContain("ada-after-demotion", names);
        Assert.DoesNotContain("ed-after-deletion", names);

        // The approve button on alice's open release page is refused too; the release still waits.
        await alice.GetByTestId("approve-button").ClickAsync();
        await alice.GetByRole(AriaRole.Dialog).GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Expect(alice.Locator(".mud-snackbar").Filter(new() { HasText = "Refused" })).ToBeVisibleAsync();
        await browser.ScreenshotAsync(alice, "refused-approval");
        var release = await admin.GetJsonAsync($"/api/v1/deployments/{id}");
        Assert.Equal("AwaitingApproval", release.GetProperty("state").GetString());
        Assert.Empty(release.GetProperty("approvals").EnumerateArray());
    }

    private static async Task<string> CreateTokenAsync(HttpClient admin, object body) =>
        (await admin.PostOkAsync("/api/v1/tokens", body)).GetProperty("token").GetString()!;
}
