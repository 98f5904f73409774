using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Audit;

/// <summary>Filters shared by the audit list, the export and the dashboard's explorer.</summary>
public sealed record AuditFilter(string? Application = null, string? Actor = null, string? Action = null,
    DateTimeOffset? From = null, DateTimeOffset? To = null, Guid? DeploymentId = null);

public sealed record AuditPage(IReadOnlyList<AuditEvent> Items, string? NextCursor);

/// <summary>Newest-first keyset paging: the cursor is the last sequence seen, so page N costs the same as page 1.</summary>
public sealed class AuditQuery(ControlPlaneDbContext db)
{
    public const int MaxPageSize = 500;

    public IQueryable<AuditEvent> Filtered(AuditFilter f)
    {
        var q = db.AuditEvents.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(f.Application)) q = q.Where(e => e.Application == f.Application);
        if (!string.IsNullOrWhiteSpace(f.Actor)) q = q.Where(e => e.Actor == f.Actor);
        if (!string.IsNullOrWhiteSpace(f.Action)) q = q.Where(e => e.Action == f.Action);
        if (f.DeploymentId is { } id) q = q.Where(e => e.DeploymentId == id);
        // occurred_at never decreases along the chain, so a time window is a sequence range whose two ends are single
        // index probes; without the bounds PostgreSQL would walk the primary key from the newest event backwards.
        // timestamptz parameters must be UTC (Npgsql refuses any other offset); the instant is the same.
        if (f.From?.ToUniversalTime() is { } from)
            q = q.Where(e => e.OccurredAt >= from && e.Sequence >= db.AuditEvents.Where(x => x.OccurredAt >= from)
                .OrderBy(x => x.OccurredAt).ThenBy(x => x.Sequence).Select(x => (long?)x.Sequence).FirstOrDefault());
        if (f.To?.ToUniversalTime() is { } to)
            q = q.Where(e => e.OccurredAt < to && e.Sequence <= db.AuditEvents.Where(x => x.OccurredAt < to)
                .OrderByDescending(x => x.OccurredAt).ThenByDescending(x => x.Sequence).Select(x => (long?)x.Sequence).FirstOrDefault());
        return q;
    }

    public async Task<AuditPage> PageAsync(AuditFilter filter, int limit, long? before, CancellationToken cancellationToken)
    {
        var q = Filtered(filter);
        if (before is { } b) q = q.Where(e => e.Sequence < b);
        var items = await q.OrderByDescending(e => e.Sequence).Take(limit + 1).ToListAsync(cancellationToken);
        var next = items.Count > limit ? items[limit - 1].Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        return new(items.Take(limit).ToList(), next);
    }
}
