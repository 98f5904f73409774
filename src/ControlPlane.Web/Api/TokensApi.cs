using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Api;

public static class TokensApi
{
    public static RouteGroupBuilder MapTokensApi(this RouteGroupBuilder api)
    {
        api.MapPost("/tokens", async (CreateTokenRequest body, ControlPlaneDbContext db, TimeProvider time, HttpContext http, CancellationToken ct) =>
        {
            var errors = new List<Core.SettingsError>();
            if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Length > 64) errors.Add(new("name", "is required (at most 64 characters)"));
            if (!Enum.TryParse<Role>(body.Role, ignoreCase: false, out var role) || !Enum.IsDefined(role))
                errors.Add(new("role", $"must be one of: {string.Join(", ", Enum.GetNames<Role>())}"));
            var now = time.GetUtcNow();
            if (body.ExpiresAt is { } exp && exp <= now) errors.Add(new("expiresAt", "must be in the future"));
            if (errors.Count > 0) throw new ValidationException(errors);

            var (token, secret) = ApiToken.Issue(body.Name!.Trim(), role, http.ToActor(), now, body.ExpiresAt);
            db.ApiTokens.Add(token);
            await db.SaveChangesAsync(ct);
            // The only time the plain token exists outside the caller: it is stored hashed.
            return TypedResults.Created($"/api/v1/tokens/{token.Id}", new CreatedTokenDto(token.Id, token.Name, role.ToString(), token.ExpiresAt, secret));
        }).WithTags("Tokens").RequirePermission(Permission.ManageTokens);
        return api;
    }
}
