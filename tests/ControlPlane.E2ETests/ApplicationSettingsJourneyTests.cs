using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using ControlPlane.E2ETests.Infrastructure;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.E2ETests;

/// <summary>Issue 14: applications you can change from the UI, and the controls a release manager expects on the release page.</summary>
public sealed class ApplicationSettingsJourneyTests(PostgresFixture postgres)
{
    private const string App = "demo-shop";

    [Fact]
    public async Task Admin_edits_a_policy_sees_field_errors_inline_a_concurrent_edit_as_a_conflict_and_the_audit_diff()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_app_settings"));
        using var api = server.Api();
        await api.PublicUrlAsync(App);
        await using var browser = await Browser.LaunchAsync();

        // Other roles see no edit or archive control (and the commands refuse them anyway).
        var rita = await browser.SignInAsync(server.BaseAddress, "rita", "ReleaseManager");
        await rita.GotoAsync($"/applications/{App}");
        await Expect(rita.GetByTestId("switch-plan")).ToBeVisibleAsync();
        await Expect(rita.GetByTestId("edit-application")).ToHaveCountAsync(0);
        await Expect(rita.GetByTestId("archive-application")).ToHaveCountAsync(0);

        var adam = await browser.SignInAsync(server.BaseAddress, "adam", "Admin");
        await adam.GotoAsync($"/applications/{App}");
        await adam.GetByTestId("edit-application").ClickAsync();
        var form = adam.GetByTestId("edit-panel");
        var hold = form.GetByLabel("Hold window (s)");
        await Expect(hold).ToHaveValueAsync("600");

        // A bad value: the server's rule (the registration's) answers next to the field, and nothing is saved.
        await hold.FillAsync("-5");
        await form.GetByTestId("save-application").ClickAsync();
        await Expect(form.GetByTestId("policy-section")).ToContainTextAsync("must be between 0 and 604800");
        await browser.ScreenshotAsync(adam, "field-error-inline");
        Assert.Equal(600, (await api.GetJsonAsync($"/api/v1/applications/{App}")).GetProperty("policy").GetProperty("holdWindowSeconds").GetInt32());

        // Someone else edits meanwhile (through the API): the save is refused as a conflict, not a silent overwrite.
        await EditThroughApiAsync(server, "monitoringIntervalSeconds", 3);
        await hold.FillAsync("1200");
        await form.GetByTestId("save-application").ClickAsync();
        await Expect(form.GetByTestId("form-conflict")).ToContainTextAsync("was changed by someone else since you read it");
        Assert.Equal(600, (await api.GetJsonAsync($"/api/v1/applications/{App}")).GetProperty("policy").GetProperty("holdWindowSeconds").GetInt32());

        // Load what is there now, make the change again, and see what the audit trail recorded.
        await form.GetByTestId("form-reload").ClickAsync();
        await Expect(form.GetByLabel("Monitoring interval (s)")).ToHaveValueAsync("3");
        await hold.FillAsync("1200");
        await form.GetByLabel("Reason for the change (optional, audited)").FillAsync("longer warm window for the sale weekend");
        await form.GetByTestId("save-application").ClickAsync();
        var diff = adam.GetByTestId("edit-diff");
        await Expect(diff).ToContainTextAsync("application.edited by adam");
        var row = diff.GetByTestId("edit-diff-row");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToContainTextAsync("policy.holdWindowSeconds");
        await Expect(row.GetByTestId("edit-diff-before")).ToHaveTextAsync("600");
        await Expect(row.GetByTestId("edit-diff-after")).ToHaveTextAsync("1200");
        await Expect(adam.GetByTestId("edit-panel")).ToHaveCountAsync(0);
        await browser.ScreenshotAsync(adam, "audit-diff-after-edit");
        Assert.Equal(1200, (await api.GetJsonAsync($"/api/v1/applications/{App}")).GetProperty("policy").GetProperty("holdWindowSeconds").GetInt32());

        await diff.GetByTestId("edit-audit-link").ClickAsync();
        await Expect(adam.GetByTestId("audit-drawer")).ToBeVisibleAsync();
        await Expect(adam.GetByTestId("drawer-reason")).ToHaveTextAsync("longer warm window for the sale weekend");
        await browser.ScreenshotAsync(adam, "audit-entry-of-the-edit");

        // Register from the UI (same form, same rules): an external deployer reading the demo's own slots.
        var demo = (await api.GetJsonAsync($"/api/v1/applications/{App}")).GetProperty("deployer").GetProperty("settings");
        var (bluePort, greenPort) = (demo.GetProperty("bluePort").GetInt32(), demo.GetProperty("greenPort").GetInt32());
        await adam.GotoAsync("/admin/applications/new");
        var register = adam.GetByTestId("application-form");
        await register.GetByLabel("Name").FillAsync("Catalog");
        await register.GetByTestId("field-deployer-kind").ClickAsync();
        await adam.Locator(".mud-popover-open").GetByText("external", new() { Exact = true }).ClickAsync();
        await register.GetByLabel("Deployer settings (JSON object)").FillAsync(
            $$"""{"blueUrl": "http://127.0.0.1:{{bluePort}}/", "greenUrl": "http://127.0.0.1:{{greenPort}}/", "versionPath": "/", "colour": "red"}""");
        await register.GetByLabel("Router settings (JSON object)").FillAsync("""{"listenAddress": "127.0.0.1", "listenPort": 0}""");
        await register.GetByTestId("save-application").ClickAsync();
        await Expect(register.GetByTestId("field-name")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(register).ToContainTextAsync("must be a DNS label");
        await Expect(register).ToContainTextAsync("colour: is not a setting of the external deployer");
        await browser.ScreenshotAsync(adam, "register-field-errors");
        await register.GetByLabel("Name").FillAsync("catalog");
        await register.GetByLabel("Deployer settings (JSON object)").FillAsync(
            $$"""{"blueUrl": "http://127.0.0.1:{{bluePort}}/", "greenUrl": "http://127.0.0.1:{{greenPort}}/", "versionPath": "/"}""");
        await register.GetByTestId("save-application").ClickAsync();
        await Expect(adam).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/applications/catalog$"));
        var catalogUrl = await api.PublicUrlAsync("catalog");
        Assert.Equal("1.0.0", await Api.PublicVersionAsync(catalogUrl));

        // Archive: the dialog names what stops and what is kept.
        await adam.GotoAsync("/applications/catalog");
        await adam.GetByTestId("archive-application").ClickAsync();
        var archive = adam.GetByRole(AriaRole.Dialog);
        await Expect(archive.GetByTestId("consequence")).ToContainTextAsync("Archiving stops slot blue (1.0.0, external), the embedded router at " + catalogUrl);
        await Expect(archive.GetByTestId("consequence")).ToContainTextAsync("Its releases, history and audit trail are kept");
        await browser.ScreenshotAsync(adam, "archive-dialog");
        await archive.GetByLabel("Reason").FillAsync("catalog moves into shop");
        await archive.GetByRole(AriaRole.Button, new() { Name = "Archive catalog" }).ClickAsync();
        await Expect(adam).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/$"));
        var archived = await api.GetJsonAsync("/api/v1/applications/catalog");
        Assert.Equal(System.Text.Json.JsonValueKind.String, archived.GetProperty("archivedAt").ValueKind);
    }

    [Fact]
    public async Task Release_manager_finishes_monitoring_early_extends_the_hold_and_decommissions_the_previous_slot()
    {
        await using var server = DashboardServer.Start(await postgres.CreateDatabaseAsync("e2e_rm_controls"));
        using var admin = server.Api();
        using var approver = await server.ApiAsAsync("bob", "ReleaseManager");
        var publicUrl = await admin.PublicUrlAsync(App);
        await using var browser = await Browser.LaunchAsync();
        var alice = await browser.SignInAsync(server.BaseAddress, "alice", "ReleaseManager");

        var id = await admin.StartReleaseAsync(App, "2.0.0", "controls journey");
        await admin.WaitForStateAsync(id, "AwaitingApproval");
        await approver.PostOkAsync($"/api/v1/deployments/{id}/approve", new { comment = "ok" });
        await admin.WaitForStateAsync(id, "ReadyToSwitch");
        await admin.PostOkAsync($"/api/v1/deployments/{id}/switch", new { });
        await alice.GotoAsync($"/deployments/{id}");
        await Expect(alice.GetByTestId("deployment-state")).ToHaveTextAsync("Monitoring", new() { Timeout = 30_000 });
        await Expect(alice.GetByTestId("decommission-previous")).ToHaveCountAsync(0);

        await alice.GetByTestId("finish-monitoring").ClickAsync();
        var dialog = alice.GetByRole(AriaRole.Dialog);
        await Expect(dialog.GetByTestId("consequence")).ToContainTextAsync("nothing rolls back automatically on a failing check any more");
        await dialog.GetByLabel("Reason").FillAsync("dashboards clean");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Finish monitoring" }).ClickAsync();
        await Expect(alice.GetByTestId("deployment-state")).ToHaveTextAsync("Succeeded", new() { Timeout = 30_000 });
        await Expect(alice.GetByTestId("outcome")).ToContainTextAsync("Monitoring ended early by alice");

        var before = (await admin.GetJsonAsync($"/api/v1/applications/{App}")).GetProperty("rollbackAvailableUntil").GetDateTimeOffset();
        await alice.GetByTestId("extend-hold").ClickAsync();
        dialog = alice.GetByRole(AriaRole.Dialog);
        await Expect(dialog.GetByTestId("consequence")).ToContainTextAsync("blue 1.0.0 stays warm");
        await dialog.GetByLabel("Reason").FillAsync("batch job tonight");
        await browser.ScreenshotAsync(alice, "extend-hold-dialog");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Extend hold" }).ClickAsync();
        await Expect(dialog).ToHaveCountAsync(0);
        var after = before;
        for (var i = 0; i < 50 && after == before; i++)
        {
            await Task.Delay(200, TestContext.Current.CancellationToken);
            after = (await admin.GetJsonAsync($"/api/v1/applications/{App}")).GetProperty("rollbackAvailableUntil").GetDateTimeOffset();
        }
        Assert.Equal(before + TimeSpan.FromHours(1), after);

        await alice.GetByTestId("decommission-previous").ClickAsync();
        dialog = alice.GetByRole(AriaRole.Dialog);
        await Expect(dialog.GetByTestId("consequence")).ToContainTextAsync("This ends the warm rollback");
        await dialog.GetByLabel("Reason").FillAsync("2.0.0 is good");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Decommission now" }).ClickAsync();
        await Expect(alice.GetByTestId("rollback-button")).ToHaveCountAsync(0);
        await Expect(alice.GetByTestId("extend-hold")).ToHaveCountAsync(0);
        await browser.ScreenshotAsync(alice, "after-decommission");
        Assert.Equal("2.0.0", await Api.PublicVersionAsync(publicUrl));
        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={App}&deploymentId={id}&action=deployment.previous-slot-decommissioned");
        Assert.Equal("alice", Assert.Single(audit.GetProperty("items").EnumerateArray()).GetProperty("actor").GetString());
    }

    private static async Task EditThroughApiAsync(DashboardServer server, string policyField, int value)
    {
        using var api = server.Api();
        var response = await api.GetAsync($"/api/v1/applications/{App}", TestContext.Current.CancellationToken);
        var etag = response.Headers.ETag!.Tag;
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!.AsObject();
        body["policy"]![policyField] = value;
        var edit = new JsonObject
        {
            ["router"] = body["router"]!.DeepClone(), ["deployer"] = body["deployer"]!.DeepClone(), ["checks"] = body["checks"]!.DeepClone(),
            ["policy"] = body["policy"]!.DeepClone(), ["verifyPath"] = body["verifyPath"]!.DeepClone(), ["hooks"] = body["hooks"]?.DeepClone(),
        };
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/applications/{App}") { Content = JsonContent.Create(edit) };
        request.Headers.IfMatch.Add(new(etag));
        var put = await api.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }
}
