using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Notifications.Webhooks;

/// <summary>
/// The two halves of delivery, each safe with several replicas: fan an outbox row out into one delivery per matching
/// subscription (the outbox row is locked FOR UPDATE SKIP LOCKED and deleted in the same transaction), and send a delivery
/// claimed under a lease. A crash after the send and before recording it sends it again with the same delivery id:
/// at-least-once, with the id for receivers to drop repeats.
/// </summary>
public sealed class WebhookDispatcher(
    ControlPlaneDbContext db, WebhookService webhooks, IHttpClientFactory httpClients, IOptions<WebhookOptions> options,
    TimeProvider time, ILogger<WebhookDispatcher> logger)
{
    public const string HttpClientName = "webhooks";
    private const int Batch = 50;

    /// <summary>Fans out up to one batch of outbox rows; returns how many rows it took.</summary>
    public async Task<int> FanOutAsync(Func<Guid, string?> releaseUrl, CancellationToken cancellationToken)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var rows = await db.Set<WebhookOutboxMessage>()
            .FromSql($"SELECT * FROM webhook_outbox ORDER BY audit_sequence LIMIT {Batch} FOR UPDATE SKIP LOCKED")
            .ToListAsync(cancellationToken);
        if (rows.Count == 0) return 0;
        var sequences = rows.Select(r => r.AuditSequence).ToArray();
        var events = await db.AuditEvents.AsNoTracking().Where(e => sequences.Contains(e.Sequence)).ToDictionaryAsync(e => e.Sequence, cancellationToken);
        var deploymentIds = events.Values.Select(e => e.DeploymentId).OfType<Guid>().Distinct().ToArray();
        var deployments = await db.Deployments.AsNoTracking().IgnoreAutoIncludes().Where(d => deploymentIds.Contains(d.Id))
            .ToDictionaryAsync(d => d.Id, cancellationToken);
        var subscriptions = await db.Set<WebhookSubscription>().AsNoTracking().ToListAsync(cancellationToken);
        var now = time.GetUtcNow();
        var created = 0;
        foreach (var row in rows)
        {
            if (events.TryGetValue(row.AuditSequence, out var e))
            {
                var message = Message(row.EventType, e, e.DeploymentId is { } id ? deployments.GetValueOrDefault(id) : null, releaseUrl);
                foreach (var s in subscriptions.Where(s => s.Wants(row.EventType, e.Application)))
                {
                    db.Add(WebhookService.NewDelivery(s, message, e.Sequence, now, options.Value));
                    created++;
                }
            }
            db.Remove(row);
        }
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        if (created > 0) logger.LogDebug("Queued {Count} webhook deliveries for {Events} events", created, rows.Count);
        return rows.Count;
    }

    internal static WebhookMessage Message(string eventType, AuditEvent e, Deployment? d, Func<Guid, string?> releaseUrl) => new(
        eventType, e.OccurredAt, e.Application, e.Actor, e.ActorKind.ToString(), e.Reason,
        d?.Id ?? e.DeploymentId, d?.Version, d?.FromVersion, d is null ? null : e.AfterState ?? d.State.ToString(),
        (d?.Id ?? e.DeploymentId) is { } id ? releaseUrl(id) : null, e.Sequence, e.Action, e.Hash);

    /// <summary>Claims due deliveries for <paramref name="owner"/> until the lease ends; returns their ids.</summary>
    public async Task<List<Guid>> ClaimAsync(string owner, int max, CancellationToken cancellationToken)
    {
        var lease = options.Value.Timeout + TimeSpan.FromSeconds(15);
        return await db.Database.SqlQuery<Guid>($"""
            UPDATE webhook_deliveries SET lease_owner = {owner}, lease_expires_at = now() + {lease}
            WHERE id IN (SELECT id FROM webhook_deliveries
                         WHERE status = 'Pending' AND next_attempt_at <= now() AND (lease_expires_at IS NULL OR lease_expires_at < now())
                         ORDER BY next_attempt_at LIMIT {max} FOR UPDATE SKIP LOCKED)
            RETURNING id AS "Value"
            """).ToListAsync(cancellationToken);
    }

    /// <summary>The earliest time a pending delivery becomes due (or its lease ends), if any.</summary>
    public Task<DateTimeOffset?> NextDueAsync(CancellationToken cancellationToken) =>
        db.Set<WebhookDelivery>().Where(d => d.Status == WebhookDeliveryStatus.Pending)
            .MinAsync(d => (DateTimeOffset?)(d.LeaseExpiresAt > d.NextAttemptAt ? d.LeaseExpiresAt : d.NextAttemptAt), cancellationToken);

    /// <summary>One attempt of a delivery this owner claimed; records the outcome and the next try.</summary>
    public async Task DeliverAsync(Guid id, string owner, CancellationToken cancellationToken)
    {
        var delivery = await db.Set<WebhookDelivery>().SingleOrDefaultAsync(d => d.Id == id && d.LeaseOwner == owner, cancellationToken);
        if (delivery is null) return; // deleted with its webhook, or the lease passed to someone else
        var webhook = await db.Set<WebhookSubscription>().AsNoTracking().SingleOrDefaultAsync(s => s.Id == delivery.SubscriptionId, cancellationToken);
        if (webhook is null) return;

        var (code, error) = await SendAsync(webhook, delivery, cancellationToken);
        var now = time.GetUtcNow();
        delivery.Attempts++;
        delivery.LastAttemptAt = now;
        delivery.LastStatusCode = code;
        delivery.LastError = error is null ? null : error.Length > 1000 ? error[..1000] : error;
        delivery.LeaseOwner = null;
        delivery.LeaseExpiresAt = null;
        if (error is null)
        {
            delivery.Status = WebhookDeliveryStatus.Delivered;
            delivery.DeliveredAt = now;
            delivery.NextAttemptAt = null;
        }
        else
        {
            var next = now + options.Value.RetryDelay(delivery.Attempts);
            if (next > delivery.GiveUpAt)
            {
                delivery.Status = WebhookDeliveryStatus.Failed;
                delivery.NextAttemptAt = null;
                logger.LogWarning("Gave up delivering {Event} {Delivery} to webhook {Webhook} after {Attempts} attempts: {Reason}",
                    delivery.EventType, delivery.Id, webhook.Name, delivery.Attempts, error);
            }
            else
            {
                delivery.NextAttemptAt = next;
                logger.LogInformation("Webhook {Webhook} did not take {Event} {Delivery} (attempt {Attempts}): {Reason}; retrying at {Next:u}",
                    webhook.Name, delivery.EventType, delivery.Id, delivery.Attempts, error, next);
            }
        }
        await db.SaveChangesAsync(CancellationToken.None);
    }

    private async Task<(int? Code, string? Error)> SendAsync(WebhookSubscription webhook, WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        string url, secret;
        try
        {
            url = webhooks.Protector.Unprotect(webhook.ProtectedUrl);
            secret = webhooks.Protector.Unprotect(webhook.ProtectedSecret);
        }
        catch (CryptographicException ex)
        {
            return (null, $"the stored URL or secret cannot be decrypted (was the Data Protection key ring lost?): {ex.Message}");
        }
        var target = new Uri(url);
        // Checked again at every send: AllowedHosts may have been narrowed since the webhook was created.
        if (!options.Value.AllowsHost(target.IdnHost))
            return (null, $"host '{target.IdnHost}' is not in ControlPlane:Webhooks:AllowedHosts");

        var body = Encoding.UTF8.GetBytes(delivery.Body);
        using var request = new HttpRequestMessage(HttpMethod.Post, target) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.TryAddWithoutValidation(WebhookPayloads.DeliveryHeader, delivery.Id.ToString("D"));
        request.Headers.TryAddWithoutValidation(WebhookPayloads.EventHeader, delivery.EventType);
        request.Headers.TryAddWithoutValidation(WebhookPayloads.SignatureHeader, WebhookPayloads.Sign(secret, body));
        request.Headers.UserAgent.ParseAdd("ControlPlane-Webhooks/1");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.Timeout);
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName)
                .SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var code = (int)response.StatusCode;
            return response.IsSuccessStatusCode ? (code, null) : (code, $"answered {code} {response.ReasonPhrase}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"no answer within {options.Value.Timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            return (null, ex.Message);
        }
    }
}
