using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ControlPlane.Core.Audit;

/// <summary>The hash chain: each event's hash covers its own fields and the previous event's hash.</summary>
public static class AuditHash
{
    /// <summary>The previous-hash of the very first event.</summary>
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    public static DateTimeOffset TruncateToMicroseconds(DateTimeOffset at)
    {
        var utc = at.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - utc.Ticks % 10, TimeSpan.Zero);
    }

    public static string Compute(AuditEvent e)
    {
        // A JSON array is an unambiguous canonical encoding: no field can bleed into the next.
        var canonical = JsonSerializer.Serialize(new object?[]
        {
            e.Sequence,
            e.OccurredAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            e.Actor, e.ActorKind.ToString(), e.SourceIp, e.Action, e.Application,
            e.DeploymentId?.ToString("D"), e.BeforeState, e.AfterState, e.Reason, e.Details, e.PreviousHash,
        });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }
}
