using ControlPlane.Core.Data;
using ControlPlane.Core.Notifications.Webhooks;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

public sealed record CreateWebhookRequest(string? Name, string? Url, List<string>? Events, string? Application, string? Secret, string? Format)
{
    public WebhookSpec ToSpec() => new(Name, Url, Events, Application, Secret, Format);
}

/// <summary>The secret and the full URL are never returned: <c>url</c> is scheme, host and port only.</summary>
public sealed record WebhookDto(Guid Id, string Name, string Url, IReadOnlyList<string> Events, string? Application, string Format,
    string CreatedBy, DateTimeOffset CreatedAt);

public sealed record WebhookDeliveryDto(Guid Id, Guid Webhook, string Event, long? AuditSequence, string Status, int Attempts,
    int? LastStatusCode, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? LastAttemptAt, DateTimeOffset? NextAttemptAt,
    DateTimeOffset? DeliveredAt, DateTimeOffset GiveUpAt);

/// <summary>Webhook subscriptions, their delivery log, "send test" and redeliver (Admin only).</summary>
public static class WebhooksApi
{
    public static RouteGroupBuilder MapWebhooksApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/webhooks").WithTags("Webhooks").RequirePermission(Permission.ManageWebhooks);
        group.MapGet("/", async (ControlPlaneDbContext db, CancellationToken ct) =>
            TypedResults.Ok((await db.Set<WebhookSubscription>().AsNoTracking().OrderBy(s => s.Name).ToListAsync(ct)).Select(ToDto).ToList()));
        group.MapPost("/", async (CreateWebhookRequest body, WebhookService webhooks, HttpContext http, CancellationToken ct) =>
        {
            var created = await webhooks.CreateAsync(body.ToSpec(), http.ToActor(), ct);
            return TypedResults.Created($"/api/v1/webhooks/{created.Id}", ToDto(created));
        });
        group.MapDelete("/{id:guid}", async (Guid id, WebhookService webhooks, HttpContext http, CancellationToken ct) =>
        {
            await webhooks.DeleteAsync(id, http.ToActor(), ct);
            return TypedResults.NoContent();
        });
        group.MapPost("/{id:guid}/test", async (Guid id, WebhookService webhooks, HttpContext http, CancellationToken ct) =>
            TypedResults.Accepted($"/api/v1/webhooks/{id}/deliveries", ToDto(await webhooks.SendTestAsync(id, http.ToActor(), ct))));
        group.MapGet("/{id:guid}/deliveries", async Task<Results<Ok<List<WebhookDeliveryDto>>, ProblemHttpResult>> (
            Guid id, int? limit, WebhookService webhooks, ControlPlaneDbContext db, CancellationToken ct) =>
        {
            if (limit is < 1 or > 500)
                return TypedResults.Problem(statusCode: 400, title: "Invalid request", detail: "limit must be 1 to 500.",
                    extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { ["limit"] = ["limit must be 1 to 500."] } });
            await webhooks.FindAsync(id, ct);
            var list = await db.Set<WebhookDelivery>().AsNoTracking().Where(d => d.SubscriptionId == id)
                .OrderByDescending(d => d.CreatedAt).Take(limit ?? 100).ToListAsync(ct);
            return TypedResults.Ok(list.Select(ToDto).ToList());
        });
        group.MapPost("/deliveries/{deliveryId:guid}/redeliver", async (Guid deliveryId, WebhookService webhooks, HttpContext http, CancellationToken ct) =>
            TypedResults.Accepted($"/api/v1/webhooks/deliveries/{deliveryId}", ToDto(await webhooks.RedeliverAsync(deliveryId, http.ToActor(), ct))));
        return api;
    }

    public static WebhookDto ToDto(WebhookSubscription s) =>
        new(s.Id, s.Name, s.DisplayUrl, s.Events, s.Application, s.Format.ToString().ToLowerInvariant(), s.CreatedBy, s.CreatedAt);

    public static WebhookDeliveryDto ToDto(WebhookDelivery d) =>
        new(d.Id, d.SubscriptionId, d.EventType, d.AuditSequence, d.Status.ToString(), d.Attempts, d.LastStatusCode, d.LastError,
            d.CreatedAt, d.LastAttemptAt, d.NextAttemptAt, d.DeliveredAt, d.GiveUpAt);
}
