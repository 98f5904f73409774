using Microsoft.AspNetCore.Identity;

namespace ControlPlane.Core.Identity;

/// <summary>The account rules, in one place, so the web host and the tests agree on them.</summary>
public static class IdentityRules
{
    public const int MinPasswordLength = 12;
    public const int MaxFailedAttempts = 5;
    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(15);
    public const string InitialAdminName = "admin";

    /// <summary>
    /// Identity names that are not people: the bootstrap token, the system, and the placeholders of refused sign-ins. No
    /// account or machine token may take them, so the audit trail and the two-person rule never confuse them with a person.
    /// </summary>
    public static readonly IReadOnlySet<string> ReservedNames =
        new HashSet<string>(["bootstrap", "system", "anonymous", "unknown"], StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Length is the policy (at least 12 characters, NIST SP 800-63B style); composition rules are off because they push
    /// people to predictable patterns.
    /// </summary>
    public static void Apply(IdentityOptions o)
    {
        o.Password.RequiredLength = MinPasswordLength;
        o.Password.RequireDigit = false;
        o.Password.RequireLowercase = false;
        o.Password.RequireUppercase = false;
        o.Password.RequireNonAlphanumeric = false;
        o.Password.RequiredUniqueChars = 4;
        o.Lockout.AllowedForNewUsers = true;
        o.Lockout.MaxFailedAccessAttempts = MaxFailedAttempts;
        o.Lockout.DefaultLockoutTimeSpan = LockoutDuration;
        o.User.RequireUniqueEmail = false;
        o.SignIn.RequireConfirmedAccount = false;
    }
}
