using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Audit;

public sealed record AuditVerification(bool Valid, long Events, long? FirstInvalidSequence, string? Problem);

/// <summary>Recomputes the hash chain over the whole trail and names the first event that does not fit.</summary>
public sealed class AuditVerifier(ControlPlaneDbContext db)
{
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken)
    {
        var previous = AuditHash.Genesis;
        long expectedSequence = 0, count = 0;
        // Streamed in sequence order: constant memory however long the trail is.
        await foreach (var e in db.AuditEvents.AsNoTracking().OrderBy(a => a.Sequence).AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            count++;
            if (e.Sequence != ++expectedSequence)
                return new(false, count, e.Sequence, $"sequence {expectedSequence} is missing (next found is {e.Sequence})");
            if (e.PreviousHash != previous)
                return new(false, count, e.Sequence, $"event {e.Sequence} does not link to the hash of event {e.Sequence - 1}");
            if (AuditHash.Compute(e) != e.Hash)
                return new(false, count, e.Sequence, $"event {e.Sequence} was altered after it was written (its content no longer matches its hash)");
            previous = e.Hash;
        }
        return new(true, count, null, null);
    }
}
