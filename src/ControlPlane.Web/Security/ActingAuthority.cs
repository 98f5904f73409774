using ControlPlane.Core.Security;

namespace ControlPlane.Web.Security;

/// <summary>
/// Authority at the moment of the act, for pages: a Blazor circuit keeps the principal it started with for hours, so
/// before every change the person's account is read again (exists, not locked, same security stamp and role — a role
/// change, lock or password reset renews the stamp). API requests get the same from the bearer handler and the cookie
/// validation on every request.
/// </summary>
public static class ActingAuthority
{
    /// <summary>Null when <paramref name="user"/> may do <paramref name="permission"/> now; otherwise why not, in words.</summary>
    public static async Task<string?> RefusalAsync(IServiceProvider services, SignedInUser user, Permission permission, CancellationToken ct = default)
    {
        if (user.Principal is null || !await SessionValidator.IsValidAsync(user.Principal, services, ct))
            return $"Refused: {user.Name}'s account was changed, locked or deleted since this page was opened. Sign in again.";
        return user.Can(permission) ? null : $"Refused: your role ({user.Role?.ToString() ?? "none"}) may not do this.";
    }
}
