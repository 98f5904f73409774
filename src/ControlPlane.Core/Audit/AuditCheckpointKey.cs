using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Audit;

/// <summary>Bound from <c>ControlPlane:Audit</c>.</summary>
public sealed class AuditOptions
{
    public const string Section = "ControlPlane:Audit";

    /// <summary>The checkpoint signing key (PKCS#8 PEM); default <c>&lt;DataDirectory&gt;/audit/checkpoint-key.pem</c>.</summary>
    public string? CheckpointKeyPath { get; set; }

    /// <summary>The append-only checkpoint file to ship elsewhere; default <c>&lt;DataDirectory&gt;/audit/checkpoints.jsonl</c>.</summary>
    public string? CheckpointFile { get; set; }

    /// <summary>How often the newest checkpoint is written to the log and the checkpoint file (when the head moved).</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    public string KeyPath(ControlPlaneOptions cp) => Path.GetFullPath(CheckpointKeyPath ?? Path.Combine(cp.FullDataDirectory, "audit", "checkpoint-key.pem"));
    public string FilePath(ControlPlaneOptions cp) => Path.GetFullPath(CheckpointFile ?? Path.Combine(cp.FullDataDirectory, "audit", "checkpoints.jsonl"));
}

/// <summary>
/// The checkpoint signing key: ECDSA P-256, kept in a file outside PostgreSQL (created on first start). Asymmetric on
/// purpose: an auditor verifies checkpoints with the public key alone and so can never forge one, and a key that can only
/// verify may be handed to anyone. A database superuser who rewrites rows and re-hashes the chain cannot sign.
/// </summary>
public sealed class AuditCheckpointKey : IDisposable
{
    private readonly ECDsa _key;
    private readonly Lock _gate = new();

    private AuditCheckpointKey(ECDsa key, string path)
    {
        _key = key;
        Path = path;
        var spki = key.ExportSubjectPublicKeyInfo();
        KeyId = Convert.ToHexStringLower(SHA256.HashData(spki))[..16];
        PublicKeyPem = key.ExportSubjectPublicKeyInfoPem();
    }

    public string Path { get; }
    public string KeyId { get; }
    public string PublicKeyPem { get; }

    /// <summary>Loads the key at <paramref name="path"/>, creating it (mode 0600, with a <c>.pub.pem</c> beside it) when absent.</summary>
    public static AuditCheckpointKey LoadOrCreate(string path, ILogger logger)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
            else Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var key = ECDsa.Create();
        if (!File.Exists(path))
        {
            key.GenerateKey(ECCurve.NamedCurves.nistP256);
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using (var writer = new StreamWriter(path, new System.Text.UTF8Encoding(false), options))
                    writer.Write(key.ExportPkcs8PrivateKeyPem());
                File.WriteAllText(path + ".pub", key.ExportSubjectPublicKeyInfoPem());
                var created = new AuditCheckpointKey(key, path);
                logger.LogWarning("Created the audit checkpoint signing key {Path} (key id {KeyId}). Back it up and keep it away from the " +
                    "database; give auditors its public key ({PublicPath}).", path, created.KeyId, path + ".pub");
                return created;
            }
            catch (IOException) when (File.Exists(path))
            {
                key.Dispose(); // another process created it first: use theirs
                key = ECDsa.Create();
            }
        }
        try
        {
            key.ImportFromPem(File.ReadAllText(path));
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException($"The audit checkpoint key {path} is not an EC private key in PEM form: {ex.Message}", ex);
        }
        var loaded = new AuditCheckpointKey(key, path);
        if (!File.Exists(path + ".pub")) File.WriteAllText(path + ".pub", loaded.PublicKeyPem);
        return loaded;
    }

    public AuditCheckpoint Sign(long sequence, string hash, DateTimeOffset at)
    {
        var checkpoint = new AuditCheckpoint { Sequence = sequence, Hash = hash, SignedAt = AuditHash.TruncateToMicroseconds(at), KeyId = KeyId };
        lock (_gate)
            checkpoint.Signature = Convert.ToBase64String(_key.SignData(checkpoint.Payload(), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        return checkpoint;
    }

    /// <summary>
    /// Signs other statements with the same key (an evidence bundle's manifest), base64 DER like checkpoints. They cannot be
    /// taken for a checkpoint: a checkpoint payload begins with its format line, a manifest with '{'.
    /// </summary>
    public string SignDocument(byte[] document)
    {
        lock (_gate)
            return Convert.ToBase64String(_key.SignData(document, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
    }

    /// <summary>True when this key made the signature over exactly these fields.</summary>
    public bool Verify(AuditCheckpoint checkpoint)
    {
        if (checkpoint.KeyId != KeyId) return false;
        var signature = new byte[checkpoint.Signature.Length];
        if (!Convert.TryFromBase64String(checkpoint.Signature, signature, out var length)) return false;
        lock (_gate)
            return _key.VerifyData(checkpoint.Payload(), signature.AsSpan(0, length), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    public void Dispose() => _key.Dispose();
}
