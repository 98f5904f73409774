using ControlPlane.Core.Execution;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Hooks;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Api;

/// <summary>Lifecycle hooks on the API: a release's schema request, and a person's decision on an interrupted hook.</summary>
public static class HooksApi
{
    public static RouteGroupBuilder MapHooksApi(this RouteGroupBuilder deployments)
    {
        // A hook that ControlPlane stopped in the middle of is not run again by itself (unless idempotent): a person says
        // whether it completed ("done") or must run again ("runAgain"). Audited with the reason.
        deployments.MapPost("/{id:guid}/hooks/resolve", async (Guid id, ResolveHookRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            var runAgain = body.Decision switch
            {
                "runAgain" => true,
                "done" => false,
                _ => throw DomainException.Invalid("decision", "decision must be 'runAgain' or 'done'."),
            };
            var d = await commands.ResolveHookAsync(id, http.ToActor(), runAgain, body.Reason, ct);
            return TypedResults.Ok(Dto.Deployment(d));
        }).RequirePermission(Permission.StartRelease);
        return deployments;
    }

    /// <summary>The schema part of a release request; the override is marked authorized only for roles the permission table allows.</summary>
    public static SchemaRequest? SchemaRequest(StartReleaseRequest body, HttpContext http) =>
        body.Schema is null && body.DdlOverride is null ? null
        : new(body.Schema, body.DdlOverride is null ? null
            : new DdlOverride(body.DdlOverride.Reason, Permissions.RolesFor(Permission.OverrideSchemaGuard).Any(r => http.User.IsInRole(r.ToString()))));
}
