using System.Text.RegularExpressions;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Journeys 1 and 2 of issue 3: a release going through two people in two browsers, and an on-call rollback.</summary>
public sealed class ReleaseJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";

    [Fact]
    public async Task Release_manager_starts_a_release_a_colleague_approves_and_both_see_the_switch_live()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_release"));
        using var admin = server.Api();
        var publicUrl = await admin.PublicUrlAsync(App);
        await using var browser = await Browser.LaunchAsync();

        // "-slow-verify": the demo answers ControlPlane's direct checks after 1.5 s, so Verifying is on screen long enough to be seen.
        const string NewVersion = "2.0.0-slow-verify";
        var rita = await browser.SignInAsync(server.BaseAddress, "rita", "ReleaseManager");
        await Expect(rita.Locator($"[data-app={App}]")).ToContainTextAsync("blue");
        await browser.ScreenshotAsync(rita, "overview");

        await rita.GotoAsync($"/applications/{App}");
        await Expect(rita.GetByText("Router embedded")).ToBeVisibleAsync();
        // The API's version rule, inline while typing.
        await rita.GetByLabel("Version").FillAsync("../2.0");
        await Expect(rita.GetByText("must be 1-64 characters")).ToBeVisibleAsync();
        await Expect(rita.GetByTestId("start-release")).ToBeDisabledAsync();
        await rita.GetByLabel("Version").FillAsync(NewVersion);
        await rita.GetByLabel("Reason (optional)").FillAsync("spring sale");
        await browser.ScreenshotAsync(rita, "new-release-form");

        // Every state the page shows from here on is recorded in the page itself: a reload would wipe the record.
        await rita.EvaluateAsync("""
            () => {
              window.__states = [];
              const seen = () => document.querySelectorAll('[data-testid=deployment-state]').forEach(e => {
                const s = e.textContent.trim();
                if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
              });
              new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, characterData: true });
            }
            """);
        await rita.GetByTestId("start-release").ClickAsync();
        await Expect(rita).ToHaveURLAsync(new Regex("/deployments/[0-9a-f-]{36}$"));
        var releaseUrl = rita.Url;
        await Expect(rita.GetByTestId("deployment-state")).ToHaveTextAsync("AwaitingApproval", new() { Timeout = 60_000 });
        var states = await rita.EvaluateAsync<string[]>("() => window.__states");
        Assert.Contains("Verifying", states);
        Assert.True(Array.IndexOf(states, "Verifying") < Array.IndexOf(states, "AwaitingApproval"), string.Join(" → ", states));

        // The requester may not approve her own release, and is told why.
        await Expect(rita.GetByTestId("approve-button")).ToBeDisabledAsync();
        await Expect(rita.GetByTestId("approve-blocked")).ToContainTextAsync("You requested this release");
        await Expect(rita.GetByTestId("step-message").First).ToContainTextAsync(NewVersion);
        // Each check's measured value is charted with its bound: the demo's cache check read $.hitRatio on the standby.
        var hitRatio = rita.Locator("[data-testid=check-series][data-check=cache][data-name=\"$.hitRatio\"]");
        await Expect(hitRatio).ToContainTextAsync("needs ≥ 0.85");
        await Expect(hitRatio.GetByTestId("check-latest")).ToContainTextAsync("latest 0.92 (passed, verify)");
        await browser.ScreenshotAsync(rita, "release-awaiting-approval");

        var alice = await browser.SignInAsync(server.BaseAddress, "alice", "ReleaseManager");
        await alice.GotoAsync(releaseUrl);
        await Expect(alice.GetByTestId("approvals-summary")).ToContainTextAsync("0 of 1 approvals; 1 more required");
        await alice.GetByTestId("approve-button").ClickAsync();
        var dialog = alice.GetByRole(AriaRole.Dialog);
        await Expect(dialog).ToContainTextAsync($"ready to switch traffic from blue 1.0.0 to green {NewVersion}");
        await dialog.GetByLabel("Comment").FillAsync("looks good in preview");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();

        // Rita sees the approval arrive without reloading, and may now switch.
        await Expect(rita.GetByTestId("deployment-state")).ToHaveTextAsync("ReadyToSwitch");
        await Expect(rita.GetByTestId("approval")).ToContainTextAsync("alice");
        await Expect(rita.GetByTestId("approval")).ToContainTextAsync("looks good in preview");
        await Expect(rita.GetByTestId("switch-plan")).ToContainTextAsync($"moves from blue 1.0.0 to green {NewVersion}");
        // …and what exactly changes in the router, in its own terms.
        await Expect(rita.GetByTestId("router-change")).ToContainTextAsync("The embedded router on 127.0.0.1");
        await browser.ScreenshotAsync(rita, "release-ready-to-switch");

        await rita.GetByTestId("switch-button").ClickAsync();
        var confirm = rita.GetByRole(AriaRole.Dialog);
        await Expect(confirm).ToContainTextAsync($"Traffic for demo-shop moves from blue 1.0.0 to green {NewVersion} immediately");
        await confirm.GetByRole(AriaRole.Button, new() { Name = "Switch traffic" }).ClickAsync();

        foreach (var page in new[] { rita, alice })
            await Expect(page.GetByTestId("deployment-state")).ToHaveTextAsync(new Regex("^(Monitoring|Succeeded)$"), new() { Timeout = 30_000 });
        Assert.Equal(releaseUrl, alice.Url);
        Assert.Equal(NewVersion, await Api.PublicVersionAsync(publicUrl));
        await Expect(rita.Locator("[data-step=switch] [data-testid=step-state]")).ToHaveTextAsync("Succeeded");
        // The traffic chart and the checks' values mark the switch.
        await Expect(rita.GetByTestId("traffic-chart").Locator("svg").First).ToContainTextAsync("switch");
        await Expect(hitRatio.Locator("svg")).ToContainTextAsync("switch");
        await browser.ScreenshotAsync(alice, "release-monitoring");

        await alice.GotoAsync("/");
        await Expect(alice.Locator($"[data-app={App}]")).ToContainTextAsync($"live {NewVersion}");
        await Expect(alice.Locator($"[data-app={App}]").GetByTestId("rollback-button")).ToHaveTextAsync("Roll back to 1.0.0");
        await browser.ScreenshotAsync(alice, "overview-after-switch");
    }

    [Fact]
    public async Task On_call_rolls_back_from_the_overview_with_a_reason_and_the_audit_shows_it()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_rollback"));
        using var admin = server.Api();
        var publicUrl = await admin.PublicUrlAsync(App);
        using var approver = await server.ApiAsAsync("alice", "ReleaseManager");
        var id = await admin.StartReleaseAsync(App, "2.0.0", "to roll back");
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        await approver.PostOkAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" });
        await admin.WaitForStateAsync(id, "ReadyToSwitch");
        await admin.PostOkAsync($"/api/v1/deployments/{id}/switch", new { });
        await admin.WaitForStateAsync(id, "Monitoring");
        Assert.Equal("2.0.0", await Api.PublicVersionAsync(publicUrl));

        await using var browser = await Browser.LaunchAsync();
        var oscar = await browser.SignInAsync(server.BaseAddress, "oscar", "OnCall");
        var card = oscar.Locator($"[data-app={App}]");
        await Expect(card.GetByTestId("rollback-button")).ToHaveTextAsync("Roll back to 1.0.0");
        // On-call may roll back but never start a release.
        await Expect(card.GetByTestId("new-release-link")).ToHaveCountAsync(0);
        await browser.ScreenshotAsync(oscar, "overview-on-call");

        await card.GetByTestId("rollback-button").ClickAsync();                                            // click 1
        var dialog = oscar.GetByRole(AriaRole.Dialog);
        await Expect(dialog).ToContainTextAsync("Traffic for demo-shop moves from green 2.0.0 to blue 1.0.0 immediately");
        var confirm = dialog.GetByRole(AriaRole.Button, new() { Name = "Roll back now" });
        await Expect(confirm).ToBeDisabledAsync();                                                          // the reason is required
        await dialog.GetByLabel("Reason").FillAsync("checkout errors spiking on 2.0.0");
        await browser.ScreenshotAsync(oscar, "rollback-dialog");
        await confirm.ClickAsync();                                                                          // click 2

        await Expect(oscar.GetByText("Rolled back: demo-shop now serves 1.0.0 from blue.")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Expect(card).ToContainTextAsync("live 1.0.0");
        Assert.Equal("1.0.0", await Api.PublicVersionAsync(publicUrl));

        var audrey = await browser.SignInAsync(server.BaseAddress, "audrey", "Auditor");
        await audrey.GotoAsync("/audit");
        await audrey.Locator(Selectors.Actor).FillAsync("oscar");
        await audrey.GetByTestId("apply-filters").ClickAsync();
        // The unfiltered first page shows the same row; click only once the filtered page replaced it (a click on a row
        // being re-rendered is lost).
        await Expect(audrey.Locator("tr.audit-row").Filter(new() { HasNot = audrey.GetByText("oscar") })).ToHaveCountAsync(0);
        var row = audrey.Locator("tr", new() { Has = audrey.GetByText("application.rolled-back") });
        await Expect(row).ToContainTextAsync("checkout errors spiking on 2.0.0");
        await Expect(row).ToContainTextAsync("green 2.0.0 → blue 1.0.0");
        // A click that lands while the page re-renders (the chain check finishing) meets a retired event handler and is
        // dropped by Blazor; a person would click again, and so does the test (never more than three times).
        for (var attempt = 1; ; attempt++)
        {
            await row.ClickAsync();
            try { await Expect(audrey.GetByTestId("drawer-reason")).ToBeVisibleAsync(new() { Timeout = 5_000 }); break; }
            catch (PlaywrightException) when (attempt < 3) { }
        }
        await Expect(audrey.GetByTestId("drawer-reason")).ToHaveTextAsync("checkout errors spiking on 2.0.0");
        await browser.ScreenshotAsync(audrey, "audit-rollback-drawer");
    }
}
