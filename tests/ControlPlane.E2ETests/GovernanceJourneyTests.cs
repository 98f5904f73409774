using System.Globalization;
using System.Text.RegularExpressions;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Issue 4's governance in the browser: the two-person approval, then a freeze that blocks the switch until an Admin overrides it.</summary>
public sealed class GovernanceJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";

    [Fact]
    public async Task A_colleague_approves_a_freeze_blocks_the_switch_and_an_admin_overrides_it_with_a_reason()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_governance"));
        using var admin = server.Api();
        var publicUrl = await admin.PublicUrlAsync(App);
        await using var browser = await Browser.LaunchAsync();

        // Rita starts a release; she may not approve it herself.
        var rita = await browser.SignInAsync(server.BaseAddress, "rita", "ReleaseManager");
        await rita.GotoAsync($"/applications/{App}");
        await Expect(rita.GetByTestId("freeze-windows")).ToContainTextAsync("No freeze windows.");
        await rita.GetByLabel("Version").FillAsync("2.0.0");
        await rita.GetByTestId("start-release").ClickAsync();
        await Expect(rita).ToHaveURLAsync(new Regex("/deployments/[0-9a-f-]{36}$"));
        var releaseUrl = rita.Url;
        await Expect(rita.GetByTestId("deployment-state")).ToHaveTextAsync("AwaitingApproval", new() { Timeout = 60_000 });
        await Expect(rita.GetByTestId("approve-button")).ToBeDisabledAsync();
        await Expect(rita.GetByTestId("approve-blocked")).ToContainTextAsync("You requested this release");

        // Alice approves in her own browser; Rita sees it arrive.
        var alice = await browser.SignInAsync(server.BaseAddress, "alice", "ReleaseManager");
        await alice.GotoAsync(releaseUrl);
        await alice.GetByTestId("approve-button").ClickAsync();
        var approveDialog = alice.GetByRole(AriaRole.Dialog);
        await approveDialog.GetByLabel("Comment").FillAsync("preview looks right");
        await approveDialog.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Expect(rita.GetByTestId("deployment-state")).ToHaveTextAsync("ReadyToSwitch");
        await Expect(rita.GetByTestId("approval")).ToContainTextAsync("alice");
        await Expect(rita.GetByTestId("approvals-summary")).ToContainTextAsync("1 of 1 approvals");

        // An Admin declares a freeze: every open page shows it, and Rita can no longer switch.
        var end = DateTimeOffset.UtcNow.AddHours(2);
        await admin.PostOkAsync($"/api/v1/applications/{App}/freeze-windows", new
        {
            name = "Year-end freeze", reason = "no changes over the holidays", kind = "oneOff", timeZone = "UTC",
            start = DateTimeOffset.UtcNow.AddMinutes(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            end = end.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        });
        var until = end.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC";
        await Expect(rita.GetByTestId("freeze-banner")).ToContainTextAsync($"Frozen: Year-end freeze until {until}");
        await Expect(rita.GetByTestId("switch-button")).ToBeDisabledAsync();
        await Expect(rita.GetByTestId("switch-blocked")).ToContainTextAsync("only an Admin can override");
        await browser.ScreenshotAsync(rita, "release-frozen");

        await alice.GotoAsync("/");
        await Expect(alice.Locator($"[data-app={App}]").GetByTestId("freeze-banner")).ToContainTextAsync($"Frozen: Year-end freeze until {until}");
        await browser.ScreenshotAsync(alice, "overview-frozen");
        await alice.GotoAsync($"/applications/{App}");
        await Expect(alice.GetByTestId("freeze-banner")).ToContainTextAsync("Year-end freeze");
        await Expect(alice.GetByTestId("freeze-active")).ToContainTextAsync($"active until {until}");
        await browser.ScreenshotAsync(alice, "application-frozen");

        // The Admin overrides the freeze, and must say why.
        var ada = await browser.SignInAsync(server.BaseAddress, "ada", "Admin");
        await ada.GotoAsync(releaseUrl);
        await Expect(ada.GetByTestId("switch-button")).ToHaveTextAsync("Switch traffic (override freeze)");
        await ada.GetByTestId("switch-button").ClickAsync();
        var dialog = ada.GetByRole(AriaRole.Dialog);
        await Expect(dialog.GetByTestId("override-freeze")).ToContainTextAsync("Frozen: Year-end freeze");
        var confirm = dialog.GetByRole(AriaRole.Button, new() { Name = "Override freeze and switch" });
        await Expect(confirm).ToBeDisabledAsync();
        await dialog.GetByLabel("Freeze override reason").FillAsync("security fix approved by the CAB");
        await browser.ScreenshotAsync(ada, "override-dialog");
        await confirm.ClickAsync();

        await Expect(rita.GetByTestId("deployment-state")).ToHaveTextAsync(new Regex("^(Monitoring|Succeeded)$"), new() { Timeout = 30_000 });
        Assert.Equal("2.0.0", await Api.PublicVersionAsync(publicUrl));
        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={App}&action=freeze.overridden");
        var e = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.Equal(("ada", "security fix approved by the CAB"), (e.GetProperty("actor").GetString(), e.GetProperty("reason").GetString()));
        await browser.ScreenshotAsync(rita, "release-switched-despite-freeze");
    }
}
