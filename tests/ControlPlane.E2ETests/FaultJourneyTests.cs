using System.Net;
using System.Net.Sockets;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Issue 14: faults in words. A router that cannot listen shows on the overview and in /healthz, and clears itself.</summary>
public sealed class FaultJourneyTests(PostgresFixture postgres)
{
    [Fact]
    public async Task A_port_conflict_shows_on_the_overview_and_in_healthz_until_the_port_is_free()
    {
        // Something else already listens on the demo router's port.
        var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        try
        {
            await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_port_conflict"),
                new Dictionary<string, string?> { ["ControlPlane:Demo:RouterPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await using var browser = await Browser.LaunchAsync();
            var carol = await browser.SignInAsync(server.BaseAddress, "carol", "OnCall");
            var row = carol.Locator("[data-app=demo-shop]");
            await Expect(row.GetByTestId("attention")).ToContainTextAsync($"cannot listen on 127.0.0.1:{port}", new() { Timeout = 60_000 });
            await browser.ScreenshotAsync(carol, "overview-port-conflict");

            using var anonymous = server.Api(token: null);
            var health = await anonymous.GetAsync("/healthz", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Contains($"demo-shop: The embedded router for demo-shop cannot listen on 127.0.0.1:{port}", await health.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));

            // The port comes free: the next housekeeping round brings the router up, and the overview clears without a reload.
            squatter.Stop();
            await Expect(row.GetByTestId("attention")).ToHaveCountAsync(0, new() { Timeout = 60_000 });
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz", TestContext.Current.CancellationToken)).StatusCode);
            await browser.ScreenshotAsync(carol, "overview-port-conflict-resolved");
        }
        finally
        {
            squatter.Stop();
        }
    }
}
