using System.Data;
using System.Data.Common;
using System.Runtime.CompilerServices;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace ControlPlane.Core.Audit;

/// <summary>Sees the data reader of every whole-trail read (diagnostics and tests); none is registered in production.</summary>
public interface IAuditTrailObserver
{
    DbDataReader Observe(DbDataReader reader);
}

/// <summary>
/// The one read path of the whole-trail walks (the export and verify): the query EF builds from the filters (bound
/// parameters, in the context's connection and transaction) runs straight on the ADO.NET reader with sequential access,
/// oldest event first, and each row is handed on as PostgreSQL sends it. No EF materialization: at a million events its
/// per-row work (the entity, its strings, the enum conversion) and the garbage it leaves were a third of the export's CPU.
/// </summary>
public sealed class AuditTrailReader(ControlPlaneDbContext db, IAuditTrailObserver? observer = null)
{
    /// <summary>Streams <paramref name="query"/> oldest-first; the row is only valid until the next one is read.</summary>
    public async IAsyncEnumerable<AuditTrailRow> ReadAsync(IQueryable<AuditEvent> query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The projection fixes the column order, which sequential access reads in (it is also the CSV's order).
        var command = query.OrderBy(e => e.Sequence).AsSingleQuery()
            .Select(e => new
            {
                e.Sequence, e.OccurredAt, e.Actor, e.ActorKind, e.SourceIp, e.Action, e.Application, e.DeploymentId,
                e.BeforeState, e.AfterState, e.Reason, e.Details, e.PreviousHash, e.Hash,
            })
            .CreateDbCommand();
        await using var _ = command;
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            // Within the caller's transaction, if there is one (verify reads the events and checkpoints in one snapshot).
            command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            if (observer is not null) reader = observer.Observe(reader);
            await using (reader)
            {
                var row = new AuditTrailRow(reader);
                while (await reader.ReadAsync(cancellationToken))
                    yield return row;
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>The same rows as whole events (verify, the JSON-lines export).</summary>
    public async IAsyncEnumerable<AuditEvent> ReadEventsAsync(IQueryable<AuditEvent> query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var row in ReadAsync(query, cancellationToken))
            yield return row.ToEvent();
    }
}

/// <summary>
/// The current row of a trail read, its columns in <see cref="AuditTrailRow"/> ordinal order. Sequential access: each
/// column is read once, in order.
/// </summary>
public sealed class AuditTrailRow(DbDataReader reader)
{
    public const int Sequence = 0, OccurredAt = 1, Actor = 2, ActorKind = 3, SourceIp = 4, Action = 5, Application = 6,
        DeploymentId = 7, BeforeState = 8, AfterState = 9, Reason = 10, Details = 11, PreviousHash = 12, Hash = 13;

    public const int ColumnCount = 14;

    private byte[] _text = new byte[1024];

    public long GetSequence() => reader.GetInt64(Sequence);

    /// <summary>The stored instant, UTC (timestamptz).</summary>
    public DateTime GetOccurredAt() => reader.GetFieldValue<DateTime>(OccurredAt);

    public Guid? GetDeploymentId() => reader.IsDBNull(DeploymentId) ? null : reader.GetGuid(DeploymentId);

    public string? GetString(int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    /// <summary>
    /// A text column's UTF-8 bytes as PostgreSQL sent them (empty for NULL), in a buffer reused for the next column: no
    /// string and no UTF-16 round trip for a value that is written out as UTF-8 again.
    /// </summary>
    public ReadOnlySpan<byte> GetUtf8(int ordinal)
    {
        if (reader.IsDBNull(ordinal)) return [];
        var length = 0;
        while (true)
        {
            var read = (int)reader.GetBytes(ordinal, length, _text, length, _text.Length - length);
            length += read;
            if (length < _text.Length) return _text.AsSpan(0, length);
            Array.Resize(ref _text, _text.Length * 2);
        }
    }

    public AuditEvent ToEvent() => new()
    {
        Sequence = GetSequence(),
        OccurredAt = new DateTimeOffset(GetOccurredAt(), TimeSpan.Zero),
        Actor = GetString(Actor)!,
        ActorKind = Enum.Parse<Deployments.ActorKind>(GetString(ActorKind)!),
        SourceIp = GetString(SourceIp),
        Action = GetString(Action)!,
        Application = GetString(Application),
        DeploymentId = GetDeploymentId(),
        BeforeState = GetString(BeforeState),
        AfterState = GetString(AfterState),
        Reason = GetString(Reason),
        Details = GetString(Details),
        PreviousHash = GetString(PreviousHash)!,
        Hash = GetString(Hash)!,
    };
}
