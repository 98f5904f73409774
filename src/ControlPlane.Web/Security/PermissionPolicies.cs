using System.Security.Claims;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authorization;

namespace ControlPlane.Web.Security;

public static class PermissionPolicies
{
    /// <summary>
    /// One authorization policy per <see cref="Permission"/>, built from the single role table in Core, for pages, API and
    /// hub alike. The principal is the request's one identity (<see cref="RequestIdentity"/>): a bearer token on the API and
    /// hub, the session cookie elsewhere. API changes (anything but GET/HEAD/OPTIONS under /api) must come with a bearer
    /// token: a browser sends the cookie on its own, so honouring it there would open the API to cross-site request forgery.
    /// </summary>
    public static AuthorizationBuilder AddPermissionPolicies(this AuthorizationBuilder builder)
    {
        foreach (var permission in Enum.GetValues<Permission>())
        {
            var roles = Permissions.RolesFor(permission).Select(r => r.ToString()).ToArray();
            builder.AddPolicy(Permissions.PolicyName(permission), p => p
                .RequireAuthenticatedUser()
                .RequireAssertion(ctx => Allows(ctx.User, ctx.Resource as HttpContext, roles)));
        }
        return builder;
    }

    private static bool Allows(ClaimsPrincipal user, HttpContext? http, string[] roles) =>
        (http is null || !IsApiChange(http.Request) || HasBearerIdentity(user)) && roles.Any(user.IsInRole);

    public static bool IsApiChange(HttpRequest request) =>
        request.Path.StartsWithSegments("/api") && !HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !HttpMethods.IsOptions(request.Method);

    public static bool HasBearerIdentity(ClaimsPrincipal user) =>
        user.Identities.Any(i => i.IsAuthenticated && i.AuthenticationType == BearerTokenAuthenticationHandler.SchemeName);

    public static TBuilder RequirePermission<TBuilder>(this TBuilder endpoint, Permission permission) where TBuilder : IEndpointConventionBuilder =>
        endpoint.RequireAuthorization(Permissions.PolicyName(permission));
}
