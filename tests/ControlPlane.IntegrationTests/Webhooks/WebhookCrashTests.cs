using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Webhooks;

/// <summary>kill -9 of ControlPlane between an audited event and its webhook delivery: it is delivered after the restart.</summary>
public sealed class WebhookCrashTests(PostgresFixture postgres)
{
    private const string Secret = "crash-webhook-secret-0123456789";

    [Fact]
    public async Task Killed_before_fan_out_and_again_mid_send_the_event_is_delivered_after_restart_with_one_delivery_id()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("webhookcrash"));
        // First life: nothing is sent, so the kill lands after the audit event (and its outbox row) and before any delivery.
        cp.Environment["ControlPlane__Webhooks__DeliveryEnabled"] = "false";
        await cp.StartAsync();
        const string app = "webhook-crash";
        string id;
        using (var admin = cp.Admin())
        {
            await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 1, allowSelfApproval = true });
            await WebhookDeliveryTests.CreateAsync(admin, new { name = "ci", url = receiver.UrlFor("ci").ToString(), events = new[] { "approval.needed" }, secret = Secret });
            id = (await admin.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
            await admin.WaitForStateAsync(id, "AwaitingApproval");
        }
        await cp.KillHardAsync();
        Assert.Empty(receiver.Received);

        // Second life: the receiver holds the request open, and ControlPlane is killed while it waits for the answer.
        receiver.Answers.Enqueue(0);
        cp.Environment["ControlPlane__Webhooks__DeliveryEnabled"] = "true";
        await cp.StartAsync();
        var first = (await receiver.WaitForAsync(r => r.Count >= 1, "the first attempt after the restart"))[0];
        await cp.KillHardAsync();

        // Third life: the dead process's lease is released and the same delivery arrives again, answered 200 this time.
        await cp.StartAsync();
        var got = await receiver.WaitForAsync(r => r.Count >= 2, "the attempt after the second restart");
        Assert.All(got, r => Assert.Equal(first.Delivery, r.Delivery));
        Assert.All(got, r => Assert.Equal("approval.needed", r.Event));
        Assert.All(got, r => Assert.True(r.SignedWith(Secret)));
        Assert.Equal(id, JsonDocument.Parse(got[^1].Body).RootElement.GetProperty("deployment").GetProperty("id").GetString());

        using var client = cp.Admin();
        var hooks = await client.GetJsonAsync("/api/v1/webhooks");
        var log = await WebhookDeliveryTests.WaitForLogAsync(client, hooks[0].GetProperty("id").GetString()!,
            d => d.GetProperty("status").GetString() == "Delivered");
        Assert.Equal(first.Delivery, log.GetProperty("id").GetString());
        var verify = await client.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("valid").GetBoolean(), verify.ToString());
    }
}
