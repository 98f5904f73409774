using System.Security.Cryptography;
using System.Threading.RateLimiting;
using ControlPlane.Core.Data;
using ControlPlane.Core.Identity;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.RateLimiting;

namespace ControlPlane.Web.Security;

/// <summary>Bound from <c>ControlPlane:RateLimits</c>: requests per minute and client IP.</summary>
public sealed class RateLimitOptions
{
    public const string Section = "ControlPlane:RateLimits";
    public int SignInPerMinute { get; set; } = 10;
    public int TokensPerMinute { get; set; } = 30;
}

public static class SecurityHardening
{
    public const string TokensRateLimitPolicy = "tokens";
    public const string CspNonceItem = "controlplane:csp-nonce";

    /// <summary>Identity, the session cookie, bearer tokens, OIDC (when configured), policies, Data Protection and rate limits.</summary>
    public static WebApplicationBuilder AddControlPlaneSecurity(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<BootstrapOptions>().BindConfiguration("ControlPlane:Bootstrap");
        services.AddOptions<DevSignInOptions>().BindConfiguration(DevSignInOptions.Section);
        services.AddOptions<InitialAdminOptions>().BindConfiguration(InitialAdminOptions.Section);

        services.AddIdentityCore<ControlPlaneUser>(IdentityRules.Apply)
            .AddEntityFrameworkStores<ControlPlaneDbContext>()
            .AddSignInManager()
            .AddDefaultTokenProviders();
        services.AddScoped<UserAdministration>();
        services.AddScoped<TokenAdministration>();

        // One key ring for every replica, so a cookie or antiforgery token issued by one is accepted by the others.
        services.AddDataProtection().SetApplicationName("ControlPlane").PersistKeysToDbContext<ControlPlaneDbContext>();

        services.AddAuthentication(RequestIdentity.SchemeName)
            .AddPolicyScheme(RequestIdentity.SchemeName, "One identity per request", o => o.ForwardDefaultSelector = RequestIdentity.Select)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, BearerTokenAuthenticationHandler>(BearerTokenAuthenticationHandler.SchemeName, null)
            .AddSessionCookie()
            .AddOidcSignInWhenConfigured(builder.Configuration);
        services.AddCascadingAuthenticationState();
        services.AddScoped<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider, CircuitSessionRevalidator>();
        services.AddAuthorizationBuilder().AddPermissionPolicies();
        services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, ProblemAuthorizationResultHandler>();

        services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section);
        var limits = builder.Configuration.GetSection(RateLimitOptions.Section).Get<RateLimitOptions>() ?? new();
        services.AddRateLimiter(o =>
        {
            o.AddPolicy(AccountSignIn.RateLimitPolicy, http => PerIp(http, limits.SignInPerMinute));
            o.AddPolicy(TokensRateLimitPolicy, http => PerIp(http, limits.TokensPerMinute));
            o.OnRejected = async (ctx, ct) =>
            {
                var http = ctx.HttpContext;
                if (ctx.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retry))
                    http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().TryWriteAsync(new()
                {
                    HttpContext = http,
                    ProblemDetails = { Status = StatusCodes.Status429TooManyRequests, Title = "Too many requests", Detail = "Too many attempts from this address; wait a minute and try again." },
                });
            };
        });
        return builder;
    }

    private static RateLimitPartition<string> PerIp(HttpContext http, int permitsPerMinute) =>
        RateLimitPartition.GetFixedWindowLimiter(http.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = permitsPerMinute,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        });

    /// <summary>
    /// Security headers on every response. The CSP allows only same-origin scripts (Blazor's import map carries the
    /// per-request nonce), same-origin connections (the Blazor circuit's WebSocket) and inline styles, which MudBlazor's
    /// components set as style attributes.
    /// </summary>
    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        context.Items[CspNonceItem] = nonce;
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()";
        headers.ContentSecurityPolicy =
            $"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";
        return next(context);
    });
}

/// <summary>Bound from <c>ControlPlane:Identity</c>.</summary>
public sealed class InitialAdminOptions
{
    public const string Section = "ControlPlane:Identity";

    /// <summary>The first admin's password; when absent a random one is generated and logged once.</summary>
    public string? InitialAdminPassword { get; set; }
}

/// <summary>Creates the first admin account when there are no accounts at all (first start).</summary>
public static class InitialAdmin
{
    public static async Task EnsureAsync(IServiceProvider services)
    {
        await using var scope = services.CreateAsyncScope();
        var sp = scope.ServiceProvider;
        var db = sp.GetRequiredService<ControlPlaneDbContext>();
        if (db.Users.Any()) return;
        var configured = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<InitialAdminOptions>>().Value.InitialAdminPassword;
        var password = string.IsNullOrEmpty(configured)
            ? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_')
            : configured;
        try
        {
            await sp.GetRequiredService<UserAdministration>().CreateAsync(IdentityRules.InitialAdminName, nameof(Core.Security.Role.Admin), password,
                Core.Deployments.Actor.System, CancellationToken.None);
        }
        catch (Exception ex) when (ex is Core.Execution.ValidationException or Core.Deployments.DomainException)
        {
            // Another replica created it first (or the configured password breaks the policy — say so plainly).
            if (db.Users.Any()) return;
            throw new InvalidOperationException($"Could not create the initial admin: {ex.Message} ({InitialAdminOptions.Section}:InitialAdminPassword needs at least {IdentityRules.MinPasswordLength} characters).", ex);
        }
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Identity");
        if (string.IsNullOrEmpty(configured))
            logger.LogWarning(
                "\n==================== ControlPlane first start ====================\n" +
                "Created the initial admin account '{User}' with the generated password:\n\n    {Password}\n\n" +
                "It is shown only this once and stored only as a hash. Sign in, create your own admin account, then delete this one.\n" +
                "==================================================================",
                IdentityRules.InitialAdminName, password);
        else
            logger.LogInformation("Created the initial admin account '{User}' with the password from {Key}", IdentityRules.InitialAdminName,
                InitialAdminOptions.Section + ":InitialAdminPassword");
    }
}
