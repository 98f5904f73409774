using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Identity;

namespace ControlPlane.Core.Identity;

/// <summary>A local account. Each person has exactly one <see cref="Security.Role"/>; what it allows is in <see cref="Permissions"/>.</summary>
public sealed class ControlPlaneUser : IdentityUser
{
    public ControlPlaneUser() { }

    public ControlPlaneUser(string userName, Role role, DateTimeOffset now) : base(userName)
    {
        Role = role;
        CreatedAt = now;
        // A fresh stamp so a changed role/lock/password invalidates cookies issued before it.
        SecurityStamp = Guid.NewGuid().ToString("N");
    }

    public Role Role { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// Set when an admin (or <c>reset-admin</c>) chose this password: the next sign-in only leads to choosing a new one,
    /// so the person who set it never holds a usable session as this account.
    /// </summary>
    public bool MustChangePassword { get; set; }
}
