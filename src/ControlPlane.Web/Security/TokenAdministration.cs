using ControlPlane.Core;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Identity;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Web.Security;

public sealed record TokenSummary(Guid Id, string Name, string Role, DateTimeOffset CreatedAt, string CreatedBy,
    DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt, bool Usable, string? Owner = null);

/// <summary>API token administration for the admin page and the tokens API alike. The secret exists only in the result of Issue.</summary>
public sealed class TokenAdministration(ControlPlaneDbContext db, UserManager<ControlPlaneUser> users, TimeProvider time)
{
    public async Task<(TokenSummary Token, string Secret)> IssueAsync(string? name, string? role, string? owner, DateTimeOffset? expiresAt,
        Actor by, CancellationToken ct)
    {
        var errors = new List<SettingsError>();
        var trimmed = name?.Trim();
        if (string.IsNullOrEmpty(trimmed) || trimmed.Length > 64 || trimmed.Any(char.IsControl))
            errors.Add(new("name", "is required (at most 64 characters, no control characters)"));
        else if (IdentityRules.ReservedNames.Contains(trimmed))
            errors.Add(new("name", $"'{trimmed}' is reserved for ControlPlane's own identities"));
        if (!Enum.TryParse<Role>(role, ignoreCase: false, out var parsed) || !Enum.IsDefined(parsed))
            errors.Add(new("role", $"must be one of: {string.Join(", ", Enum.GetNames<Role>())}"));
        var now = time.GetUtcNow();
        if (expiresAt is { } exp && exp <= now) errors.Add(new("expiresAt", "must be in the future"));
        ControlPlaneUser? person = null;
        if (owner is not null)
        {
            person = string.IsNullOrWhiteSpace(owner) ? null : await users.FindByNameAsync(owner.Trim());
            if (person is null) errors.Add(new("owner", "must be the user name of an existing account (or left out for a machine token)"));
            else if (await users.IsLockedOutAsync(person)) errors.Add(new("owner", $"'{person.UserName}' is locked"));
            else if (errors.All(e => e.Field != "role") && !Permissions.Covers(person.Role, parsed))
                errors.Add(new("role", $"{parsed} exceeds the owner's role ({person.Role}); a token never does more than the person it acts as"));
        }
        if (errors.Count > 0) throw new ValidationException(errors);

        var lowered = trimmed!.ToLowerInvariant();
        if (await db.ApiTokens.AnyAsync(t => t.Name.ToLower() == lowered, ct))
            throw new DomainException(DomainErrorKind.Conflict, $"A token named '{trimmed}' already exists; token names are unique.", "name");
        // A token without owner is a machine identity named after itself: it must not pass for a person.
        if (person is null && await users.FindByNameAsync(trimmed) is { } namesake)
            throw new DomainException(DomainErrorKind.Conflict,
                $"'{trimmed}' is a user's name; a token without owner acts under its own name, so set owner to '{namesake.UserName}' or choose another name.", "name");

        var (token, secret) = ApiToken.Issue(trimmed, parsed, by, now, expiresAt, person?.UserName);
        db.ApiTokens.Add(token);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            // Two requests for one name at once: the database's unique index decides, the loser gets the same 409.
            throw new DomainException(DomainErrorKind.Conflict, $"A token named '{trimmed}' already exists; token names are unique.", "name");
        }
        return (Summary(token, now), secret);
    }

    public async Task<IReadOnlyList<TokenSummary>> ListAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var tokens = await db.ApiTokens.AsNoTracking().OrderByDescending(t => t.CreatedAt).ToListAsync(ct);
        return [.. tokens.Select(t => Summary(t, now))];
    }

    public async Task<TokenSummary> RevokeAsync(Guid id, Actor by, CancellationToken ct)
    {
        // The row lock makes concurrent revokes queue: the first records token.revoked, the others find it revoked.
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var locked = await db.Database.SqlQuery<Guid>($"SELECT id AS \"Value\" FROM api_tokens WHERE id = {id} FOR UPDATE").ToListAsync(ct);
        if (locked.Count == 0) throw DomainException.NotFound($"There is no API token with id {id}.");
        var token = await db.ApiTokens.SingleAsync(t => t.Id == id, ct);
        var now = time.GetUtcNow();
        if (token.Revoke(by, now)) await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return Summary(token, now);
    }

    private static TokenSummary Summary(ApiToken t, DateTimeOffset now) =>
        new(t.Id, t.Name, t.Role.ToString(), t.CreatedAt, t.CreatedBy, t.ExpiresAt, t.LastUsedAt, t.RevokedAt, t.IsUsable(now), t.Owner);
}
