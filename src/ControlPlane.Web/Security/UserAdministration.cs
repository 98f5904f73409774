using System.Text.Json;
using ControlPlane.Core;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Identity;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Web.Security;

public sealed record UserSummary(string UserName, string Role, DateTimeOffset CreatedAt, DateTimeOffset? LockedUntil, int FailedAttempts,
    bool MustChangePassword = false);

/// <summary>
/// The outcome of an admin's password reset. <see cref="GeneratedPassword"/> is set only when ControlPlane chose it, and
/// is shown this once: only its hash is stored.
/// </summary>
public sealed record PasswordResetResult(string UserName, string? GeneratedPassword, bool MustChangePassword, bool SessionsEnded);

/// <summary>
/// Local account administration for the admin pages and the users API alike: validates, applies the change through
/// ASP.NET Core Identity and records the audit event (never a password). Callers have checked <see cref="Permission.ManageUsers"/>.
/// </summary>
public sealed class UserAdministration(UserManager<ControlPlaneUser> users, ControlPlaneDbContext db, TimeProvider time)
{
    public async Task<IReadOnlyList<UserSummary>> ListAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var all = await db.Users.AsNoTracking().OrderBy(u => u.UserName).ToListAsync(ct);
        return [.. all.Select(u => new UserSummary(u.UserName!, u.Role.ToString(), u.CreatedAt, u.LockoutEnd > now ? u.LockoutEnd : null, u.AccessFailedCount, u.MustChangePassword))];
    }

    public async Task<UserSummary> CreateAsync(string? userName, string? role, string? password, Actor by, CancellationToken ct)
    {
        var errors = new List<SettingsError>();
        var name = userName?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 64) errors.Add(new("userName", "is required (at most 64 characters)"));
        else if (IdentityRules.ReservedNames.Contains(name)) errors.Add(new("userName", $"'{name}' is reserved for ControlPlane's own identities"));
        var parsed = ParseRole(role, errors);
        if (string.IsNullOrEmpty(password)) errors.Add(new("password", "is required"));
        if (errors.Count > 0) throw new ValidationException(errors);
        if (await users.FindByNameAsync(name!) is not null) throw Taken(name!);
        // A machine token acts under its own name; a person taking that name would merge two identities.
        var lowered = name!.ToLowerInvariant();
        if (await db.ApiTokens.AnyAsync(t => t.Owner == null && t.Name.ToLower() == lowered, ct))
            throw new DomainException(DomainErrorKind.Conflict, $"'{name}' is the name of a machine API token; choose another user name.", "userName");

        var user = new ControlPlaneUser(name!, parsed, time.GetUtcNow());
        // Validate everything before recording the audit event, so a refused request leaves nothing pending.
        foreach (var validator in users.UserValidators)
        {
            var check = await validator.ValidateAsync(users, user);
            if (check.Errors.Any(e => e.Code == DuplicateUserName)) throw Taken(name!);
            if (!check.Succeeded) throw new ValidationException([.. check.Errors.Select(e => new SettingsError("userName", e.Description))]);
        }
        foreach (var validator in users.PasswordValidators)
        {
            var check = await validator.ValidateAsync(users, user, password!);
            if (!check.Succeeded) throw new ValidationException([.. check.Errors.Select(e => new SettingsError("password", e.Description))]);
        }
        db.Record(AuditEvent.Create(by, "user.created", time.GetUtcNow(), after: parsed.ToString(),
            details: JsonSerializer.Serialize(new { userName = name, role = parsed.ToString() })));
        try
        {
            var created = await users.CreateAsync(user, password!);
            if (created.Errors.Any(e => e.Code == DuplicateUserName)) throw Taken(name!);
            Ensure(created, "userName");
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            // Created by a concurrent request between our check and the insert: the unique index decided.
            throw Taken(name);
        }
        return Summary(user);
    }

    /// <summary>
    /// A person changes their own password: the current one is required (a stolen session alone cannot take the account
    /// over), a wrong one counts towards the lockout like a failed sign-in, and every other session of theirs ends.
    /// </summary>
    public async Task<UserSummary> ChangeOwnPasswordAsync(string userName, string? currentPassword, string? newPassword, Actor by, CancellationToken ct)
    {
        var errors = new List<SettingsError>();
        if (string.IsNullOrEmpty(currentPassword)) errors.Add(new("currentPassword", "is required"));
        if (string.IsNullOrEmpty(newPassword)) errors.Add(new("newPassword", "is required"));
        if (errors.Count > 0) throw new ValidationException(errors);
        var user = await users.FindByNameAsync(userName)
                   ?? throw DomainException.Forbidden($"'{userName}' is not a local account with a password; only a person's own session or token can change their password.");
        if (await users.IsLockedOutAsync(user))
            throw DomainException.Conflict($"The account '{user.UserName}' is locked; an admin can unlock it or reset its password.");
        if (!await users.CheckPasswordAsync(user, currentPassword!))
        {
            db.Record(AuditEvent.Create(by, "user.password-change-failed", time.GetUtcNow(), reason: "wrong current password",
                details: JsonSerializer.Serialize(new { userName = user.UserName, failedAttempts = user.AccessFailedCount + 1 })));
            // Counts like a failed sign-in (and saves the audit event with it): guessing through this form locks the account too.
            await users.AccessFailedAsync(user);
            throw new ValidationException([new("currentPassword", "is not your current password")]);
        }
        if (currentPassword == newPassword) throw new ValidationException([new("newPassword", "must differ from the current password")]);
        await ValidatePasswordAsync(user, newPassword!, "newPassword");
        db.Record(AuditEvent.Create(by, "user.password-changed", time.GetUtcNow(),
            details: JsonSerializer.Serialize(new { userName = user.UserName, wasReset = user.MustChangePassword })));
        SetPassword(user, newPassword!, mustChange: false);
        user.AccessFailedCount = 0;
        // A new stamp ends every other session of this person; the caller re-issues their own.
        Ensure(await users.UpdateSecurityStampAsync(user), "newPassword");
        return Summary(user);
    }

    /// <summary>
    /// The change a reset password requires before the person gets a session: the sign-in just proved the password (see
    /// <see cref="PasswordChangeTicket"/>), so only the new one is asked, and it must not be the one the admin chose.
    /// </summary>
    public async Task<UserSummary> CompleteRequiredChangeAsync(ControlPlaneUser user, string? newPassword, Actor by, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(newPassword)) throw new ValidationException([new("newPassword", "is required")]);
        if (!user.MustChangePassword) throw DomainException.Conflict($"'{user.UserName}' has no password change pending.");
        if (user.PasswordHash is { } hash && users.PasswordHasher.VerifyHashedPassword(user, hash, newPassword) != PasswordVerificationResult.Failed)
            throw new ValidationException([new("newPassword", "must differ from the password an admin set for you")]);
        await ValidatePasswordAsync(user, newPassword, "newPassword");
        db.Record(AuditEvent.Create(by, "user.password-changed", time.GetUtcNow(),
            details: JsonSerializer.Serialize(new { userName = user.UserName, wasReset = true })));
        SetPassword(user, newPassword, mustChange: false);
        Ensure(await users.UpdateSecurityStampAsync(user), "newPassword");
        return Summary(user);
    }

    /// <summary>
    /// An admin (or the <c>reset-admin</c> command) sets a new password for someone: the given one, or a generated one
    /// returned once. The person must choose their own at the next sign-in, and their sessions end now. A lockout from
    /// failed attempts is lifted (the reset is how a locked-out person gets back in); a lock an admin set stays.
    /// </summary>
    public async Task<PasswordResetResult> ResetPasswordAsync(string userName, string? password, Actor by, CancellationToken ct)
    {
        if (password is { Length: 0 }) throw new ValidationException([new("password", "must not be empty; leave it out to have one generated")]);
        var user = await FindAsync(userName);
        var generated = password is null ? GeneratePassword() : null;
        await ValidatePasswordAsync(user, password ?? generated!, "password");
        var now = time.GetUtcNow();
        var liftedLockout = user.LockoutEnd is { } end && end > now && end != DateTimeOffset.MaxValue;
        db.Record(AuditEvent.Create(by, "user.password-reset", now, after: "must change at next sign-in",
            details: JsonSerializer.Serialize(new { userName = user.UserName, generated = generated is not null, sessionsEnded = true, liftedLockout })));
        SetPassword(user, password ?? generated!, mustChange: true);
        user.AccessFailedCount = 0;
        if (liftedLockout) user.LockoutEnd = null;
        Ensure(await users.UpdateSecurityStampAsync(user), "password");
        return new PasswordResetResult(user.UserName!, generated, true, SessionsEnded: true);
    }

    /// <summary>A new random password: 24 characters of URL-safe base64 (144 bits).</summary>
    public static string GeneratePassword() =>
        Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');

    private async Task ValidatePasswordAsync(ControlPlaneUser user, string password, string field)
    {
        foreach (var validator in users.PasswordValidators)
        {
            var check = await validator.ValidateAsync(users, user, password);
            if (!check.Succeeded) throw new ValidationException([.. check.Errors.Select(e => new SettingsError(field, e.Description))]);
        }
    }

    private void SetPassword(ControlPlaneUser user, string password, bool mustChange)
    {
        user.PasswordHash = users.PasswordHasher.HashPassword(user, password);
        user.MustChangePassword = mustChange;
    }

    private const string DuplicateUserName = nameof(IdentityErrorDescriber.DuplicateUserName);

    private static DomainException Taken(string name) =>
        new(DomainErrorKind.Conflict, $"A user named '{name}' already exists.", "userName");

    public async Task<UserSummary> ChangeRoleAsync(string userName, string? role, Actor by, CancellationToken ct)
    {
        var errors = new List<SettingsError>();
        var parsed = ParseRole(role, errors);
        if (errors.Count > 0) throw new ValidationException(errors);
        var user = await FindAsync(userName);
        if (user.Role == parsed) return Summary(user);
        if (user.Role == Role.Admin) await EnsureAnotherAdminAsync(user, "change the role of", ct);
        var before = user.Role;
        user.Role = parsed;
        db.Record(AuditEvent.Create(by, "user.role-changed", time.GetUtcNow(), before: before.ToString(), after: parsed.ToString(),
            details: JsonSerializer.Serialize(new { userName = user.UserName })));
        await RevokeTokensAsync(user, keep: parsed, by, $"its owner's role changed from {before} to {parsed}", ct);
        // A new security stamp ends the person's existing sessions, so the new role applies at once.
        Ensure(await users.UpdateSecurityStampAsync(user), "role");
        return Summary(user);
    }

    public async Task<UserSummary> LockAsync(string userName, Actor by, CancellationToken ct)
    {
        var user = await FindAsync(userName);
        if (IsSelf(user, by)) throw DomainException.Conflict("You cannot lock your own account; ask another admin.");
        if (user.Role == Role.Admin) await EnsureAnotherAdminAsync(user, "lock", ct);
        db.Record(AuditEvent.Create(by, "user.locked", time.GetUtcNow(), details: JsonSerializer.Serialize(new { userName = user.UserName })));
        user.LockoutEnabled = true;
        user.LockoutEnd = DateTimeOffset.MaxValue;
        Ensure(await users.UpdateSecurityStampAsync(user), "userName");
        return Summary(user);
    }

    public async Task<UserSummary> UnlockAsync(string userName, Actor by, CancellationToken ct)
    {
        var user = await FindAsync(userName);
        db.Record(AuditEvent.Create(by, "user.unlocked", time.GetUtcNow(), details: JsonSerializer.Serialize(new { userName = user.UserName })));
        user.LockoutEnd = null;
        user.AccessFailedCount = 0;
        Ensure(await users.UpdateAsync(user), "userName");
        return Summary(user);
    }

    public async Task DeleteAsync(string userName, Actor by, CancellationToken ct)
    {
        var user = await FindAsync(userName);
        if (IsSelf(user, by)) throw DomainException.Conflict("You cannot delete your own account; ask another admin.");
        if (user.Role == Role.Admin) await EnsureAnotherAdminAsync(user, "delete", ct);
        db.Record(AuditEvent.Create(by, "user.deleted", time.GetUtcNow(), before: user.Role.ToString(),
            details: JsonSerializer.Serialize(new { userName = user.UserName })));
        await RevokeTokensAsync(user, keep: null, by, "its owner was deleted", ct);
        Ensure(await users.DeleteAsync(user), "userName");
    }

    /// <summary>
    /// Revokes the person's tokens that their new role no longer covers (all of them when <paramref name="keep"/> is null),
    /// saved with the role change or deletion by the caller's next SaveChanges: one transaction, one audit record each.
    /// Revoked, not capped: a token keeps meaning exactly the role it was issued with, and a re-promotion does not revive it.
    /// </summary>
    private async Task RevokeTokensAsync(ControlPlaneUser user, Role? keep, Actor by, string reason, CancellationToken ct)
    {
        var owner = user.NormalizedUserName ?? user.UserName!.ToUpperInvariant();
        var tokens = await db.ApiTokens.Where(t => t.Owner != null && t.Owner.ToUpper() == owner && t.RevokedAt == null).ToListAsync(ct);
        var now = time.GetUtcNow();
        foreach (var token in tokens.Where(t => keep is not { } role || !Permissions.Covers(role, t.Role)))
            token.Revoke(by, now, reason);
    }

    // A person acts through a session or their own tokens alike.
    private static bool IsSelf(ControlPlaneUser user, Actor by) =>
        by.Kind != ActorKind.System && Actor.SameIdentity(user.UserName!, by.Name);

    /// <summary>Somebody must always be able to administer ControlPlane: the last usable Admin stays an Admin.</summary>
    private async Task EnsureAnotherAdminAsync(ControlPlaneUser user, string what, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var others = await db.Users.CountAsync(u => u.Id != user.Id && u.Role == Role.Admin && (u.LockoutEnd == null || u.LockoutEnd <= now), ct);
        if (others == 0) throw DomainException.Conflict($"Cannot {what} '{user.UserName}': it is the last usable Admin account.");
    }

    private async Task<ControlPlaneUser> FindAsync(string userName) =>
        await users.FindByNameAsync(userName) ?? throw DomainException.NotFound($"There is no user named '{userName}'.");

    private static Role ParseRole(string? role, List<SettingsError> errors)
    {
        if (Enum.TryParse<Role>(role, ignoreCase: false, out var parsed) && Enum.IsDefined(parsed)) return parsed;
        errors.Add(new("role", $"must be one of: {string.Join(", ", Enum.GetNames<Role>())}"));
        return default;
    }

    private static void Ensure(IdentityResult result, string field)
    {
        if (!result.Succeeded) throw new ValidationException([.. result.Errors.Select(e => new SettingsError(field, e.Description))]);
    }

    private UserSummary Summary(ControlPlaneUser u) =>
        new(u.UserName!, u.Role.ToString(), u.CreatedAt, u.LockoutEnd > time.GetUtcNow() ? u.LockoutEnd : null, u.AccessFailedCount, u.MustChangePassword);
}
