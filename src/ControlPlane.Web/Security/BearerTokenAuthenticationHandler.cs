using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Security;

public sealed class BootstrapOptions
{
    /// <summary>When set, this bearer token acts as an Admin named <c>bootstrap</c> (first set-up and automation).</summary>
    public string? AdminToken { get; set; }
}

/// <summary>
/// Authenticates <c>Authorization: Bearer …</c> (or SignalR's <c>access_token</c> query parameter on the hub) against the
/// configured bootstrap token and the hashed API tokens. A token with an owner acts as that person, and only while the
/// person's account exists, is not locked and still holds every permission of the token's role — read from the database
/// on every request, so a demotion, lock or deletion stops the token at once.
/// </summary>
public sealed class BearerTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggerFactory, UrlEncoder encoder,
    IOptionsMonitor<BootstrapOptions> bootstrap, ControlPlaneDbContext db, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "Bearer";
    public const string ActorKindClaim = "controlplane:actor_kind";
    public const string ViaTokenClaim = "controlplane:via_token";
    public const string BootstrapActor = "bootstrap";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = ReadToken(Request);
        if (secret is null) return AuthenticateResult.NoResult();

        var configured = bootstrap.CurrentValue.AdminToken;
        if (!string.IsNullOrEmpty(configured) &&
            CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), SHA256.HashData(Encoding.UTF8.GetBytes(configured))))
            return Success(BootstrapActor, Role.Admin, BootstrapActor);

        var hash = ApiToken.Hash(secret);
        var ct = Context.RequestAborted;
        // Not tracked: the request's own work (e.g. revoking this very token) must read the row fresh.
        var token = await db.ApiTokens.AsNoTracking().SingleOrDefaultAsync(t => t.TokenHash == hash, ct);
        var now = time.GetUtcNow();
        if (token is null) return AuthenticateResult.Fail("The bearer token is not known.");
        if (!token.IsUsable(now)) return AuthenticateResult.Fail("The bearer token has been revoked or has expired.");
        var name = token.Name;
        if (token.Owner is { } owner)
        {
            var normalized = owner.ToUpperInvariant();
            var person = await db.Users.AsNoTracking().Where(u => u.NormalizedUserName == normalized)
                .Select(u => new { u.UserName, u.Role, u.LockoutEnd }).SingleOrDefaultAsync(ct);
            if (person is null) return AuthenticateResult.Fail($"The bearer token's owner '{owner}' no longer exists.");
            if (person.LockoutEnd > now) return AuthenticateResult.Fail($"The bearer token's owner '{owner}' is locked.");
            if (!Permissions.Covers(person.Role, token.Role))
                return AuthenticateResult.Fail($"The bearer token's role {token.Role} exceeds its owner's current role {person.Role}.");
            name = person.UserName!;
        }
        if (token.LastUsedAt is not { } last || now - last >= TimeSpan.FromMinutes(1))
            await db.ApiTokens.Where(t => t.Id == token.Id).ExecuteUpdateAsync(s => s.SetProperty(t => t.LastUsedAt, now), ct);
        return Success(name, token.Role, token.Name);
    }

    /// <summary>The bearer secret a request presents, or null.</summary>
    public static string? ReadToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return header["Bearer ".Length..].Trim();
        // Browsers' WebSocket API cannot set headers, so SignalR sends the token in the query string — only on the hub.
        if (request.Path.StartsWithSegments("/hubs") && request.Query.TryGetValue("access_token", out var q)) return q.ToString();
        return null;
    }

    private AuthenticateResult Success(string name, Role role, string via)
    {
        var identity = new ClaimsIdentity(
        [
            new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.Role, role.ToString()),
            new Claim(ActorKindClaim, nameof(ActorKind.Token)), new Claim(ViaTokenClaim, via),
        ], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}

public static class ActorExtensions
{
    /// <summary>The audit actor for the one identity this request acts as (see <see cref="RequestIdentity"/>).</summary>
    public static Actor ToActor(this HttpContext context) => new(
        context.User.Identity?.Name ?? "anonymous",
        Enum.TryParse<ActorKind>(context.User.FindFirst(BearerTokenAuthenticationHandler.ActorKindClaim)?.Value, out var kind) ? kind : ActorKind.User,
        context.Connection.RemoteIpAddress?.ToString(),
        context.User.FindFirst(BearerTokenAuthenticationHandler.ViaTokenClaim)?.Value);
}
