using System.Data;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Audit;

/// <summary>What the checkpoints contributed to a verification.</summary>
/// <param name="VouchedThrough">The highest sequence a genuine checkpoint (signed by <paramref name="KeyId"/>) vouches for.</param>
public sealed record AuditCheckpointSummary(string KeyId, int Database, int File, int Supplied, long VouchedThrough);

/// <param name="Reason">
/// Why it is invalid: <c>chain-broken</c> (an event does not fit its neighbours), <c>rewritten</c> (a genuine checkpoint
/// disagrees with the event it names), <c>truncated</c> (a genuine checkpoint names an event that is gone),
/// <c>unanchored</c> (events no genuine checkpoint covers: appended without the key, or their checkpoints were removed),
/// <c>forged-checkpoint</c> (a checkpoint whose signature does not verify).
/// </param>
public sealed record AuditVerification(bool Valid, long Events, long? FirstInvalidSequence, string? Problem,
    string? Reason = null, AuditCheckpointSummary? Checkpoints = null);

/// <summary>
/// Recomputes the hash chain over the whole trail and checks it against the signed checkpoints — those in the database,
/// those in the checkpoint file under the data directory and those an auditor supplies — and names the first sequence it
/// can no longer vouch for. The chain alone proves only internal consistency: whoever can write the table can re-hash it.
/// A genuine checkpoint (signed by a key PostgreSQL never sees) fixes the hash of one event, and through the chain every
/// event before it.
/// </summary>
public sealed class AuditVerifier(ControlPlaneDbContext db, AuditCheckpointKey? key = null, AuditCheckpointFile? file = null,
    AuditTrailReader? trail = null)
{
    private readonly AuditTrailReader _trail = trail ?? new AuditTrailReader(db);

    private const int Batch = 500;

    private sealed record Finding(long? Sequence, string Reason, string Text);

    public Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken) => VerifyAsync([], cancellationToken);

    /// <param name="supplied">Checkpoints the auditor kept (already checked to carry this key's signature).</param>
    public async Task<AuditVerification> VerifyAsync(IReadOnlyList<AuditCheckpoint> supplied, CancellationToken cancellationToken)
    {
        // One snapshot for the events and the checkpoints: a save commits its events and its checkpoint together.
        await using var transaction = db.Database.CurrentTransaction is null
            ? await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken)
            : null;
        var findings = new List<Finding>();
        var (events, head) = await VerifyChainAsync(findings, cancellationToken);
        if (key is null)
            return Result(events, findings, null);

        var external = new List<AuditCheckpoint>();
        var fromFile = 0;
        foreach (var (line, dto) in file?.ReadAll() ?? [])
        {
            var checkpoint = dto?.ToCheckpoint();
            if (checkpoint is null || !key.Verify(checkpoint))
                findings.Add(new(null, "forged-checkpoint",
                    $"line {line} of the checkpoint file {file!.Path} is not a checkpoint signed with key {key.KeyId}"));
            else { external.Add(checkpoint); fromFile++; }
        }
        external.AddRange(supplied.Where(key.Verify));

        // External checkpoints: each one either matches the event it names, names an event that is gone, or disagrees.
        var externalMatching = new List<long>();
        var disagreeing = new List<AuditCheckpoint>();
        foreach (var chunk in external.Chunk(Batch))
        {
            var sequences = chunk.Select(c => c.Sequence).Distinct().ToArray();
            var stored = await db.AuditEvents.AsNoTracking().Where(e => sequences.Contains(e.Sequence))
                .Select(e => new { e.Sequence, e.Hash }).ToDictionaryAsync(e => e.Sequence, e => e.Hash, cancellationToken);
            foreach (var c in chunk)
            {
                if (stored.TryGetValue(c.Sequence, out var hash) && hash == c.Hash) externalMatching.Add(c.Sequence);
                else disagreeing.Add(c);
            }
        }
        foreach (var c in disagreeing.OrderBy(c => c.Sequence).Take(1))
            findings.Add(await DisagreementAsync(c, head, externalMatching, "kept outside the database", cancellationToken));

        // Database checkpoints that disagree with the event they name: the lowest genuine one says where history changed.
        var mismatched = await db.AuditCheckpoints.AsNoTracking()
            .Where(c => !db.AuditEvents.Any(e => e.Sequence == c.Sequence && e.Hash == c.Hash))
            .OrderBy(c => c.Sequence).Take(Batch).ToListAsync(cancellationToken);
        foreach (var c in mismatched)
        {
            if (key.Verify(c))
            {
                findings.Add(await DisagreementAsync(c, head, externalMatching, "in the database", cancellationToken));
                break;
            }
            findings.Add(new(c.Sequence, "forged-checkpoint",
                $"the checkpoint row for event {c.Sequence} does not carry a valid signature of key {key.KeyId}: the checkpoints table was altered"));
        }

        // Every event must be covered by a genuine checkpoint at or after it.
        var vouched = await VouchedBelowAsync(head + 1, externalMatching, cancellationToken);
        if (vouched < head)
            findings.Add(new(vouched + 1, "unanchored",
                $"events {vouched + 1}..{head} are not covered by any checkpoint signed with key {key.KeyId} " +
                (vouched == 0 ? "" : $"(the last genuine one vouches for event {vouched}) ") +
                "— they were added without the key, or their checkpoints were removed"));

        var dbCount = await db.AuditCheckpoints.CountAsync(cancellationToken);
        return Result(events, findings, new AuditCheckpointSummary(key.KeyId, dbCount, fromFile, supplied.Count, vouched));
    }

    private async Task<(long Events, long Head)> VerifyChainAsync(List<Finding> findings, CancellationToken cancellationToken)
    {
        var previous = AuditHash.Genesis;
        long expectedSequence = 0, count = 0, head = 0;
        var broken = false;
        // Streamed in sequence order through the export's read path: constant memory however long the trail is.
        await foreach (var e in _trail.ReadEventsAsync(db.AuditEvents.AsNoTracking(), cancellationToken))
        {
            count++;
            head = e.Sequence;
            if (broken) continue;
            string? problem = null;
            if (e.Sequence != ++expectedSequence)
                problem = $"sequence {expectedSequence} is missing (next found is {e.Sequence})";
            else if (e.PreviousHash != previous)
                problem = $"event {e.Sequence} does not link to the hash of event {e.Sequence - 1}";
            else if (AuditHash.Compute(e) != e.Hash)
                problem = $"event {e.Sequence} was altered after it was written (its content no longer matches its hash)";
            if (problem is not null)
            {
                findings.Add(new(Math.Min(e.Sequence, expectedSequence), "chain-broken", problem));
                broken = true;
            }
            previous = e.Hash;
        }
        return (count, head);
    }

    private async Task<Finding> DisagreementAsync(AuditCheckpoint c, long head, List<long> externalMatching, string where,
        CancellationToken cancellationToken)
    {
        var signed = $"a checkpoint {where}, signed {c.SignedAtText} with key {c.KeyId},";
        if (c.Sequence > head)
            return new(head + 1, "truncated",
                $"{signed} vouches for event {c.Sequence} but the trail ends at {head}: events from {head + 1} were removed");
        var vouched = await VouchedBelowAsync(c.Sequence, externalMatching, cancellationToken);
        return new(vouched + 1, "rewritten",
            $"{signed} gives event {c.Sequence} the hash {c.Hash[..Math.Min(12, c.Hash.Length)]}…, which the stored trail no longer has: " +
            $"history after event {vouched} was rewritten");
    }

    /// <summary>The highest sequence below <paramref name="limit"/> that a genuine checkpoint matching the trail vouches for.</summary>
    private async Task<long> VouchedBelowAsync(long limit, List<long> externalMatching, CancellationToken cancellationToken)
    {
        var best = externalMatching.Where(s => s < limit).DefaultIfEmpty(0).Max();
        var cursor = limit;
        while (cursor > best)
        {
            var upper = cursor;
            var page = await db.AuditCheckpoints.AsNoTracking()
                .Where(c => c.Sequence < upper && c.Sequence > best && db.AuditEvents.Any(e => e.Sequence == c.Sequence && e.Hash == c.Hash))
                .OrderByDescending(c => c.Sequence).Take(Batch).ToListAsync(cancellationToken);
            if (page.Count == 0) break;
            if (page.FirstOrDefault(key!.Verify) is { } genuine) return genuine.Sequence;
            cursor = page[^1].Sequence;
        }
        return best;
    }

    private static AuditVerification Result(long events, List<Finding> findings, AuditCheckpointSummary? checkpoints)
    {
        if (findings.Count == 0) return new(true, events, null, null, null, checkpoints);
        // The earliest finding decides; on a tie the first found (the more specific) names the reason.
        var first = findings.Where(f => f.Sequence is not null).MinBy(f => f.Sequence) ?? findings[0];
        var also = findings.Where(f => f != first && f.Reason != first.Reason).DistinctBy(f => f.Reason).Select(f => f.Text).ToList();
        var text = also.Count == 0 ? first.Text : $"{first.Text}. Also: {string.Join("; ", also)}";
        return new(false, events, first.Sequence, text, first.Reason, checkpoints);
    }
}
