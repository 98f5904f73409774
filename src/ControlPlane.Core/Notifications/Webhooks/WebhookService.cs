using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Notifications.Webhooks;

/// <summary>What an Admin asks for; every field nullable so a missing one gets a message naming it.</summary>
public sealed record WebhookSpec(string? Name, string? Url, List<string>? Events, string? Application, string? Secret, string? Format);

/// <summary>Creating, deleting, testing and redelivering webhooks — each audited in the same transaction.</summary>
public sealed class WebhookService(ControlPlaneDbContext db, IDataProtectionProvider protection, IOptions<WebhookOptions> options, TimeProvider time)
{
    public const string ProtectorPurpose = "ControlPlane.Webhooks.v1";
    public const int MinSecretLength = 16;

    public IDataProtector Protector => protection.CreateProtector(ProtectorPurpose);

    public async Task<WebhookSubscription> CreateAsync(WebhookSpec spec, Actor by, CancellationToken cancellationToken)
    {
        var errors = new List<SettingsError>();
        var name = spec.Name?.Trim();
        if (string.IsNullOrEmpty(name)) errors.Add(new("name", "is required."));
        else if (name.Length > 100) errors.Add(new("name", "must be at most 100 characters."));
        var url = ValidateUrl(spec.Url, options.Value, errors);
        if (spec.Events is null || spec.Events.Count == 0)
            errors.Add(new("events", $"is required: a list of {string.Join(", ", WebhookEvents.Subscribable)}, or [\"*\"] for all."));
        else
            for (var i = 0; i < spec.Events.Count; i++)
                if (spec.Events[i] != WebhookEvents.All && !WebhookEvents.Subscribable.Contains(spec.Events[i]))
                    errors.Add(new($"events[{i}]", $"'{spec.Events[i]}' is not an event; known: {string.Join(", ", WebhookEvents.Subscribable)} or \"*\"."));
        if (string.IsNullOrEmpty(spec.Secret))
            errors.Add(new("secret", "is required: receivers check the X-ControlPlane-Signature HMAC with it."));
        else if (spec.Secret.Length < MinSecretLength || spec.Secret.Length > 512)
            errors.Add(new("secret", $"must be {MinSecretLength} to 512 characters."));
        var format = WebhookFormat.Json;
        if (spec.Format is not null && (spec.Format.Any(char.IsDigit) || !Enum.TryParse(spec.Format, ignoreCase: true, out format)))
            errors.Add(new("format", "must be \"json\", \"slack\" or \"teams\"."));
        if (spec.Application is { } app && !await db.Applications.AnyAsync(a => a.Name == app, cancellationToken))
            errors.Add(new("application", $"'{app}' is not a registered application."));
        if (errors.Count == 0 && await db.Set<WebhookSubscription>().AnyAsync(s => s.Name == name, cancellationToken))
            throw DomainException.Conflict($"A webhook named '{name}' already exists.");
        if (errors.Count > 0) throw new ValidationException(errors);

        var now = time.GetUtcNow();
        var protector = Protector;
        var webhook = new WebhookSubscription
        {
            Id = Guid.CreateVersion7(now),
            Name = name!,
            DisplayUrl = Display(url!),
            ProtectedUrl = protector.Protect(url!.AbsoluteUri),
            ProtectedSecret = protector.Protect(spec.Secret!),
            Events = spec.Events!.Contains(WebhookEvents.All) ? [WebhookEvents.All] : [.. spec.Events!.Distinct()],
            Application = spec.Application,
            Format = format,
            CreatedBy = by.Name,
            CreatedAt = now,
        };
        db.Add(webhook);
        db.Record(AuditEvent.Create(by, "webhook.created", now, webhook.Application, after: $"{webhook.Name} → {webhook.DisplayUrl}",
            details: JsonSerializer.Serialize(new { webhook.Id, events = webhook.Events, format = webhook.Format.ToString().ToLowerInvariant() })));
        await db.SaveChangesAsync(cancellationToken);
        return webhook;
    }

    public async Task DeleteAsync(Guid id, Actor by, CancellationToken cancellationToken)
    {
        var webhook = await FindAsync(id, cancellationToken);
        db.Remove(webhook);
        db.Record(AuditEvent.Create(by, "webhook.deleted", time.GetUtcNow(), webhook.Application, before: $"{webhook.Name} → {webhook.DisplayUrl}",
            details: JsonSerializer.Serialize(new { webhook.Id })));
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>Queues a <c>ping</c> through the same durable path as real events.</summary>
    public async Task<WebhookDelivery> SendTestAsync(Guid id, Actor by, CancellationToken cancellationToken)
    {
        var webhook = await FindAsync(id, cancellationToken);
        var now = time.GetUtcNow();
        var message = new WebhookMessage(WebhookEvents.Ping, now, webhook.Application, by.Name, by.Kind.ToString(),
            $"Test of webhook '{webhook.Name}'", null, null, null, null, null, null, null, null);
        var delivery = NewDelivery(webhook, message, null, now, options.Value);
        db.Add(delivery);
        db.Record(AuditEvent.Create(by, "webhook.tested", now, webhook.Application, after: webhook.Name,
            details: JsonSerializer.Serialize(new { webhook.Id, delivery = delivery.Id })));
        await db.SaveChangesAsync(cancellationToken);
        return delivery;
    }

    /// <summary>Sends a delivery again with the same id and body (receivers that already have it drop it), retrying as new.</summary>
    public async Task<WebhookDelivery> RedeliverAsync(Guid deliveryId, Actor by, CancellationToken cancellationToken)
    {
        var delivery = await db.Set<WebhookDelivery>().SingleOrDefaultAsync(d => d.Id == deliveryId, cancellationToken)
                       ?? throw DomainException.NotFound($"There is no webhook delivery {deliveryId}.");
        var webhook = await FindAsync(delivery.SubscriptionId, cancellationToken);
        if (delivery.Status == WebhookDeliveryStatus.Pending && delivery.LeaseExpiresAt > time.GetUtcNow())
            throw DomainException.Conflict($"Delivery {deliveryId} is being sent right now.");
        var now = time.GetUtcNow();
        delivery.Status = WebhookDeliveryStatus.Pending;
        delivery.NextAttemptAt = now;
        delivery.GiveUpAt = now + options.Value.RetryFor;
        db.Record(AuditEvent.Create(by, "webhook.redelivered", now, webhook.Application, after: webhook.Name,
            details: JsonSerializer.Serialize(new { webhook.Id, delivery = delivery.Id, delivery.EventType })));
        await db.SaveChangesAsync(cancellationToken);
        return delivery;
    }

    public async Task<WebhookSubscription> FindAsync(Guid id, CancellationToken cancellationToken) =>
        await db.Set<WebhookSubscription>().SingleOrDefaultAsync(s => s.Id == id, cancellationToken)
        ?? throw DomainException.NotFound($"There is no webhook {id}.");

    internal static WebhookDelivery NewDelivery(WebhookSubscription webhook, WebhookMessage message, long? auditSequence, DateTimeOffset now, WebhookOptions options)
    {
        var id = Guid.CreateVersion7(now);
        return new WebhookDelivery
        {
            Id = id,
            SubscriptionId = webhook.Id,
            AuditSequence = auditSequence,
            EventType = message.Event,
            Body = WebhookPayloads.Render(webhook.Format, message, id),
            Status = WebhookDeliveryStatus.Pending,
            CreatedAt = now,
            NextAttemptAt = now,
            GiveUpAt = now + options.RetryFor,
        };
    }

    /// <summary>An absolute http(s) URL without user info, to an allowed host; null (with the error) otherwise.</summary>
    public static Uri? ValidateUrl(string? text, WebhookOptions options, List<SettingsError> errors)
    {
        if (string.IsNullOrWhiteSpace(text)) { errors.Add(new("url", "is required.")); return null; }
        if (text.Length > 2048) { errors.Add(new("url", "must be at most 2048 characters.")); return null; }
        if (!Uri.TryCreate(text.Trim(), UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            errors.Add(new("url", "must be an absolute http:// or https:// URL."));
            return null;
        }
        if (url.UserInfo.Length > 0) { errors.Add(new("url", "must not carry a user name or password; use the secret.")); return null; }
        if (!options.AllowsHost(url.IdnHost))
        {
            errors.Add(new("url", $"names host '{url.IdnHost}', which is not in ControlPlane:Webhooks:AllowedHosts."));
            return null;
        }
        return url;
    }

    /// <summary>Scheme, host and port only: the path of a Slack or Teams URL is the credential.</summary>
    public static string Display(Uri url) => url.GetLeftPart(UriPartial.Authority) + (url.AbsolutePath.Length > 1 || url.Query.Length > 0 ? "/…" : "/");
}
