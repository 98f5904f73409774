using ControlPlane.Core;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Security;

public sealed record TokenSummary(Guid Id, string Name, string Role, DateTimeOffset CreatedAt, string CreatedBy,
    DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt, bool Usable);

/// <summary>API token administration for the admin page and the tokens API alike. The secret exists only in the result of Issue.</summary>
public sealed class TokenAdministration(ControlPlaneDbContext db, TimeProvider time)
{
    public async Task<(TokenSummary Token, string Secret)> IssueAsync(string? name, string? role, DateTimeOffset? expiresAt, Actor by, CancellationToken ct)
    {
        var errors = new List<SettingsError>();
        if (string.IsNullOrWhiteSpace(name) || name.Trim().Length > 64) errors.Add(new("name", "is required (at most 64 characters)"));
        if (!Enum.TryParse<Role>(role, ignoreCase: false, out var parsed) || !Enum.IsDefined(parsed))
            errors.Add(new("role", $"must be one of: {string.Join(", ", Enum.GetNames<Role>())}"));
        var now = time.GetUtcNow();
        if (expiresAt is { } exp && exp <= now) errors.Add(new("expiresAt", "must be in the future"));
        if (errors.Count > 0) throw new ValidationException(errors);

        var (token, secret) = ApiToken.Issue(name!.Trim(), parsed, by, now, expiresAt);
        db.ApiTokens.Add(token);
        await db.SaveChangesAsync(ct);
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
        var token = await db.ApiTokens.SingleOrDefaultAsync(t => t.Id == id, ct)
            ?? throw DomainException.NotFound($"There is no API token with id {id}.");
        var now = time.GetUtcNow();
        if (token.Revoke(by, now)) await db.SaveChangesAsync(ct);
        return Summary(token, now);
    }

    private static TokenSummary Summary(ApiToken t, DateTimeOffset now) =>
        new(t.Id, t.Name, t.Role.ToString(), t.CreatedAt, t.CreatedBy, t.ExpiresAt, t.LastUsedAt, t.RevokedAt, t.IsUsable(now));
}
