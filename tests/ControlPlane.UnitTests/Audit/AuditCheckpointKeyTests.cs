using ControlPlane.Core.Audit;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.UnitTests.Audit;

public sealed class AuditCheckpointKeyTests : IDisposable
{
    private static readonly DateTimeOffset At = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);
    private const string Hash = "3f0c8a1e5b7d9f2a4c6e8b0d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a";
    private readonly string _directory = Directory.CreateTempSubdirectory("cp-key-").FullName;

    private string KeyPath => Path.Combine(_directory, "audit", "checkpoint-key.pem");

    [Fact]
    public void A_checkpoint_verifies_only_with_every_signed_field_unchanged()
    {
        using var key = AuditCheckpointKey.LoadOrCreate(KeyPath, NullLogger.Instance);
        var checkpoint = key.Sign(42, Hash, At);
        Assert.True(key.Verify(checkpoint));

        Assert.False(key.Verify(Copy(checkpoint, c => c.Sequence = 43)));
        Assert.False(key.Verify(Copy(checkpoint, c => c.Hash = Hash.Replace('3', '4'))));
        Assert.False(key.Verify(Copy(checkpoint, c => c.SignedAt = At.AddSeconds(1))));
        Assert.False(key.Verify(Copy(checkpoint, c => c.Signature = "not base64!")));
        Assert.False(key.Verify(Copy(checkpoint, c => c.KeyId = "0000000000000000")));
    }

    [Fact]
    public void The_key_is_created_once_private_and_reloaded_and_another_key_cannot_sign_for_it()
    {
        string keyId;
        AuditCheckpoint checkpoint;
        using (var created = AuditCheckpointKey.LoadOrCreate(KeyPath, NullLogger.Instance))
        {
            (keyId, checkpoint) = (created.KeyId, created.Sign(7, Hash, At));
        }
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyPath));
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", File.ReadAllText(KeyPath + ".pub"));

        using var reloaded = AuditCheckpointKey.LoadOrCreate(KeyPath, NullLogger.Instance);
        Assert.Equal(keyId, reloaded.KeyId);
        Assert.True(reloaded.Verify(checkpoint));

        using var other = AuditCheckpointKey.LoadOrCreate(Path.Combine(_directory, "other.pem"), NullLogger.Instance);
        var forged = other.Sign(7, Hash, At);
        forged.KeyId = keyId; // claiming to be the real key does not make the signature one
        Assert.False(reloaded.Verify(forged));
    }

    [Fact]
    public void The_portable_form_round_trips_and_refuses_a_reformatted_time()
    {
        using var key = AuditCheckpointKey.LoadOrCreate(KeyPath, NullLogger.Instance);
        var dto = key.Sign(42, Hash, At.AddTicks(1234567)).ToDto();
        Assert.True(key.Verify(dto.ToCheckpoint()!));
        Assert.Null((dto with { SignedAt = "2026-03-02T09:00:00Z" }).ToCheckpoint());
    }

    private static AuditCheckpoint Copy(AuditCheckpoint c, Action<AuditCheckpoint> change)
    {
        var copy = new AuditCheckpoint { Sequence = c.Sequence, Hash = c.Hash, SignedAt = c.SignedAt, KeyId = c.KeyId, Signature = c.Signature };
        change(copy);
        return copy;
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
