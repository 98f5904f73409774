using System.Globalization;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Journey 3 of issue 3: an auditor filters, exports exactly the filtered events, and can change nothing.</summary>
public sealed class AuditorJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";

    [Fact]
    public async Task Auditor_filters_the_trail_exports_exactly_those_events_and_sees_no_controls()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_audit"));
        using var admin = server.Api();
        await admin.PublicUrlAsync(App);
        // A pipeline requests a release and aborts it: the events the auditor will look for, among the system's.
        using var pipeline = await server.ApiAsAsync("ci-pipeline", "ReleaseManager");
        var id = await pipeline.StartReleaseAsync(App, "3.0.0", "nightly build");
        await pipeline.WaitForStateAsync(id, "AwaitingApproval");
        await pipeline.PostOkAsync($"/api/v1/deployments/{id}/abort", new { reason = "superseded by 3.0.1" });

        await using var browser = await Browser.LaunchAsync();
        var audrey = await browser.SignInAsync(server.BaseAddress, "audrey", "Auditor");

        // Nothing to act with, anywhere an action could be.
        foreach (var path in new[] { "/", $"/applications/{App}", $"/deployments/{id}", $"/applications/{App}/history", "/audit" })
        {
            await audrey.GotoAsync(path);
            await Expect(audrey.Locator("h4, h1").First).ToBeVisibleAsync();
            await Expect(audrey.Locator(".mud-progress-linear")).ToHaveCountAsync(0); // loaded, not still loading
            await Expect(audrey.GetByText("This page failed to render")).ToHaveCountAsync(0);
            foreach (var control in new[] { "Approve", "Switch traffic", "Abort", "Rollback", "Roll back now", "Start release", "New release" })
                await Expect(audrey.GetByRole(AriaRole.Button, new() { Name = control, Exact = true })).ToHaveCountAsync(0);
            await browser.ScreenshotAsync(audrey, "readonly" + path.Replace('/', '_'));
        }

        await audrey.GotoAsync("/audit");
        await Expect(audrey.GetByTestId("chain-badge")).ToContainTextAsync("chain intact");
        var allRows = await audrey.Locator("[data-testid=audit-table] tbody tr").CountAsync();
        await audrey.Locator(Selectors.Actor).FillAsync("ci-pipeline");
        await audrey.GetByTestId("apply-filters").ClickAsync();
        var rows = audrey.Locator("[data-testid=audit-table] tbody tr");
        await Expect(rows).ToHaveCountAsync(2);
        Assert.True(allRows > 2, $"the unfiltered trail should hold more than the pipeline's 2 events, held {allRows}");
        await Expect(rows.Nth(0)).ToContainTextAsync("deployment.aborted");
        await Expect(rows.Nth(0)).ToContainTextAsync("superseded by 3.0.1");
        await Expect(rows.Nth(1)).ToContainTextAsync("deployment.requested");
        var shownSequences = (await rows.Locator("td:first-child").AllInnerTextsAsync()).Select(s => long.Parse(s.Trim(), CultureInfo.InvariantCulture)).Order().ToList();
        await browser.ScreenshotAsync(audrey, "audit-filtered");

        var download = await audrey.RunAndWaitForDownloadAsync(() => audrey.GetByTestId("export-csv").ClickAsync());
        Assert.EndsWith(".csv", download.SuggestedFilename);
        var file = Path.Combine(server.DataDirectory, download.SuggestedFilename);
        await download.SaveAsAsync(file);
        var exported = Csv.Records(await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken));
        Assert.Equal(shownSequences, exported.Select(r => long.Parse(r["sequence"], CultureInfo.InvariantCulture)).ToList());
        Assert.All(exported, r => Assert.Equal("ci-pipeline", r["actor"]));
        Assert.Equal(["deployment.requested", "deployment.aborted"], exported.Select(r => r["action"]).ToArray());
        Assert.Equal("superseded by 3.0.1", exported[1]["reason"]);

        await rows.Nth(0).ClickAsync();
        await Expect(audrey.GetByTestId("drawer-before")).ToHaveTextAsync("AwaitingApproval");
        await Expect(audrey.GetByTestId("drawer-after")).ToHaveTextAsync("Aborted");
        await browser.ScreenshotAsync(audrey, "audit-drawer");
    }
}
