using System.Security.Claims;
using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;

namespace ControlPlane.Web.Security;

/// <summary>Bound from <c>ControlPlane:Oidc</c>. OIDC sign-in exists only when Authority and ClientId are set.</summary>
public sealed class OidcSignInOptions
{
    public const string Section = "ControlPlane:Oidc";

    public string? Authority { get; set; }
    public string? ClientId { get; set; }
    public string? ClientSecret { get; set; }

    /// <summary>The claim carrying the person's roles or groups at the identity provider.</summary>
    public string RoleClaim { get; set; } = "roles";

    /// <summary>The claim used as the person's name in the audit trail.</summary>
    public string NameClaim { get; set; } = "preferred_username";

    /// <summary>Identity-provider value → ControlPlane role (e.g. <c>RoleMap:cp-admins = Admin</c>). A value equal to a role name maps to it.</summary>
    public Dictionary<string, string> RoleMap { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public string DisplayName { get; set; } = "Single sign-on";
    public bool RequireHttpsMetadata { get; set; } = true;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Authority) && !string.IsNullOrWhiteSpace(ClientId);
}

public static class OidcSignIn
{
    public const string Scheme = "oidc";
    public const string ChallengePath = "/account/signin/oidc";

    /// <summary>
    /// The ControlPlane role for the identity provider's claims: every value of the configured claim is mapped; when
    /// several map, the most privileged (first in <see cref="Role"/>) wins. Null when none maps — such a person is refused.
    /// </summary>
    public static Role? MapRole(IEnumerable<Claim> claims, OidcSignInOptions options)
    {
        Role? best = null;
        foreach (var claim in claims.Where(c => c.Type == options.RoleClaim))
            foreach (var value in Values(claim.Value))
            {
                Role? mapped = options.RoleMap.TryGetValue(value, out var name) && Enum.TryParse<Role>(name, ignoreCase: true, out var r) && Enum.IsDefined(r) ? r
                    : Enum.TryParse<Role>(value, ignoreCase: false, out var direct) && Enum.IsDefined(direct) && Enum.GetName(direct) == value ? direct
                    : null;
                if (mapped is { } m && (best is null || m < best)) best = m;
            }
        return best;
    }

    // Some providers put several roles in one claim as a JSON array.
    private static IEnumerable<string> Values(string value)
    {
        if (!value.StartsWith('[')) return [value];
        try { return JsonSerializer.Deserialize<string[]>(value) ?? []; }
        catch (JsonException) { return [value]; }
    }

    public static AuthenticationBuilder AddOidcSignInWhenConfigured(this AuthenticationBuilder builder, IConfiguration configuration)
    {
        var options = configuration.GetSection(OidcSignInOptions.Section).Get<OidcSignInOptions>() ?? new();
        builder.Services.AddOptions<OidcSignInOptions>().BindConfiguration(OidcSignInOptions.Section);
        if (!options.IsConfigured) return builder;

        return builder.AddOpenIdConnect(Scheme, options.DisplayName, o =>
        {
            o.Authority = options.Authority;
            o.ClientId = options.ClientId;
            o.ClientSecret = options.ClientSecret;
            o.RequireHttpsMetadata = options.RequireHttpsMetadata;
            o.ResponseType = "code";
            o.UsePkce = true;
            o.SaveTokens = false; // the session needs name and role only; no provider tokens in the cookie
            o.MapInboundClaims = false;
            o.Scope.Add("profile");
            o.SignInScheme = AccountSignIn.CookieScheme;
            o.CallbackPath = "/signin-oidc";
            o.Events.OnTokenValidated = OnTokenValidatedAsync;
            o.Events.OnRemoteFailure = ctx =>
            {
                ctx.Response.Redirect($"{AccountSignIn.SignInPath}?error=oidc");
                ctx.HandleResponse();
                return Task.CompletedTask;
            };
        });
    }

    private static async Task OnTokenValidatedAsync(TokenValidatedContext ctx)
    {
        var options = ctx.HttpContext.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<OidcSignInOptions>>().Value;
        var db = ctx.HttpContext.RequestServices.GetRequiredService<ControlPlaneDbContext>();
        var time = ctx.HttpContext.RequestServices.GetRequiredService<TimeProvider>();
        var claims = ctx.Principal?.Claims.ToList() ?? [];
        var name = new[] { options.NameClaim, "preferred_username", "email", "name", "sub" }
            .Select(t => claims.FirstOrDefault(c => c.Type == t)?.Value).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v)) ?? "unknown";
        var ip = ctx.HttpContext.Connection.RemoteIpAddress?.ToString();
        var actor = new Actor(name, ActorKind.User, ip);
        var role = MapRole(claims, options);
        if (role is null)
        {
            db.Record(AuditEvent.Create(actor, "user.sign-in-failed", time.GetUtcNow(), reason: $"no ControlPlane role in claim '{options.RoleClaim}'",
                details: JsonSerializer.Serialize(new { method = Sources })));
            await db.SaveChangesAsync(ctx.HttpContext.RequestAborted);
            ctx.Fail($"The identity provider gave {name} no value of '{options.RoleClaim}' that maps to a ControlPlane role.");
            return;
        }
        ctx.Principal = AccountSignIn.Principal(name, role.Value, Sources, ip);
        db.Record(AuditEvent.Create(actor, "user.signed-in", time.GetUtcNow(), after: role.ToString(),
            details: JsonSerializer.Serialize(new { method = Sources })));
        await db.SaveChangesAsync(ctx.HttpContext.RequestAborted);
    }

    private const string Sources = AccountSignIn.Sources.Oidc;

    public static IEndpointRouteBuilder MapOidcSignIn(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(ChallengePath, (string? returnUrl, Microsoft.Extensions.Options.IOptions<OidcSignInOptions> options) =>
            options.Value.IsConfigured
                ? Results.Challenge(new AuthenticationProperties { RedirectUri = AccountSignIn.LocalUrl(returnUrl) }, [Scheme])
                : Results.NotFound())
            .AllowAnonymous().RequireRateLimiting(AccountSignIn.RateLimitPolicy).ExcludeFromDescription();
        return endpoints;
    }
}
