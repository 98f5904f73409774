using System.Security.Claims;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace ControlPlane.Web.Security;

/// <summary>
/// A refused API call says who was refused and which roles may do it, as problem+json, instead of an empty 401/403.
/// Pages keep the default behaviour (challenge → sign-in).
/// </summary>
public sealed class ProblemAuthorizationResultHandler(IProblemDetailsService problems) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Succeeded || !context.Request.Path.StartsWithSegments("/api"))
        {
            await _default.HandleAsync(next, context, policy, result);
            return;
        }
        var permission = context.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>()
            .Select(a => a.Policy).FirstOrDefault(p => p?.StartsWith("permission:", StringComparison.Ordinal) == true)?["permission:".Length..];
        var allowed = Enum.TryParse<Permission>(permission, out var p) ? string.Join(", ", Permissions.RolesFor(p)) : "another role";
        var cookieOnlyChange = !result.Challenged && PermissionPolicies.IsApiChange(context.Request) && !PermissionPolicies.HasBearerIdentity(context.User);
        var (status, title, detail) = result.Challenged
            ? (StatusCodes.Status401Unauthorized, "Not signed in",
                "Send a valid API token as 'Authorization: Bearer <token>' (POST /api/v1/tokens creates one; an Admin can issue it).")
            : cookieOnlyChange
            ? (StatusCodes.Status401Unauthorized, "API token required",
                "Changes through the API need 'Authorization: Bearer <token>'; the browser session cookie is accepted for reads only (protection against cross-site request forgery).")
            : (StatusCodes.Status403Forbidden, "Not allowed for this role",
                $"{Who(context.User)} ({context.User.FindFirst(ClaimTypes.Role)?.Value}) may not {Describe(permission)}; allowed roles: {allowed}.");
        // The API's own scheme answers (WWW-Authenticate: Bearer), never a redirect to a sign-in page.
        var scheme = policy.AuthenticationSchemes.FirstOrDefault() ?? BearerTokenAuthenticationHandler.SchemeName;
        if (result.Challenged || cookieOnlyChange) await context.ChallengeAsync(BearerTokenAuthenticationHandler.SchemeName);
        else await context.ForbidAsync(scheme);
        context.Response.StatusCode = status;
        await problems.TryWriteAsync(new() { HttpContext = context, ProblemDetails = { Status = status, Title = title, Detail = detail } });
    }

    /// <summary>The request's one identity, and the token it used when it differs from that name.</summary>
    private static string Who(ClaimsPrincipal user) =>
        user.FindFirst(BearerTokenAuthenticationHandler.ViaTokenClaim)?.Value is { } via && via != user.Identity?.Name
            ? $"{user.Identity?.Name} (token {via})"
            : user.Identity?.Name ?? "anonymous";

    private static string Describe(string? permission) => permission switch
    {
        nameof(Permission.StartRelease) => "start a release",
        nameof(Permission.Approve) => "approve a release",
        nameof(Permission.Switch) => "take a forward release decision (switch traffic, finish monitoring early, decommission the previous slot)",
        nameof(Permission.Abort) => "abort a release",
        nameof(Permission.Rollback) => "roll back",
        nameof(Permission.ReadAudit) => "read the audit trail",
        nameof(Permission.ManageTokens) => "manage API tokens",
        nameof(Permission.ManageUsers) => "manage users",
        nameof(Permission.RegisterApplication) => "register applications",
        _ => "do this",
    };
}
