using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Journey 4 of issue 3: two ControlPlane instances on one database show the same truth, live.</summary>
public sealed class ReplicaJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";

    [Fact]
    public async Task A_change_made_through_one_instance_appears_live_in_a_browser_on_the_other()
    {
        var database = await postgres.CreateDatabaseAsync("e2e_replicas");
        await using var primary = DashboardServer.Start(database);
        using var admin = primary.Api();
        await admin.PublicUrlAsync(App);
        await using var replica = DashboardServer.Replica(database);
        Assert.NotEqual(primary.BaseAddress, replica.BaseAddress);

        await using var browser = await Browser.LaunchAsync();
        var onReplica = await browser.SignInAsync(replica.BaseAddress, "oscar", "OnCall");
        var onPrimary = await browser.SignInAsync(primary.BaseAddress, "rita", "ReleaseManager");
        var cardOnReplica = onReplica.Locator($"[data-app={App}]");
        await Expect(cardOnReplica).ToContainTextAsync("live 1.0.0");
        await Expect(cardOnReplica.Locator("[data-field=in-flight]")).ToHaveCountAsync(0);

        // Through the primary: a release starts; the replica's browser shows it without reloading.
        var id = await admin.StartReleaseAsync(App, "2.0.0", "replica check");
        await Expect(cardOnReplica.GetByTestId("in-flight-state")).ToHaveTextAsync("AwaitingApproval", new() { Timeout = 60_000 });
        await browser.ScreenshotAsync(onReplica, "replica-overview");

        // Through the replica: on-call aborts it; the primary's browser shows it without reloading.
        await onPrimary.GotoAsync($"/deployments/{id}");
        await Expect(onPrimary.GetByTestId("deployment-state")).ToHaveTextAsync("AwaitingApproval");
        await onReplica.GotoAsync($"/deployments/{id}");
        await onReplica.GetByTestId("abort-button").ClickAsync();
        var dialog = onReplica.GetByRole(Microsoft.Playwright.AriaRole.Dialog);
        await dialog.GetByLabel("Reason").FillAsync("aborted from the other replica");
        await dialog.GetByRole(Microsoft.Playwright.AriaRole.Button, new() { Name = "Abort release" }).ClickAsync();

        await Expect(onPrimary.GetByTestId("deployment-state")).ToHaveTextAsync("Aborted");
        await Expect(onPrimary.GetByTestId("outcome")).ToContainTextAsync("Aborted by oscar: aborted from the other replica");
        await browser.ScreenshotAsync(onPrimary, "primary-sees-abort");
    }
}
