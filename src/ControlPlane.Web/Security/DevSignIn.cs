using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Security;

public sealed class DevSignInOptions
{
    public const string Section = "ControlPlane:DevSignIn";

    /// <summary>
    /// Whether anyone may sign in by typing a name and picking a role — for local development only. Off by default; when
    /// it is switched off again, sessions it issued are refused.
    /// </summary>
    public bool Enabled { get; set; }
}

/// <summary>The development sign-in (typed name + chosen role), shown on the sign-in page only when explicitly enabled.</summary>
public static class DevSignIn
{
    public const string CookieScheme = AccountSignIn.CookieScheme;
    public const string SourceIpClaim = AccountSignIn.SourceIpClaim;
    public const string SignInPath = AccountSignIn.SignInPath;
    public const string SignInPostPath = "/auth/signin";
    public const string SignOutPath = AccountSignIn.SignOutPath;
    public const int MaxNameLength = 64;

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
            var back = AccountSignIn.LocalUrl(returnUrl);
            if (NameError(name) is not null || !Enum.TryParse<Role>(role, ignoreCase: false, out var parsed) || !Enum.IsDefined(parsed))
                return Results.Redirect($"{SignInPath}?error=dev&returnUrl={Uri.EscapeDataString(back)}");
            await http.SignInAsync(CookieScheme,
                AccountSignIn.Principal(name!.Trim(), parsed, AccountSignIn.Sources.Dev, http.Connection.RemoteIpAddress?.ToString()));
            return Results.LocalRedirect(back);
        }).AllowAnonymous().RequireRateLimiting(AccountSignIn.RateLimitPolicy).ExcludeFromDescription();
        return endpoints;
    }
}
