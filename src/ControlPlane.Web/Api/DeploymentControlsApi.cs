using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Api;

/// <summary>Minutes to add to the hold window (1-1440 per request) and why.</summary>
public sealed record ExtendHoldRequest(int? Minutes, string? Reason);

/// <summary>Why the failed release is retried (optional), and an Admin's freeze override when one is in force.</summary>
public sealed record RetryRequest(string? Reason, FreezeOverrideRequest? FreezeOverride = null);

/// <summary>
/// Release-manager controls on a live or failed release (ReleaseManagerControls in Core). Each records intent, audited in the
/// same transaction; the runtime leader carries it out, so the answers for what it still has to do are 202.
/// </summary>
public static class DeploymentControlsApi
{
    public static RouteGroupBuilder MapDeploymentControlsApi(this RouteGroupBuilder deployments)
    {
        // Keeps the previous slot warm longer: on-call may ask for more time to decide about a rollback, like the rollback itself.
        deployments.MapPost("/{id:guid}/extend-hold", async (Guid id, ExtendHoldRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(Dto.Deployment(await commands.ExtendHoldAsync(id, body.Minutes, body.Reason, http.ToActor(), ct))))
            .RequirePermission(Permission.Rollback);

        // Ends the instant rollback: a forward decision, so it takes the permission of the switch (not on-call's).
        deployments.MapPost("/{id:guid}/decommission-previous", async (Guid id, ReasonRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
            TypedResults.Accepted($"/api/v1/deployments/{id}", Dto.Deployment(await commands.DecommissionPreviousSlotAsync(id, body.Reason, http.ToActor(), ct))))
            .RequirePermission(Permission.Switch);

        deployments.MapPost("/{id:guid}/finish-monitoring", async (Guid id, ReasonRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
            TypedResults.Accepted($"/api/v1/deployments/{id}", Dto.Deployment(await commands.FinishMonitoringAsync(id, body.Reason, http.ToActor(), ct))))
            .RequirePermission(Permission.Switch);

        // A new release of the failed one's version: Location names the new deployment.
        deployments.MapPost("/{id:guid}/retry", async (Guid id, RetryRequest? body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            var d = await commands.RetryAsync(id, body?.Reason, http.ToActor(), ct, body?.FreezeOverride.ToOverride(http));
            return TypedResults.Accepted($"/api/v1/deployments/{d.Id}", Dto.Deployment(d));
        }).RequirePermission(Permission.StartRelease);
        return deployments;
    }
}
