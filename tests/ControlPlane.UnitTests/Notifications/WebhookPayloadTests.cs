using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Core.Notifications.Webhooks;

namespace ControlPlane.UnitTests.Notifications;

public sealed class WebhookPayloadTests
{
    private static readonly Guid Deployment = Guid.Parse("01a232f2-a1eb-71cc-8a66-f5fc8c983a9a");

    private static WebhookMessage RolledBack(string reason = "check 'home' failed: GET / answered 500 <b>&") => new(
        WebhookEvents.RolledBack, DateTimeOffset.Parse("2026-12-01T10:00:00Z"), "demo-shop", "system", "System", reason,
        Deployment, "2.2.0-fail-monitor", "1.0.0", "RolledBack", $"https://cp.example.com/deployments/{Deployment}", 37,
        "deployment.auto-rolled-back", new string('a', 64));

    [Fact]
    public void Slack_has_text_and_blocks_with_header_fields_and_a_link_button_and_escapes_mrkdwn()
    {
        var slack = WebhookPayloads.Slack(RolledBack());
        Assert.Equal("demo-shop 2.2.0-fail-monitor was rolled back to 1.0.0 <https://cp.example.com/deployments/" + Deployment + "|Open release>",
            slack["text"]!.GetValue<string>());
        var blocks = slack["blocks"]!.AsArray();
        Assert.Equal("header", blocks[0]!["type"]!.GetValue<string>());
        Assert.Equal("plain_text", blocks[0]!["text"]!["type"]!.GetValue<string>());
        var fields = blocks[1]!["fields"]!.AsArray().Select(f => f!["text"]!.GetValue<string>()).ToList();
        Assert.All(blocks[1]!["fields"]!.AsArray(), f => Assert.Equal("mrkdwn", f!["type"]!.GetValue<string>()));
        Assert.Contains("*Application*\ndemo-shop", fields);
        Assert.Contains("*Version*\n2.2.0-fail-monitor", fields);
        Assert.Contains("*Previous version*\n1.0.0", fields);
        Assert.Contains("*Actor*\nsystem", fields);
        Assert.Contains("*Reason*\ncheck 'home' failed: GET / answered 500 &lt;b&gt;&amp;", fields);
        var button = blocks[2]!["elements"]![0]!;
        Assert.Equal("button", button["type"]!.GetValue<string>());
        Assert.Equal($"https://cp.example.com/deployments/{Deployment}", button["url"]!.GetValue<string>());
    }

    [Fact]
    public void Teams_is_a_message_with_one_adaptive_card_with_facts_and_an_open_url_action()
    {
        var teams = WebhookPayloads.Teams(RolledBack());
        Assert.Equal("message", teams["type"]!.GetValue<string>());
        var attachment = Assert.Single(teams["attachments"]!.AsArray())!;
        Assert.Equal("application/vnd.microsoft.card.adaptive", attachment["contentType"]!.GetValue<string>());
        var card = attachment["content"]!;
        Assert.Equal("AdaptiveCard", card["type"]!.GetValue<string>());
        Assert.Equal("http://adaptivecards.io/schemas/adaptive-card.json", card["$schema"]!.GetValue<string>());
        Assert.Equal("TextBlock", card["body"]![0]!["type"]!.GetValue<string>());
        var facts = card["body"]![1]!["facts"]!.AsArray().ToDictionary(f => f!["title"]!.GetValue<string>(), f => f!["value"]!.GetValue<string>());
        Assert.Equal("demo-shop", facts["Application"]);
        Assert.Equal("2.2.0-fail-monitor", facts["Version"]);
        Assert.Equal("1.0.0", facts["Previous version"]);
        Assert.Equal("system", facts["Actor"]);
        Assert.StartsWith("check 'home' failed", facts["Reason"]);
        var action = Assert.Single(card["actions"]!.AsArray())!;
        Assert.Equal("Action.OpenUrl", action["type"]!.GetValue<string>());
        Assert.Equal($"https://cp.example.com/deployments/{Deployment}", action["url"]!.GetValue<string>());
    }

    [Fact]
    public void Json_carries_the_delivery_id_event_release_and_audit_link()
    {
        var delivery = Guid.NewGuid();
        var json = JsonNode.Parse(WebhookPayloads.Render(WebhookFormat.Json, RolledBack(), delivery))!;
        Assert.Equal(delivery.ToString(), json["id"]!.GetValue<string>());
        Assert.Equal("deployment.rolled-back", json["event"]!.GetValue<string>());
        Assert.Equal("1.0.0", json["deployment"]!["fromVersion"]!.GetValue<string>());
        Assert.Equal(37, json["audit"]!["sequence"]!.GetValue<long>());
    }

    [Fact]
    public void The_signature_is_hex_hmac_sha256_of_the_raw_body()
    {
        var body = Encoding.UTF8.GetBytes("{\"event\":\"ping\"}");
        Assert.Equal("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData("s3cret-s3cret-s3cret"u8, body)),
            WebhookPayloads.Sign("s3cret-s3cret-s3cret", body));
        Assert.NotEqual(WebhookPayloads.Sign("s3cret-s3cret-s3cret", body), WebhookPayloads.Sign("another-secret-value", body));
    }

    [Theory]
    [InlineData("deployment.awaiting-approval", "approval.needed")]
    [InlineData("deployment.approval-expired", "approval.needed")]
    [InlineData("deployment.monitoring", "deployment.switched")]
    [InlineData("deployment.auto-rolled-back", "deployment.rolled-back")]
    [InlineData("deployment.switch-failed", "deployment.failed")]
    [InlineData("slot.live-unhealthy", "slot.unhealthy")]
    [InlineData("application.rolled-back", null)] // the deployment's own rolled-back event carries it; one message, not two
    [InlineData("deployment.approved", null)]
    public void Audit_actions_map_to_webhook_events(string action, string? expected) =>
        Assert.Equal(expected, WebhookEvents.ForAuditAction(action));

    [Fact]
    public void Backoff_doubles_up_to_the_cap_and_allowed_hosts_match_exact_names_and_subdomains()
    {
        var options = new WebhookOptions { FirstRetryDelay = TimeSpan.FromSeconds(5), MaxRetryDelay = TimeSpan.FromSeconds(30), AllowedHosts = ["hooks.slack.com", "*.example.com"] };
        Assert.Equal([5, 10, 20, 30, 30], Enumerable.Range(1, 5).Select(a => options.RetryDelay(a).TotalSeconds));
        Assert.True(options.AllowsHost("HOOKS.slack.com"));
        Assert.True(options.AllowsHost("ci.example.com"));
        Assert.False(options.AllowsHost("example.com.evil.net"));
        Assert.False(options.AllowsHost("evilexample.com"));
        Assert.False(options.AllowsHost("169.254.169.254"));
    }
}
