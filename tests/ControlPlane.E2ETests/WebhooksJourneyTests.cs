using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using ControlPlane.IntegrationTests.Webhooks;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Issue 11: an admin adds a webhook in the dashboard, sends a test, and sees it delivered in the log.</summary>
public sealed class WebhooksJourneyTests(PostgresFixture postgres)
{
    [Fact]
    public async Task An_admin_adds_a_webhook_sends_a_test_and_sees_it_delivered()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_webhooks"));
        await using var browser = await Browser.LaunchAsync();
        var page = await browser.SignInAsync(server.BaseAddress, "wanda", "Admin");
        await page.GotoAsync("/admin/webhooks");
        await Expect(page.GetByTestId("webhooks-table")).ToBeVisibleAsync();

        await page.Locator("[data-testid=new-webhook-name] input, input[data-testid=new-webhook-name]").First.FillAsync("team-channel");
        await page.Locator("[data-testid=new-webhook-url] input, input[data-testid=new-webhook-url]").First.FillAsync(receiver.UrlFor("team").ToString());
        await page.Locator("[data-testid=new-webhook-secret] input, input[data-testid=new-webhook-secret]").First.FillAsync("a-secret-only-the-team-knows");
        await page.GetByTestId("create-webhook").ClickAsync();
        await Expect(page.GetByTestId("webhook-name")).ToHaveTextAsync("team-channel");
        await Expect(page.GetByTestId("webhooks-table")).Not.ToContainTextAsync("/team"); // only scheme://host:port/… is shown

        await page.GetByTestId("test-webhook").ClickAsync();
        await Expect(page.GetByTestId("delivery-status").First).ToHaveTextAsync("Delivered", new() { Timeout = 30_000 });
        var got = await receiver.WaitForAsync(r => r.Count >= 1, "the test ping");
        Assert.Equal("ping", got[0].Event);
        Assert.True(got[0].SignedWith("a-secret-only-the-team-knows"));
        await browser.ScreenshotAsync(page, "admin-webhooks");
    }
}
