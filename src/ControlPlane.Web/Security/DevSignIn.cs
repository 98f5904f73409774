using System.Security.Claims;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Security;

public sealed class DevSignInOptions
{
    public const string Section = "ControlPlane:DevSignIn";

    /// <summary>Whether anyone may sign in by typing a name and picking a role (until real accounts exist, issue 4).</summary>
    public bool Enabled { get; set; } = true;
}

/// <summary>
/// Development sign-in for the dashboard: a cookie carrying a typed name and a chosen role. The IP seen at sign-in is
/// kept in a claim because Blazor circuits have no per-request connection to take it from later.
/// </summary>
public static class DevSignIn
{
    public const string CookieScheme = "ControlPlane.Cookie";
    public const string SourceIpClaim = "controlplane:source_ip";
    public const string SignInPath = "/signin";
    public const string SignInPostPath = "/auth/signin";
    public const string SignOutPath = "/auth/signout";
    public const int MaxNameLength = 64;

    public static AuthenticationBuilder AddDevSignInCookie(this AuthenticationBuilder builder)
    {
        builder.Services.AddOptions<DevSignInOptions>().BindConfiguration(DevSignInOptions.Section);
        return builder.AddCookie(CookieScheme, o =>
        {
            o.Cookie.Name = "controlplane.session";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.LoginPath = SignInPath;
            o.AccessDeniedPath = SignInPath;
            o.ExpireTimeSpan = TimeSpan.FromHours(12);
            o.SlidingExpiration = true;
            // API and hub callers are programs: they get status codes, not a redirect to an HTML page.
            o.Events.OnRedirectToLogin = ctx => StatusOrRedirect(ctx, StatusCodes.Status401Unauthorized);
            o.Events.OnRedirectToAccessDenied = ctx => StatusOrRedirect(ctx, StatusCodes.Status403Forbidden);
        });
    }

    private static Task StatusOrRedirect(RedirectContext<CookieAuthenticationOptions> ctx, int status)
    {
        if (ctx.Request.Path.StartsWithSegments("/api") || ctx.Request.Path.StartsWithSegments("/hubs"))
            ctx.Response.StatusCode = status;
        else
            ctx.Response.Redirect(ctx.RedirectUri);
        return Task.CompletedTask;
    }

    /// <summary>Validates what was typed on the sign-in page; null when acceptable.</summary>
    public static string? NameError(string? name) =>
        string.IsNullOrWhiteSpace(name) ? "Type your name."
        : name.Trim().Length > MaxNameLength ? $"A name has at most {MaxNameLength} characters."
        : name.Any(char.IsControl) ? "A name cannot contain control characters."
        : null;

    public static IEndpointRouteBuilder MapDevSignIn(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(SignInPostPath, async ([FromForm] string? name, [FromForm] string? role, [FromForm] string? returnUrl,
            HttpContext http, IOptions<DevSignInOptions> options) =>
        {
            if (!options.Value.Enabled) return Results.NotFound();
            var back = LocalUrl(returnUrl);
            if (NameError(name) is { } error)
                return Results.Redirect($"{SignInPath}?error={Uri.EscapeDataString(error)}&returnUrl={Uri.EscapeDataString(back)}");
            if (!Enum.TryParse<Role>(role, ignoreCase: false, out var parsed) || !Enum.IsDefined(parsed))
                return Results.Redirect($"{SignInPath}?error={Uri.EscapeDataString("Pick one of the roles.")}&returnUrl={Uri.EscapeDataString(back)}");

            var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.Name, name!.Trim()),
                new Claim(ClaimTypes.Role, parsed.ToString()),
                new Claim(BearerTokenAuthenticationHandler.ActorKindClaim, nameof(ActorKind.User)),
                new Claim(SourceIpClaim, http.Connection.RemoteIpAddress?.ToString() ?? ""),
            ], CookieScheme);
            await http.SignInAsync(CookieScheme, new ClaimsPrincipal(identity));
            return Results.LocalRedirect(back);
        }).AllowAnonymous().ExcludeFromDescription();

        endpoints.MapPost(SignOutPath, async (HttpContext http) =>
        {
            await http.SignOutAsync(CookieScheme);
            return Results.LocalRedirect(SignInPath);
        }).AllowAnonymous().ExcludeFromDescription();
        return endpoints;
    }

    /// <summary>Only same-site paths: an open redirect after sign-in would be a phishing aid.</summary>
    private static string LocalUrl(string? url) =>
        !string.IsNullOrEmpty(url) && url.StartsWith('/') && !url.StartsWith("//", StringComparison.Ordinal) && !url.StartsWith("/\\", StringComparison.Ordinal)
            ? url : "/";
}
