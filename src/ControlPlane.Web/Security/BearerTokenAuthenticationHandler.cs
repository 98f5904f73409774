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
/// configured bootstrap token and the hashed API tokens.
/// </summary>
public sealed class BearerTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggerFactory, UrlEncoder encoder,
    IOptionsMonitor<BootstrapOptions> bootstrap, ControlPlaneDbContext db, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "Bearer";
    public const string ActorKindClaim = "controlplane:actor_kind";
    public const string BootstrapActor = "bootstrap";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = ReadToken();
        if (secret is null) return AuthenticateResult.NoResult();

        var configured = bootstrap.CurrentValue.AdminToken;
        if (!string.IsNullOrEmpty(configured) &&
            CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), SHA256.HashData(Encoding.UTF8.GetBytes(configured))))
            return Success(BootstrapActor, Role.Admin);

        var hash = ApiToken.Hash(secret);
        var token = await db.ApiTokens.SingleOrDefaultAsync(t => t.TokenHash == hash, Context.RequestAborted);
        var now = time.GetUtcNow();
        if (token is null) return AuthenticateResult.Fail("The bearer token is not known.");
        if (!token.IsUsable(now)) return AuthenticateResult.Fail("The bearer token has been revoked or has expired.");
        if (token.TouchLastUsed(now)) await db.SaveChangesAsync(Context.RequestAborted);
        return Success(token.Name, token.Role);
    }

    private string? ReadToken()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return header["Bearer ".Length..].Trim();
        // Browsers' WebSocket API cannot set headers, so SignalR sends the token in the query string — only on the hub.
        if (Request.Path.StartsWithSegments("/hubs") && Request.Query.TryGetValue("access_token", out var q)) return q.ToString();
        return null;
    }

    private AuthenticateResult Success(string name, Role role)
    {
        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.Role, role.ToString()), new Claim(ActorKindClaim, nameof(ActorKind.Token))],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}

public static class ActorExtensions
{
    /// <summary>The audit actor for the signed-in principal of this request.</summary>
    public static Actor ToActor(this HttpContext context) => new(
        context.User.Identity?.Name ?? "anonymous",
        Enum.TryParse<ActorKind>(context.User.FindFirst(BearerTokenAuthenticationHandler.ActorKindClaim)?.Value, out var kind) ? kind : ActorKind.User,
        context.Connection.RemoteIpAddress?.ToString());
}
