using System.Globalization;
using System.Text;

namespace ControlPlane.Core.Audit;

/// <summary>
/// A signed statement "the audit chain's event <see cref="Sequence"/> has hash <see cref="Hash"/>", made with a key kept
/// outside PostgreSQL. Every audited save signs the new head in the same transaction (so every genuine event is covered by
/// a checkpoint); the newest one is also written, periodically, where the database cannot reach (log, file, export).
/// </summary>
public sealed class AuditCheckpoint
{
    public const string Format = "controlplane-audit-checkpoint/v1";

    public long Sequence { get; set; }
    public string Hash { get; set; } = "";
    public DateTimeOffset SignedAt { get; set; }

    /// <summary>The first 16 hex digits of the SHA-256 of the public key (SubjectPublicKeyInfo, DER).</summary>
    public string KeyId { get; set; } = "";

    /// <summary>ECDSA P-256 / SHA-256 over <see cref="Payload"/>, DER-encoded, base64 (what <c>openssl dgst -verify</c> reads).</summary>
    public string Signature { get; set; } = "";

    public string SignedAtText => SignedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>The signed bytes: five lines joined by '\n', no trailing newline.</summary>
    public byte[] Payload() => Encoding.UTF8.GetBytes(string.Join('\n',
        Format, Sequence.ToString(CultureInfo.InvariantCulture), Hash, SignedAtText, KeyId));

    public AuditCheckpointDto ToDto() => new(Sequence, Hash, SignedAtText, KeyId, Signature);
}

/// <summary>The portable form (API, log, export header, checkpoint file): what an auditor keeps.</summary>
public sealed record AuditCheckpointDto(long Sequence, string Hash, string SignedAt, string KeyId, string Signature)
{
    /// <summary>Null when <see cref="SignedAt"/> is not the exact timestamp format that was signed.</summary>
    public AuditCheckpoint? ToCheckpoint() =>
        DateTimeOffset.TryParseExact(SignedAt, "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)
            ? new AuditCheckpoint { Sequence = Sequence, Hash = Hash, SignedAt = at, KeyId = KeyId, Signature = Signature }
            : null;
}
