using System.Net;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Api;

public sealed class HoldWindowTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task After_the_hold_window_the_old_slot_is_stopped_and_rollback_says_why()
    {
        using var admin = _factory.Admin();
        const string app = "short-hold";
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app,
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 2 });

        // No approval required and switch-on-approval: the release runs to the end by itself.
        var id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        var done = await admin.WaitForStateAsync(id, "Succeeded");
        Assert.Equal("Skipped", done.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "approval").GetProperty("state").GetString());
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var warm = await admin.GetJsonAsync($"/api/v1/applications/{app}");
        Assert.Equal(JsonValueKind.String, warm.GetProperty("rollbackAvailableUntil").ValueKind);
        Assert.Single(ControlPlaneProcess.SlotProcesses(app), p => p.Slot == "blue");

        // Housekeeping runs every 5 s; the 2 s hold window is over by the next round.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement stopped;
        do
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            stopped = await admin.GetJsonAsync($"/api/v1/applications/{app}");
        } while (stopped.GetProperty("slots").GetProperty("blue").GetProperty("state").GetString() != "Stopped" && DateTime.UtcNow < deadline);
        Assert.Equal("Stopped", stopped.GetProperty("slots").GetProperty("blue").GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, stopped.GetProperty("rollbackAvailableUntil").ValueKind);
        Assert.DoesNotContain(ControlPlaneProcess.SlotProcesses(app), p => p.Slot == "blue");

        var rollback = await admin.PostJsonAsync($"/api/v1/applications/{app}/rollback", new { reason = "too late" });
        Assert.Equal(HttpStatusCode.Conflict, rollback.StatusCode);
        var problem = await rollback.JsonAsync();
        Assert.Contains("Start a new release of 1.0.0", problem.GetProperty("detail").GetString());
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));

        var audit = await admin.GetJsonAsync($"/api/v1/audit?application={app}&action=slot.stopped");
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), e => e.GetProperty("reason").GetString() == "hold window ended");
    }

    [Fact]
    public async Task Healthz_and_the_OpenAPI_document_are_served()
    {
        using var anonymous = _factory.ClientWithToken(null);
        Assert.Equal("ok", (await anonymous.GetJsonAsync("/healthz")).GetProperty("status").GetString());
        var openApi = await anonymous.GetJsonAsync("/openapi/v1.json");
        var paths = openApi.GetProperty("paths");
        foreach (var path in new[] { "/api/v1/applications", "/api/v1/applications/{name}/deployments", "/api/v1/deployments/{id}/approve",
                     "/api/v1/applications/{name}/rollback", "/api/v1/audit", "/api/v1/audit/export", "/api/v1/audit/verify", "/api/v1/tokens" })
            Assert.True(paths.TryGetProperty(path, out _), $"OpenAPI lacks {path}");
    }
}
