using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace ControlPlane.Core.Notifications.Webhooks;

public enum WebhookFormat { Json, Slack, Teams }

public enum WebhookDeliveryStatus { Pending, Delivered, Failed }

/// <summary>
/// Where to send which events. The target URL and the signing secret are stored encrypted with Data Protection (a Slack or
/// Teams URL is itself a credential) and never shown again; <see cref="DisplayUrl"/> is what lists show.
/// </summary>
public sealed class WebhookSubscription
{
    public Guid Id { get; set; }
    public string Name { get; set; } = "";
    public string DisplayUrl { get; set; } = "";
    public string ProtectedUrl { get; set; } = "";
    public string ProtectedSecret { get; set; } = "";
    public List<string> Events { get; set; } = [];
    public string? Application { get; set; }
    public WebhookFormat Format { get; set; }
    public string CreatedBy { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }

    public bool Wants(string eventType, string? application) =>
        (Events.Contains(WebhookEvents.All) || Events.Contains(eventType))
        && (Application is null || Application == application);
}

/// <summary>
/// "Audit event <see cref="AuditSequence"/> is a webhook event": written by the audited save itself, in the same
/// transaction as the audit event, and fanned out into <see cref="WebhookDelivery"/> rows by the delivery worker.
/// </summary>
public sealed class WebhookOutboxMessage
{
    public long AuditSequence { get; set; }
    public string EventType { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>One event for one subscription: its exact body (so every retry sends the same bytes), attempts and outcome.</summary>
public sealed class WebhookDelivery
{
    /// <summary>Sent as <c>X-ControlPlane-Delivery</c>: the same on every retry and redelivery, so receivers can drop repeats.</summary>
    public Guid Id { get; set; }
    public Guid SubscriptionId { get; set; }
    public long? AuditSequence { get; set; }
    public string EventType { get; set; } = "";
    public string Body { get; set; } = "";
    public WebhookDeliveryStatus Status { get; set; }
    public int Attempts { get; set; }
    public int? LastStatusCode { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastAttemptAt { get; set; }
    public DateTimeOffset? NextAttemptAt { get; set; }
    public DateTimeOffset GiveUpAt { get; set; }
    public DateTimeOffset? DeliveredAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseExpiresAt { get; set; }
}

public static class WebhookModel
{
    /// <summary>The three webhook tables; called from <c>ControlPlaneDbContext.OnModelCreating</c> (before its snake_case pass).</summary>
    public static void Map(ModelBuilder b)
    {
        var json = JsonSerializerOptions.Web;
        b.Entity<WebhookSubscription>(e =>
        {
            e.ToTable("webhook_subscriptions");
            e.HasKey(s => s.Id);
            e.Property(s => s.Id).ValueGeneratedNever();
            e.Property(s => s.Name).HasMaxLength(100);
            e.HasIndex(s => s.Name).IsUnique();
            e.Property(s => s.DisplayUrl).HasMaxLength(300);
            e.Property(s => s.Application).HasMaxLength(63);
            e.Property(s => s.Format).HasConversion<string>().HasMaxLength(16);
            e.Property(s => s.CreatedBy).HasMaxLength(128);
            e.Property(s => s.Events).HasColumnType("jsonb").HasConversion(
                v => JsonSerializer.Serialize(v, json),
                v => JsonSerializer.Deserialize<List<string>>(v, json) ?? new List<string>(),
                new ValueComparer<List<string>>((x, y) => x!.SequenceEqual(y!), v => v.Aggregate(0, (h, s) => HashCode.Combine(h, s)), v => v.ToList()));
        });
        b.Entity<WebhookOutboxMessage>(e =>
        {
            e.ToTable("webhook_outbox");
            e.HasKey(m => m.AuditSequence);
            e.Property(m => m.AuditSequence).ValueGeneratedNever();
            e.Property(m => m.EventType).HasMaxLength(64);
        });
        b.Entity<WebhookDelivery>(e =>
        {
            e.ToTable("webhook_deliveries");
            e.HasKey(d => d.Id);
            e.Property(d => d.Id).ValueGeneratedNever();
            e.Property(d => d.EventType).HasMaxLength(64);
            e.Property(d => d.Status).HasConversion<string>().HasMaxLength(16);
            e.Property(d => d.LastError).HasMaxLength(1000);
            e.Property(d => d.LeaseOwner).HasMaxLength(200);
            e.HasOne<WebhookSubscription>().WithMany().HasForeignKey(d => d.SubscriptionId).OnDelete(DeleteBehavior.Cascade);
            // One delivery per event and subscription, even if two replicas fan the same outbox row out.
            e.HasIndex(d => new { d.SubscriptionId, d.AuditSequence }).IsUnique().HasFilter("audit_sequence IS NOT NULL");
            e.HasIndex(d => new { d.SubscriptionId, d.CreatedAt });
            e.HasIndex(d => d.NextAttemptAt).HasFilter("status = 'Pending'");
        });
    }
}
