using System.Security.Cryptography;
using ControlPlane.Core.Identity;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;

namespace ControlPlane.Web.Security;

/// <summary>
/// Between a sign-in with a password an admin set and the person choosing their own, there is no session: only this
/// short-lived, HttpOnly cookie saying "this browser proved the password of account X with security stamp S". Any change
/// of the account (another reset, the change itself) changes the stamp, so a ticket is good for one change at most.
/// </summary>
public static class PasswordChangeTicket
{
    public const string CookieName = "controlplane.password-change";
    public const string PagePath = "/account/password";
    private const string CookiePath = "/account";
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    public static void Issue(HttpContext http, ControlPlaneUser user)
    {
        var value = Protector(http).Protect($"{user.Id}\n{user.SecurityStamp}", Lifetime);
        http.Response.Cookies.Append(CookieName, value, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = http.Request.IsHttps,
            Path = CookiePath,
            MaxAge = Lifetime,
            IsEssential = true,
        });
    }

    /// <summary>The account this browser may set a new password for, or null (no, expired, forged or used ticket).</summary>
    public static async Task<ControlPlaneUser?> ReadAsync(HttpContext http, UserManager<ControlPlaneUser> users)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var value) || string.IsNullOrEmpty(value)) return null;
        string payload;
        try
        {
            payload = Protector(http).Unprotect(value);
        }
        catch (CryptographicException)
        {
            return null;
        }
        var parts = payload.Split('\n');
        if (parts.Length != 2) return null;
        var user = await users.FindByIdAsync(parts[0]);
        return user is { MustChangePassword: true } && user.SecurityStamp == parts[1] && !await users.IsLockedOutAsync(user) ? user : null;
    }

    public static void Clear(HttpContext http) => http.Response.Cookies.Delete(CookieName, new CookieOptions { Path = CookiePath });

    private static ITimeLimitedDataProtector Protector(HttpContext http) =>
        http.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector("ControlPlane.PasswordChangeTicket").ToTimeLimitedDataProtector();
}
