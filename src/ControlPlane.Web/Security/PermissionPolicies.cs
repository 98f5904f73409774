using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authorization;

namespace ControlPlane.Web.Security;

public static class PermissionPolicies
{
    /// <summary>
    /// One authorization policy per <see cref="Permission"/>, built from the single role table in Core. Programs authenticate
    /// with a bearer token, people in the browser with the sign-in cookie (e.g. the audit export download).
    /// </summary>
    public static AuthorizationBuilder AddPermissionPolicies(this AuthorizationBuilder builder)
    {
        foreach (var permission in Enum.GetValues<Permission>())
            builder.AddPolicy(Permissions.PolicyName(permission), p => p
                .AddAuthenticationSchemes(BearerTokenAuthenticationHandler.SchemeName, DevSignIn.CookieScheme)
                .RequireAuthenticatedUser()
                .RequireRole(Permissions.RolesFor(permission).Select(r => r.ToString())));
        return builder;
    }

    public static TBuilder RequirePermission<TBuilder>(this TBuilder endpoint, Permission permission) where TBuilder : IEndpointConventionBuilder =>
        endpoint.RequireAuthorization(Permissions.PolicyName(permission));
}
