using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Api;

public static class TokensApi
{
    public static RouteGroupBuilder MapTokensApi(this RouteGroupBuilder api)
    {
        var tokens = api.MapGroup("/tokens").WithTags("Tokens").RequirePermission(Permission.ManageTokens)
            .RequireRateLimiting(SecurityHardening.TokensRateLimitPolicy);

        tokens.MapPost("", async (CreateTokenRequest body, TokenAdministration admin, HttpContext http, CancellationToken ct) =>
        {
            var (token, secret) = await admin.IssueAsync(body.Name, body.Role, body.Owner, body.ExpiresAt, http.ToActor(), ct);
            // The only time the plain token exists outside the caller: it is stored hashed.
            return TypedResults.Created($"/api/v1/tokens/{token.Id}", new CreatedTokenDto(token.Id, token.Name, token.Role, token.ExpiresAt, secret, token.Owner));
        });

        // Never a secret or a hash: name, owner, role, dates and whether it is still usable.
        tokens.MapGet("", async (TokenAdministration admin, CancellationToken ct) => TypedResults.Ok(await admin.ListAsync(ct)));

        tokens.MapDelete("/{id:guid}", async (Guid id, TokenAdministration admin, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(await admin.RevokeAsync(id, http.ToActor(), ct)));
        return api;
    }
}
