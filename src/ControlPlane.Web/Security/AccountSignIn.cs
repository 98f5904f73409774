using System.Security.Claims;
using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Identity;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Security;

/// <summary>
/// The dashboard session: one cookie scheme, issued by the local sign-in form (ASP.NET Core Identity password check with
/// lockout), by OIDC when configured, or by the development sign-in when explicitly enabled. The cookie carries the
/// person's name, role and sign-in IP (Blazor circuits have no request to take the IP from later).
/// </summary>
public static class AccountSignIn
{
    public const string CookieScheme = "ControlPlane.Cookie";
    public const string SourceIpClaim = "controlplane:source_ip";
    public const string AuthSourceClaim = "controlplane:auth_source";
    public const string SignInPath = "/signin";
    public const string SignInPostPath = "/account/signin";
    public const string SignOutPath = "/auth/signout";
    public const string RateLimitPolicy = "signin";

    public static class Sources
    {
        public const string Local = "local";
        public const string Oidc = "oidc";
        public const string Dev = "dev";
    }

    /// <summary>How often a session cookie is re-checked against the account (deleted, locked, role changed).</summary>
    public static readonly TimeSpan RevalidationInterval = TimeSpan.FromSeconds(30);

    public static AuthenticationBuilder AddSessionCookie(this AuthenticationBuilder builder) =>
        builder.AddCookie(CookieScheme, o =>
        {
            o.Cookie.Name = "controlplane.session";
            o.Cookie.HttpOnly = true;
            // Lax, not Strict: Strict drops the cookie on the redirect back from an OIDC provider and on links from chat or
            // e-mail into a release page. Lax still withholds it from cross-site POSTs; forms also carry antiforgery tokens,
            // and the API refuses cookie-authenticated changes altogether (PermissionPolicies).
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.LoginPath = SignInPath;
            o.AccessDeniedPath = "/forbidden";
            o.ExpireTimeSpan = TimeSpan.FromHours(12);
            o.SlidingExpiration = true;
            // API and hub callers are programs: they get status codes, not a redirect to an HTML page.
            o.Events.OnRedirectToLogin = ctx => StatusOrRedirect(ctx, StatusCodes.Status401Unauthorized);
            o.Events.OnRedirectToAccessDenied = ctx => StatusOrRedirect(ctx, StatusCodes.Status403Forbidden);
            o.Events.OnValidatePrincipal = ValidateSessionAsync;
        });

    private static Task StatusOrRedirect(RedirectContext<CookieAuthenticationOptions> ctx, int status)
    {
        if (ctx.Request.Path.StartsWithSegments("/api") || ctx.Request.Path.StartsWithSegments("/hubs"))
            ctx.Response.StatusCode = status;
        else
            ctx.Response.Redirect(Relative(ctx.RedirectUri));
        return Task.CompletedTask;
    }

    /// <summary>
    /// The cookie handler builds absolute redirects from the request's Host header, which a client controls: only the path
    /// and query go back, so a forged Host is never echoed into a Location.
    /// </summary>
    private static string Relative(string uri) =>
        Uri.TryCreate(uri, UriKind.Absolute, out var absolute) ? LocalUrl(absolute.PathAndQuery) : LocalUrl(uri);

    private static async Task ValidateSessionAsync(CookieValidatePrincipalContext ctx)
    {
        if (ctx.Principal is null) return;
        var checkedAt = ctx.Properties.Items.TryGetValue("cp.checked", out var v) && long.TryParse(v, out var t) ? t : 0;
        var time = ctx.HttpContext.RequestServices.GetRequiredService<TimeProvider>();
        var now = time.GetUtcNow();
        if (now.ToUnixTimeSeconds() - checkedAt < RevalidationInterval.TotalSeconds) return;
        if (!await SessionValidator.IsValidAsync(ctx.Principal, ctx.HttpContext.RequestServices, ctx.HttpContext.RequestAborted))
        {
            ctx.RejectPrincipal();
            await ctx.HttpContext.SignOutAsync(CookieScheme);
            return;
        }
        ctx.Properties.Items["cp.checked"] = now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        ctx.ShouldRenew = true;
    }

    public static ClaimsPrincipal Principal(string name, Role role, string source, string? sourceIp, string? userId = null, string? securityStamp = null)
    {
        List<Claim> claims =
        [
            new(ClaimTypes.Name, name),
            new(ClaimTypes.Role, role.ToString()),
            new(BearerTokenAuthenticationHandler.ActorKindClaim, nameof(ActorKind.User)),
            new(SourceIpClaim, sourceIp ?? ""),
            new(AuthSourceClaim, source),
        ];
        if (userId is not null) claims.Add(new(ClaimTypes.NameIdentifier, userId));
        if (securityStamp is not null) claims.Add(new(SessionValidator.SecurityStampClaim, securityStamp));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, CookieScheme));
    }

    public static IEndpointRouteBuilder MapAccountSignIn(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(SignInPostPath, async ([FromForm] string? userName, [FromForm] string? password, [FromForm] string? returnUrl,
            HttpContext http, UserManager<ControlPlaneUser> users, SignInManager<ControlPlaneUser> signIn, ControlPlaneDbContext db,
            TimeProvider time, ILoggerFactory loggers) =>
        {
            var back = LocalUrl(returnUrl);
            var ip = http.Connection.RemoteIpAddress?.ToString();
            var log = loggers.CreateLogger("ControlPlane.SignIn");
            var name = userName?.Trim() ?? "";
            var user = name.Length is > 0 and <= 256 ? await users.FindByNameAsync(name) : null;
            if (user is null || string.IsNullOrEmpty(password))
            {
                // Spend the time a password check takes, so the answer's timing does not tell that the account is unknown.
                users.PasswordHasher.VerifyHashedPassword(DummyUser, DummyHash.Value, password ?? "");
                // The typed name is not recorded for unknown accounts: people type passwords into the name field.
                db.Record(AuditEvent.Create(new Actor("unknown", ActorKind.User, ip), "user.sign-in-failed", time.GetUtcNow(),
                    reason: user is null ? "unknown user name" : "empty password"));
                await db.SaveChangesAsync(http.RequestAborted);
                log.LogWarning("Sign-in refused from {Ip}: unknown user name or empty password", ip);
                return Back("invalid", back);
            }

            var actor = new Actor(user.UserName!, ActorKind.User, ip);
            var wasLockedOut = await users.IsLockedOutAsync(user);
            var result = await signIn.CheckPasswordSignInAsync(user, password, lockoutOnFailure: true);
            var now = time.GetUtcNow();
            if (result.Succeeded && user.MustChangePassword)
            {
                // An admin chose this password: no session until the person has chosen their own (PasswordChangeTicket).
                PasswordChangeTicket.Issue(http, user);
                db.Record(AuditEvent.Create(actor, "user.password-change-required", now, reason: "signed in with a password an admin set"));
                await db.SaveChangesAsync(http.RequestAborted);
                return Results.Redirect($"{PasswordChangeTicket.PagePath}?returnUrl={Uri.EscapeDataString(back)}");
            }
            if (result.Succeeded)
            {
                await http.SignInAsync(CookieScheme, Principal(user.UserName!, user.Role, Sources.Local, ip, user.Id, user.SecurityStamp));
                db.Record(AuditEvent.Create(actor, "user.signed-in", now, after: user.Role.ToString(),
                    details: JsonSerializer.Serialize(new { method = Sources.Local })));
                await db.SaveChangesAsync(http.RequestAborted);
                return Results.LocalRedirect(back);
            }

            db.Record(AuditEvent.Create(actor, "user.sign-in-failed", now,
                reason: wasLockedOut ? "account locked out" : "wrong password",
                details: JsonSerializer.Serialize(new { failedAttempts = user.AccessFailedCount })));
            if (result.IsLockedOut && !wasLockedOut)
                db.Record(AuditEvent.Create(actor, "user.locked-out", now, after: "locked",
                    reason: $"{IdentityRules.MaxFailedAttempts} failed sign-in attempts",
                    details: JsonSerializer.Serialize(new { until = user.LockoutEnd })));
            await db.SaveChangesAsync(http.RequestAborted);
            log.LogWarning("Sign-in refused for {User} from {Ip}: {Reason}", user.UserName, ip, result.IsLockedOut ? "locked out" : "wrong password");
            // One answer for every failure: whether the account exists or is locked is for the audit trail and the admins.
            return Back("invalid", back);
        }).AllowAnonymous().RequireRateLimiting(RateLimitPolicy).ExcludeFromDescription();

        endpoints.MapPost(SignOutPath, async (HttpContext http, IAntiforgery antiforgery) =>
        {
            // No form fields are bound here, so the antiforgery token is checked explicitly (no cross-site sign-out).
            if (!await antiforgery.IsRequestValidAsync(http)) return Results.BadRequest();
            await http.SignOutAsync(CookieScheme);
            return Results.LocalRedirect(SignInPath);
        }).AllowAnonymous().ExcludeFromDescription();
        return endpoints;
    }

    private static IResult Back(string error, string returnUrl) =>
        Results.Redirect($"{SignInPath}?error={error}&returnUrl={Uri.EscapeDataString(returnUrl)}");

    private static readonly ControlPlaneUser DummyUser = new();
    private static readonly Lazy<string> DummyHash = new(() => new PasswordHasher<ControlPlaneUser>().HashPassword(DummyUser, Guid.NewGuid().ToString()));

    /// <summary>
    /// Only same-site relative paths: an open redirect after sign-in would be a phishing aid. Backslashes and control
    /// characters are refused anywhere, because browsers read "/\\host" and "/\t/host" as "//host" (another site).
    /// </summary>
    public static string LocalUrl(string? url) =>
        !string.IsNullOrEmpty(url) && url.Length <= 2048 && url.StartsWith('/') && !url.StartsWith("//", StringComparison.Ordinal)
        && !url.Contains('\\') && !url.Any(char.IsControl)
            ? url : "/";
}

/// <summary>Whether a session still stands: local accounts must exist, be unlocked and keep their security stamp.</summary>
public static class SessionValidator
{
    public const string SecurityStampClaim = "controlplane:security_stamp";

    public static async Task<bool> IsValidAsync(ClaimsPrincipal principal, IServiceProvider services, CancellationToken ct)
    {
        switch (principal.FindFirst(AccountSignIn.AuthSourceClaim)?.Value)
        {
            case AccountSignIn.Sources.Local:
                var users = services.GetRequiredService<UserManager<ControlPlaneUser>>();
                var id = principal.FindFirst(ClaimTypes.NameIdentifier)?.Value;
                var user = id is null ? null : await users.FindByIdAsync(id);
                return user is not null
                       && !user.MustChangePassword
                       && user.SecurityStamp == principal.FindFirst(SecurityStampClaim)?.Value
                       && user.Role.ToString() == principal.FindFirst(ClaimTypes.Role)?.Value
                       && !await users.IsLockedOutAsync(user);
            case AccountSignIn.Sources.Oidc:
                return services.GetRequiredService<IOptions<OidcSignInOptions>>().Value.IsConfigured;
            case AccountSignIn.Sources.Dev:
                return services.GetRequiredService<IOptions<DevSignInOptions>>().Value.Enabled;
            default:
                return false;
        }
    }
}

/// <summary>Re-checks the session of a live Blazor circuit, so a deleted, locked or re-roled person loses it within a minute.</summary>
public sealed class CircuitSessionRevalidator(ILoggerFactory loggers, IServiceScopeFactory scopes)
    : Microsoft.AspNetCore.Components.Server.RevalidatingServerAuthenticationStateProvider(loggers)
{
    protected override TimeSpan RevalidationInterval => TimeSpan.FromMinutes(1);

    protected override async Task<bool> ValidateAuthenticationStateAsync(
        Microsoft.AspNetCore.Components.Authorization.AuthenticationState state, CancellationToken cancellationToken)
    {
        if (state.User.Identity?.IsAuthenticated != true) return true;
        await using var scope = scopes.CreateAsyncScope();
        return await SessionValidator.IsValidAsync(state.User, scope.ServiceProvider, cancellationToken);
    }
}
