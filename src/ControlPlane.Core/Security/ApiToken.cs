using System.Security.Cryptography;
using System.Text;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Security;

/// <summary>A bearer token for scripts and CI. Only its SHA-256 hash is stored; the token itself is shown once.</summary>
public sealed class ApiToken : IRecordsAuditEvents
{
    public const string Prefix = "cp_";
    private readonly List<AuditEvent> _pendingAuditEvents = [];

    private ApiToken() { }

    public Guid Id { get; private set; }
    public string Name { get; private set; } = "";
    public Role Role { get; private set; }
    public string TokenHash { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }
    public string CreatedBy { get; private set; } = "";

    /// <summary>
    /// The person (local user name) this token acts as; null for a machine identity named after the token. The token's
    /// role never counts for more than the owner's current role.
    /// </summary>
    public string? Owner { get; private set; }
    public DateTimeOffset? ExpiresAt { get; private set; }
    public DateTimeOffset? LastUsedAt { get; private set; }
    public DateTimeOffset? RevokedAt { get; private set; }

    public IReadOnlyList<AuditEvent> PendingAuditEvents => _pendingAuditEvents;
    public void ClearPendingAuditEvents() => _pendingAuditEvents.Clear();

    /// <summary>Creates a token; the returned secret is the only time the plain token exists.</summary>
    public static (ApiToken Token, string Secret) Issue(string name, Role role, Actor by, DateTimeOffset now, DateTimeOffset? expiresAt = null,
        string? owner = null)
    {
        var secret = Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var token = new ApiToken
        {
            Id = Guid.CreateVersion7(now),
            Name = name,
            Role = role,
            TokenHash = Hash(secret),
            CreatedAt = now,
            CreatedBy = by.Name,
            ExpiresAt = expiresAt,
            Owner = owner,
        };
        token._pendingAuditEvents.Add(AuditEvent.Create(by, "token.created", now, after: role.ToString(),
            details: System.Text.Json.JsonSerializer.Serialize(new { name, role = role.ToString(), owner, expiresAt })));
        return (token, secret);
    }

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Revokes the token: it is refused from its next request on. Revoking twice changes nothing.</summary>
    public bool Revoke(Actor by, DateTimeOffset now, string? reason = null)
    {
        if (RevokedAt is not null) return false;
        RevokedAt = now;
        _pendingAuditEvents.Add(AuditEvent.Create(by, "token.revoked", now, before: Role.ToString(), after: "revoked", reason: reason,
            details: System.Text.Json.JsonSerializer.Serialize(new { id = Id, name = Name, role = Role.ToString(), owner = Owner })));
        return true;
    }

    public bool IsUsable(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);

    /// <summary>Records use at most once a minute, so a busy CI token does not write on every request.</summary>
    public bool TouchLastUsed(DateTimeOffset now)
    {
        if (LastUsedAt is { } last && now - last < TimeSpan.FromMinutes(1)) return false;
        LastUsedAt = now;
        return true;
    }
}
