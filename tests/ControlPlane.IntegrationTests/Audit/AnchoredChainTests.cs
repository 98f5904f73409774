using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ControlPlane.IntegrationTests.Audit;

/// <summary>
/// A database superuser rewrites history the careful way — recomputing every hash — and verify still names the first
/// event it can no longer vouch for, thanks to checkpoints signed with a key PostgreSQL never sees.
/// </summary>
public sealed class AnchoredChainTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;
    private HttpClient _auditor = null!;
    private long _head;

    public async ValueTask InitializeAsync()
    {
        _factory = await ControlPlaneAppFactory.StartAsync(postgres);
        using var admin = _factory.Admin();
        // One save each: one event and one checkpoint of the head each.
        for (var i = 0; i < 6; i++)
            (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = $"t{i}", role = "Viewer" }, Ct)).EnsureSuccessStatusCode();
        _auditor = await _factory.ClientWithRoleAsync("audrey", "Auditor");
        var ok = await _auditor.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(ok.GetProperty("valid").GetBoolean(), ok.ToString());
        _head = ok.GetProperty("events").GetInt64();
        Assert.Equal(_head, ok.GetProperty("checkpoints").GetProperty("vouchedThrough").GetInt64());
    }

    public async ValueTask DisposeAsync()
    {
        _auditor.Dispose();
        await _factory.DisposeAsync();
    }

    [Fact]
    public async Task A_forged_event_appended_with_a_recomputed_hash_is_reported()
    {
        var head = await EventAsync(_head);
        var forged = new AuditEvent
        {
            Sequence = _head + 1, OccurredAt = head.OccurredAt.AddSeconds(1), Actor = "alice", ActorKind = head.ActorKind,
            Action = "deployment.approved", Application = "demo-shop", Reason = "looks good", PreviousHash = head.Hash,
        };
        forged.Hash = AuditHash.Compute(forged);
        await using (var db = SuperUserContext())
        {
            db.AuditEvents.Add(forged);
            // The DBA even signs a checkpoint for it — with a key of their own.
            using var ownKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var fake = new AuditCheckpoint { Sequence = forged.Sequence, Hash = forged.Hash, SignedAt = DateTimeOffset.UtcNow, KeyId = KeyId };
            fake.Signature = Convert.ToBase64String(ownKey.SignData(fake.Payload(), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
            db.AuditCheckpoints.Add(fake);
            await db.SaveChangesAsync(Ct);
        }

        AssertInvalidFrom(await _auditor.GetJsonAsync("/api/v1/audit/verify"), _head + 1);

        // ControlPlane keeps working but does not build its signatures on the forged head (that would vouch for it).
        using var admin = _factory.Admin();
        (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = "after-forgery", role = "Viewer" }, Ct)).EnsureSuccessStatusCode();
        var verify = await _auditor.GetJsonAsync("/api/v1/audit/verify");
        AssertInvalidFrom(verify, _head + 1);
        Assert.Equal(_head + 2, verify.GetProperty("events").GetInt64());
    }

    [Fact]
    public async Task The_newest_events_deleted_with_their_checkpoints_are_reported_from_the_file_and_from_the_auditors_copy()
    {
        // What the auditor kept earlier, and what the checkpoint file under the data directory holds.
        var kept = await _auditor.GetJsonAsync("/api/v1/audit/checkpoints?limit=1");
        await _factory.Services.GetRequiredService<AuditCheckpointPublisher>().PublishAsync(Ct);

        await ExecuteAsync($"""
            ALTER TABLE audit_events DISABLE TRIGGER ALL; ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL;
            DELETE FROM audit_events WHERE sequence > {_head - 3}; DELETE FROM audit_checkpoints WHERE sequence > {_head - 3};
            ALTER TABLE audit_events ENABLE TRIGGER ALL; ALTER TABLE audit_checkpoints ENABLE TRIGGER ALL;
            """);

        var fromFile = await _auditor.GetJsonAsync("/api/v1/audit/verify");
        AssertInvalidFrom(fromFile, _head - 2, "truncated");

        File.Delete(_factory.Services.GetRequiredService<AuditCheckpointFile>().Path); // the file is gone too
        var databaseOnly = await _auditor.GetJsonAsync("/api/v1/audit/verify");
        Assert.True(databaseOnly.GetProperty("valid").GetBoolean(), "without an outside copy a clean cut is invisible: " + databaseOnly);

        var response = await _auditor.PostAsJsonAsync("/api/v1/audit/verify", new { checkpoints = kept.GetProperty("items") }, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertInvalidFrom(await response.Content.ReadFromJsonAsync<JsonElement>(Ct), _head - 2, "truncated");
    }

    [Fact]
    public async Task Event_n_rewritten_and_the_rest_rehashed_is_reported_from_n()
    {
        var n = _head - 2;
        await RewriteAndRehashAsync(n);
        AssertInvalidFrom(await _auditor.GetJsonAsync("/api/v1/audit/verify"), n, "rewritten");
    }

    [Fact]
    public async Task Rewriting_the_checkpoints_table_to_match_does_not_help()
    {
        var n = _head - 2;
        var hashes = await RewriteAndRehashAsync(n);
        // The DBA makes every checkpoint agree with the new hashes; they cannot re-sign them.
        var updates = string.Join("\n", hashes.Select(h => $"UPDATE audit_checkpoints SET hash = '{h.Value}' WHERE sequence = {h.Key};"));
        await ExecuteAsync($"ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL;\n{updates}\nALTER TABLE audit_checkpoints ENABLE TRIGGER ALL;");
        AssertInvalidFrom(await _auditor.GetJsonAsync("/api/v1/audit/verify"), n);

        // Or removes the checkpoints that no longer fit.
        await ExecuteAsync($"ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL; DELETE FROM audit_checkpoints WHERE sequence >= {n}; ALTER TABLE audit_checkpoints ENABLE TRIGGER ALL;");
        AssertInvalidFrom(await _auditor.GetJsonAsync("/api/v1/audit/verify"), n);
    }

    [Fact]
    public async Task A_supplied_checkpoint_that_was_altered_is_refused_naming_it()
    {
        var kept = await _auditor.GetJsonAsync("/api/v1/audit/checkpoints?limit=2");
        var items = JsonSerializer.Deserialize<List<Dictionary<string, JsonElement>>>(kept.GetProperty("items").GetRawText())!;
        items[1]["sequence"] = JsonSerializer.SerializeToElement(items[1]["sequence"].GetInt64() + 1);
        var response = await _auditor.PostAsJsonAsync("/api/v1/audit/verify", new { checkpoints = items }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(problem.GetProperty("errors").TryGetProperty("checkpoints[1]", out _), problem.ToString());
    }

    [Fact]
    public async Task Checkpoints_are_published_outside_the_database_and_verify_with_the_public_key_alone()
    {
        var published = await _factory.Services.GetRequiredService<AuditCheckpointPublisher>().PublishAsync(Ct);
        Assert.Equal(_head, published!.Sequence);
        var line = File.ReadLines(_factory.Services.GetRequiredService<AuditCheckpointFile>().Path).Last();
        var fromFile = JsonSerializer.Deserialize<AuditCheckpointDto>(line, JsonSerializerOptions.Web)!;
        Assert.Equal(_head, fromFile.Sequence);

        var export = await _auditor.GetAsync("/api/v1/audit/export?format=jsonl", Ct);
        var header = JsonSerializer.Deserialize<AuditCheckpointDto>(export.Headers.GetValues("X-ControlPlane-Audit-Checkpoint").Single(), JsonSerializerOptions.Web)!;
        Assert.Equal(_head, header.Sequence);

        // An auditor needs nothing but the public key: the signature covers the documented payload.
        var keyInfo = await _auditor.GetJsonAsync("/api/v1/audit/checkpoints?limit=1");
        using var publicKey = ECDsa.Create();
        publicKey.ImportFromPem(keyInfo.GetProperty("publicKey").GetString());
        var payload = System.Text.Encoding.UTF8.GetBytes(
            $"controlplane-audit-checkpoint/v1\n{header.Sequence}\n{header.Hash}\n{header.SignedAt}\n{header.KeyId}");
        Assert.True(publicKey.VerifyData(payload, Convert.FromBase64String(header.Signature), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        Assert.False(publicKey.VerifyData(payload[..^1], Convert.FromBase64String(header.Signature), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
    }

    [Fact]
    public async Task Only_auditors_and_admins_read_checkpoints_or_verify()
    {
        using var viewer = await _factory.ClientWithRoleAsync("vera", "ReleaseManager");
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/v1/audit/checkpoints", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync("/api/v1/audit/verify", new { checkpoints = Array.Empty<object>() }, Ct)).StatusCode);
        using var anonymous = _factory.ClientWithToken(null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/audit/checkpoints", Ct)).StatusCode);
    }

    private string KeyId => _factory.Services.GetRequiredService<AuditCheckpointKey>().KeyId;

    private static void AssertInvalidFrom(JsonElement verify, long sequence, string? reason = null)
    {
        Assert.False(verify.GetProperty("valid").GetBoolean(), verify.ToString());
        Assert.Equal(sequence, verify.GetProperty("firstInvalidSequence").GetInt64());
        if (reason is not null) Assert.Equal(reason, verify.GetProperty("reason").GetString());
    }

    /// <summary>Rewrites event n's reason and recomputes the hash of n and of every later event; returns the new hashes.</summary>
    private async Task<Dictionary<long, string>> RewriteAndRehashAsync(long n)
    {
        await using var db = SuperUserContext();
        var events = await db.AuditEvents.AsNoTracking().Where(e => e.Sequence >= n - 1).OrderBy(e => e.Sequence).ToListAsync(Ct);
        var previous = events[0].Hash;
        var sql = new List<string> { "ALTER TABLE audit_events DISABLE TRIGGER ALL;" };
        var hashes = new Dictionary<long, string>();
        foreach (var e in events.Skip(1))
        {
            if (e.Sequence == n) e.Reason = "nothing to see here";
            e.PreviousHash = previous;
            e.Hash = previous = AuditHash.Compute(e);
            hashes[e.Sequence] = e.Hash;
            sql.Add($"UPDATE audit_events SET reason = {(e.Reason is null ? "NULL" : $"'{e.Reason.Replace("'", "''")}'")}, " +
                    $"previous_hash = '{e.PreviousHash}', hash = '{e.Hash}' WHERE sequence = {e.Sequence};");
        }
        sql.Add("ALTER TABLE audit_events ENABLE TRIGGER ALL;");
        await ExecuteAsync(string.Join("\n", sql));
        var chainOnly = await _auditor.GetJsonAsync("/api/v1/audit/verify");
        // Re-hashed with care: the chain on its own is consistent again; only the checkpoints can tell.
        Assert.NotEqual("chain-broken", chainOnly.GetProperty("reason").GetString());
        return hashes;
    }

    private async Task<AuditEvent> EventAsync(long sequence)
    {
        await using var db = SuperUserContext();
        return await db.AuditEvents.AsNoTracking().SingleAsync(e => e.Sequence == sequence, Ct);
    }

    private ControlPlaneDbContext SuperUserContext() =>
        new(new DbContextOptionsBuilder<ControlPlaneDbContext>().UseNpgsql(_factory.ConnectionString).Options);

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_factory.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(Ct);
    }
}
