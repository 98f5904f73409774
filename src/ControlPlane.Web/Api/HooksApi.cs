using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Hooks;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

/// <summary>Lifecycle hooks on the API: a release's schema request, and a person's decision on an interrupted hook.</summary>
public static class HooksApi
{
    public static RouteGroupBuilder MapHooksApi(this RouteGroupBuilder deployments)
    {
        // A hook that ControlPlane stopped in the middle of is not run again by itself (unless idempotent): a person says
        // whether it completed ("done") or must run again ("runAgain"). Audited with the reason.
        deployments.MapPost("/{id:guid}/hooks/resolve", async (Guid id, ResolveHookRequest body, ControlPlaneDbContext db, TimeProvider time,
            HttpContext http, CancellationToken ct) =>
        {
            var runAgain = body.Decision switch
            {
                "runAgain" => true,
                "done" => false,
                _ => throw DomainException.Invalid("decision", "decision must be 'runAgain' or 'done'."),
            };
            if (string.IsNullOrWhiteSpace(body.Reason)) throw DomainException.Invalid("reason", "reason is required (it is recorded in the audit trail).");
            if (body.Reason.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
            for (var attempt = 1; ; attempt++)
            {
                db.ChangeTracker.Clear();
                var d = await db.Deployments.SingleOrDefaultAsync(x => x.Id == id, ct)
                        ?? throw DomainException.NotFound($"Deployment {id} does not exist.");
                d.ResolveHeldHook(http.ToActor(), runAgain, body.Reason.Trim(), time.GetUtcNow());
                try
                {
                    await db.SaveChangesAsync(ct);
                    return TypedResults.Ok(Dto.Deployment(d));
                }
                catch (DbUpdateConcurrencyException) when (attempt < 5) { }
            }
        }).RequirePermission(Permission.StartRelease);
        return deployments;
    }

    /// <summary>The schema part of a release request; the override is marked authorized only for roles the permission table allows.</summary>
    public static SchemaRequest? SchemaRequest(StartReleaseRequest body, HttpContext http) =>
        body.Schema is null && body.DdlOverride is null ? null
        : new(body.Schema, body.DdlOverride is null ? null
            : new DdlOverride(body.DdlOverride.Reason, Permissions.RolesFor(Permission.OverrideSchemaGuard).Any(r => http.User.IsInRole(r.ToString()))));
}
