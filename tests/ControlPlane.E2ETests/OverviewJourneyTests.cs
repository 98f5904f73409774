using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Issue 14: the overview tells on-call what happened and what needs them, and rollback is where they are.</summary>
public sealed class OverviewJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";

    [Fact]
    public async Task Overview_tells_what_happened_after_each_failure_and_on_call_rolls_back_from_the_release_page_and_the_overview()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_overview_story"));
        using var admin = server.Api();
        var publicUrl = await admin.PublicUrlAsync(App);
        using var approver = await server.ApiAsAsync("alice", "ReleaseManager");
        await using var browser = await Browser.LaunchAsync();
        var carol = await browser.SignInAsync(server.BaseAddress, "carol", "OnCall");
        var row = carol.Locator($"[data-app={App}]");
        await Expect(row.GetByText("No releases yet")).ToBeVisibleAsync();

        // 1. A failed verification: traffic never moved, and the overview says which check and why.
        var failed = await admin.StartReleaseAsync(App, "2.1.0-fail-verify", "demo: fails verification");
        await admin.WaitForStateAsync(failed, "Failed");
        await Expect(row.GetByTestId("last-outcome")).ToContainTextAsync("2.1.0-fail-verify failed verification");
        await Expect(row.GetByTestId("last-outcome")).ToContainTextAsync("check 'home'");
        await Expect(carol.GetByTestId("filter-failed")).ToContainTextAsync("Failed recently (1)");
        await browser.ScreenshotAsync(carol, "overview-failed-verification");

        // 2. An automatic rollback: the failing check is named.
        var breaking = await admin.StartReleaseAsync(App, "2.2.0-fail-monitor", "demo: breaks after the switch");
        await SwitchAsync(admin, approver, breaking);
        await admin.WaitForStateAsync(breaking, "RolledBack");
        await Expect(row.GetByTestId("last-outcome")).ToContainTextAsync("2.2.0-fail-monitor automatically rolled back: check 'home' failed");
        await Expect(row).ToContainTextAsync("live 1.0.0");
        await browser.ScreenshotAsync(carol, "overview-auto-rollback");

        // 3. During monitoring, on the release page itself: a person's rollback, not failed checks and not break-glass.
        var third = await admin.StartReleaseAsync(App, "2.0.0", "release three");
        await SwitchAsync(admin, approver, third);
        await carol.GotoAsync($"/deployments/{third}");
        await Expect(carol.GetByTestId("deployment-state")).ToHaveTextAsync("Monitoring");
        await carol.GetByTestId("rollback-button").ClickAsync();
        var dialog = carol.GetByRole(AriaRole.Dialog);
        await Expect(dialog.GetByLabel("Reason")).ToBeFocusedAsync();
        await carol.Keyboard.TypeAsync("latency doubled after 2.0.0");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Roll back now" }).ClickAsync();
        await Expect(carol.GetByTestId("deployment-state")).ToHaveTextAsync("RolledBack", new() { Timeout = 30_000 });
        await Expect(carol.GetByTestId("outcome")).ToHaveTextAsync("Rolled back by carol: latency doubled after 2.0.0");
        await Expect(carol.Locator("[data-step=monitor] [data-testid=step-state]")).ToHaveTextAsync("Skipped");
        await Expect(carol.Locator("[data-step=monitor] [data-testid=step-message]")).ToHaveTextAsync("ended by carol's rollback: latency doubled after 2.0.0");
        await Expect(carol.GetByTestId("break-glass-badge")).ToHaveCountAsync(0);
        await Expect(carol.GetByTestId("switch-plan")).ToContainTextAsync("Later rolled back");
        await browser.ScreenshotAsync(carol, "release-rolled-back-by-carol");
        Assert.Equal("1.0.0", await Api.PublicVersionAsync(publicUrl));
        await carol.GotoAsync("/");
        await Expect(row.GetByTestId("last-outcome")).ToContainTextAsync("2.0.0 rolled back by carol: latency doubled after 2.0.0");
        await browser.ScreenshotAsync(carol, "overview-rolled-back-by-carol");

        // 4. From the overview: two clicks and the reason typed straight away (the reason box has the focus).
        var fourth = await admin.StartReleaseAsync(App, "2.0.1", "release four");
        await SwitchAsync(admin, approver, fourth);
        await Expect(row).ToContainTextAsync("live 2.0.1");
        await carol.EvaluateAsync("() => { window.__clicks = 0; document.addEventListener('click', () => window.__clicks++, true); }");
        await row.GetByTestId("rollback-button").ClickAsync();                                              // click 1
        dialog = carol.GetByRole(AriaRole.Dialog);
        await Expect(dialog).ToContainTextAsync("Traffic for demo-shop moves from green 2.0.1 to blue 1.0.0 immediately");
        await Expect(dialog.GetByLabel("Reason")).ToBeFocusedAsync();
        await carol.Keyboard.TypeAsync("checkout errors on 2.0.1");
        await browser.ScreenshotAsync(carol, "overview-rollback-dialog");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Roll back now" }).ClickAsync();            // click 2
        await Expect(carol.GetByText("Rolled back: demo-shop now serves 1.0.0 from blue.")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        Assert.Equal(2, await carol.EvaluateAsync<int>("() => window.__clicks"));
        await Expect(row).ToContainTextAsync("live 1.0.0");
        await Expect(row.GetByTestId("last-outcome")).ToContainTextAsync("2.0.1 rolled back by carol: checkout errors on 2.0.1");
        Assert.Equal("1.0.0", await Api.PublicVersionAsync(publicUrl));

        // The same story through the API (one read behind both).
        var listed = (await admin.GetJsonAsync("/api/v1/applications")).EnumerateArray().Single(a => a.GetProperty("name").GetString() == App);
        Assert.Equal("2.0.1 rolled back by carol: checkout errors on 2.0.1", listed.GetProperty("lastRelease").GetProperty("summary").GetString());
        Assert.Equal(0, listed.GetProperty("needsAttention").GetArrayLength());
    }

    [Fact]
    public async Task With_120_applications_search_and_the_needs_attention_filter_find_the_failing_one()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_overview_120"));
        using var admin = server.Api();
        await admin.PublicUrlAsync(App);
        // Each application's slots are reported by a version endpoint (the external deployer); one of them stops answering 200.
        using var slots = new VersionEndpoints(failing: "shop-077");
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
            var now = DateTimeOffset.UtcNow;
            for (var i = 1; i <= 120; i++)
            {
                var name = $"shop-{i:000}";
                var app = Application.Register(name, "embedded", """{"listenPort":0}""", "external",
                    JsonSerializer.Serialize(new { blueUrl = $"{slots.Url}{name}/blue/", greenUrl = $"{slots.Url}{name}/green/" }),
                    [], new ReleasePolicy(), "1.0.0", Slot.Blue, "/", new Actor("e2e", ActorKind.User), now);
                // Brought up earlier (as by a previous start), so the runtime only watches it: no 120 router processes here.
                app.AttachedAt(new Uri($"http://127.0.0.1:1/{name}/"), null, now);
                app.ObserveSlot(Slot.Blue, SlotRunState.Running, "1.0.0", true, "reported 1.0.0", now);
                db.Applications.Add(app);
            }
            await db.SaveChangesAsync(TestContext.Current.CancellationToken);
        }

        await using var browser = await Browser.LaunchAsync();
        var carol = await browser.SignInAsync(server.BaseAddress, "carol", "OnCall");
        await Expect(carol.GetByTestId("app-count")).ToHaveTextAsync("121 of 121");
        // The runtime's watch sees shop-077 stop serving; the overview puts it first without a reload.
        await Expect(carol.Locator("tr.overview-row").First).ToHaveAttributeAsync("data-app", "shop-077", new() { Timeout = 30_000 });
        await Expect(carol.Locator("[data-app=shop-077]").GetByTestId("attention")).ToContainTextAsync("live slot blue (1.0.0) not serving");
        await browser.ScreenshotAsync(carol, "overview-120-applications");

        await carol.GetByTestId("filter-attention").ClickAsync();
        await Expect(carol).ToHaveURLAsync(new Regex("filter=attention"));
        await Expect(carol.Locator("tr.overview-row")).ToHaveCountAsync(1);
        await Expect(carol.Locator("tr.overview-row")).ToHaveAttributeAsync("data-app", "shop-077");
        await browser.ScreenshotAsync(carol, "overview-needs-attention");

        await carol.GotoAsync("/?q=shop-07&sort=name");
        await Expect(carol.GetByTestId("app-count")).ToHaveTextAsync("10 of 121");
        await Expect(carol.Locator("tr.overview-row").First).ToHaveAttributeAsync("data-app", "shop-070");
        await carol.GetByTestId("search").FillAsync("shop-077");
        await Expect(carol).ToHaveURLAsync(new Regex("q=shop-077"));
        await Expect(carol.Locator("tr.overview-row")).ToHaveCountAsync(1);
        await browser.ScreenshotAsync(carol, "overview-search");

        // Compact: 121 rows fit in a few screens, not a column of cards.
        await carol.GotoAsync("/");
        await Expect(carol.GetByTestId("app-count")).ToHaveTextAsync("121 of 121");
        var height = await carol.EvaluateAsync<int>("() => document.documentElement.scrollHeight");
        Assert.True(height < 121 * 80, $"the overview of 121 applications is {height} px tall");
    }

    private static async Task SwitchAsync(HttpClient admin, HttpClient approver, string id)
    {
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        await approver.PostOkAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" });
        await admin.WaitForStateAsync(id, "ReadyToSwitch");
        await admin.PostOkAsync($"/api/v1/deployments/{id}/switch", new { });
        await admin.WaitForStateAsync(id, "Monitoring");
    }

    /// <summary>Slots of many applications as an external pipeline runs them: each answers its version, the failing one 503.</summary>
    private sealed class VersionEndpoints : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly string _failing;

        public VersionEndpoints(string failing)
        {
            _failing = failing;
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                Url = $"http://127.0.0.1:{((IPEndPoint)probe.LocalEndpoint).Port}/";
                probe.Stop();
            }
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        public string Url { get; }

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await _listener.GetContextAsync(); }
                catch (Exception) { return; }
                var failing = context.Request.Url!.AbsolutePath.StartsWith($"/{_failing}/", StringComparison.Ordinal);
                context.Response.StatusCode = failing ? 503 : 200;
                var body = Encoding.UTF8.GetBytes(failing ? "upstream down" : "1.0.0");
                await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }
}
