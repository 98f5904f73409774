using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

public static class DeploymentsApi
{
    public static RouteGroupBuilder MapDeploymentsApi(this RouteGroupBuilder api)
    {
        var deployments = api.MapGroup("/deployments").WithTags("Deployments");

        deployments.MapGet("/{id:guid}", async Task<Results<Ok<DeploymentDto>, ProblemHttpResult>> (Guid id, ControlPlaneDbContext db, CancellationToken ct) =>
        {
            var d = await db.Deployments.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id, ct);
            return d is null ? ApplicationsApi.NotFound($"Deployment {id} does not exist.") : TypedResults.Ok(Dto.Deployment(d));
        }).RequirePermission(Permission.ViewApplications);

        deployments.MapPost("/{id:guid}/approve", async (Guid id, ApproveRequest? body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(Dto.Deployment(await commands.ApproveAsync(id, http.ToActor(), body?.Comment, ct))))
            .RequirePermission(Permission.Approve);

        deployments.MapPost("/{id:guid}/switch", async (Guid id, SwitchRequest? body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
            TypedResults.Accepted($"/api/v1/deployments/{id}",
                Dto.Deployment(await commands.SwitchAsync(id, http.ToActor(), ct, body?.FreezeOverride.ToOverride(http)))))
            .RequirePermission(Permission.Switch);

        deployments.MapPost("/{id:guid}/abort", async (Guid id, ReasonRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(Dto.Deployment(await commands.AbortAsync(id, http.ToActor(), body.Reason, ct))))
            .RequirePermission(Permission.Abort);

        deployments.MapHooksApi();
        deployments.MapDeploymentControlsApi();
        return api;
    }
}
