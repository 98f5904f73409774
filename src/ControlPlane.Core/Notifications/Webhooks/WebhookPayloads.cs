using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Core.Notifications.Webhooks;

/// <summary>What happened, independent of the format it is sent in.</summary>
public sealed record WebhookMessage(
    string Event, DateTimeOffset OccurredAt, string? Application, string Actor, string ActorKind, string? Reason,
    Guid? DeploymentId, string? Version, string? FromVersion, string? State, string? ReleaseUrl,
    long? AuditSequence, string? AuditAction, string? AuditHash)
{
    public string Summary => Event switch
    {
        WebhookEvents.ApprovalNeeded => $"{Application} {Version} needs approval (live: {FromVersion ?? "none"})",
        WebhookEvents.Switched => $"{Application} switched to {Version} (from {FromVersion ?? "none"})",
        WebhookEvents.RolledBack => $"{Application} {Version} was rolled back to {FromVersion ?? "the previous slot"}",
        WebhookEvents.Failed => $"{Application} {Version} failed",
        WebhookEvents.Succeeded => $"{Application} {Version} succeeded",
        WebhookEvents.Aborted => $"{Application} {Version} was aborted",
        WebhookEvents.FreezeOverridden => $"Freeze overridden for {Application} {Version}",
        WebhookEvents.SlotUnhealthy => $"{Application}: the live slot is unhealthy",
        WebhookEvents.Ping => "Test delivery from ControlPlane",
        _ => $"{Application}: {Event}",
    };
}

/// <summary>The three body formats and the signature.</summary>
public static class WebhookPayloads
{
    public const string SignatureHeader = "X-ControlPlane-Signature";
    public const string DeliveryHeader = "X-ControlPlane-Delivery";
    public const string EventHeader = "X-ControlPlane-Event";

    /// <summary><c>sha256=</c> and the lowercase hex HMAC-SHA256 of exactly the bytes sent, keyed with the UTF-8 secret.</summary>
    public static string Sign(string secret, byte[] body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    public static string Render(WebhookFormat format, WebhookMessage m, Guid deliveryId) => format switch
    {
        WebhookFormat.Slack => Slack(m).ToJsonString(),
        WebhookFormat.Teams => Teams(m).ToJsonString(),
        _ => Json(m, deliveryId).ToJsonString(),
    };

    public static JsonObject Json(WebhookMessage m, Guid deliveryId) => new()
    {
        ["id"] = deliveryId,
        ["event"] = m.Event,
        ["occurredAt"] = m.OccurredAt,
        ["summary"] = m.Summary,
        ["application"] = m.Application,
        ["actor"] = new JsonObject { ["name"] = m.Actor, ["kind"] = m.ActorKind },
        ["reason"] = m.Reason,
        ["deployment"] = m.DeploymentId is null ? null : new JsonObject
        {
            ["id"] = m.DeploymentId, ["version"] = m.Version, ["fromVersion"] = m.FromVersion, ["state"] = m.State, ["url"] = m.ReleaseUrl,
        },
        ["audit"] = m.AuditSequence is null ? null : new JsonObject
        {
            ["sequence"] = m.AuditSequence, ["action"] = m.AuditAction, ["hash"] = m.AuditHash,
        },
    };

    private static IEnumerable<(string Name, string Value)> Facts(WebhookMessage m)
    {
        if (m.Application is not null) yield return ("Application", m.Application);
        if (m.Version is not null) yield return ("Version", m.Version);
        if (m.DeploymentId is not null) yield return ("Previous version", m.FromVersion ?? "none");
        if (m.State is not null) yield return ("State", m.State);
        yield return ("Actor", m.Actor);
        if (!string.IsNullOrWhiteSpace(m.Reason)) yield return ("Reason", m.Reason);
    }

    /// <summary>
    /// Slack incoming webhook: <c>text</c> (the notification and fallback) plus <c>blocks</c> — a header, a section of
    /// fields, and a link button (https://api.slack.com/messaging/webhooks, Block Kit). mrkdwn needs &amp;, &lt;, &gt; escaped.
    /// </summary>
    public static JsonObject Slack(WebhookMessage m)
    {
        var blocks = new JsonArray
        {
            new JsonObject { ["type"] = "header", ["text"] = PlainText(Truncate(m.Summary, 150)) },
            new JsonObject
            {
                ["type"] = "section",
                ["fields"] = new JsonArray([.. Facts(m).Take(10).Select(f => (JsonNode)new JsonObject
                {
                    ["type"] = "mrkdwn", ["text"] = Truncate($"*{f.Name}*\n{SlackEscape(f.Value)}", 2000),
                })]),
            },
        };
        if (m.ReleaseUrl is not null)
            blocks.Add(new JsonObject
            {
                ["type"] = "actions",
                ["elements"] = new JsonArray(new JsonObject { ["type"] = "button", ["text"] = PlainText("Open release"), ["url"] = m.ReleaseUrl }),
            });
        var text = SlackEscape(m.Summary) + (m.ReleaseUrl is null ? "" : $" <{m.ReleaseUrl}|Open release>");
        return new JsonObject { ["text"] = text, ["blocks"] = blocks };
    }

    /// <summary>
    /// Microsoft Teams (Workflows "post to a channel when a webhook request is received", and incoming webhooks): a message
    /// with one Adaptive Card attachment — a title TextBlock, a FactSet, and an Action.OpenUrl to the release.
    /// </summary>
    public static JsonObject Teams(WebhookMessage m)
    {
        var card = new JsonObject
        {
            ["$schema"] = "http://adaptivecards.io/schemas/adaptive-card.json",
            ["type"] = "AdaptiveCard",
            ["version"] = "1.4",
            ["body"] = new JsonArray(
                new JsonObject { ["type"] = "TextBlock", ["text"] = m.Summary, ["weight"] = "Bolder", ["size"] = "Medium", ["wrap"] = true },
                new JsonObject
                {
                    ["type"] = "FactSet",
                    ["facts"] = new JsonArray([.. Facts(m).Select(f => (JsonNode)new JsonObject { ["title"] = f.Name, ["value"] = f.Value })]),
                }),
        };
        if (m.ReleaseUrl is not null)
            card["actions"] = new JsonArray(new JsonObject { ["type"] = "Action.OpenUrl", ["title"] = "Open release", ["url"] = m.ReleaseUrl });
        return new JsonObject
        {
            ["type"] = "message",
            ["attachments"] = new JsonArray(new JsonObject
            {
                ["contentType"] = "application/vnd.microsoft.card.adaptive",
                ["contentUrl"] = null,
                ["content"] = card,
            }),
        };
    }

    private static JsonObject PlainText(string text) => new() { ["type"] = "plain_text", ["text"] = text };

    private static string SlackEscape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";
}
