using ControlPlane.Core.Audit;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Bulk-loads a hash-chained trail with binary COPY. Sequence, previous hash and hash are assigned exactly as
/// <c>ControlPlaneDbContext.ChainAsync</c> does, so <see cref="AuditVerifier"/> accepts the result.
/// </summary>
public static class AuditTrailLoader
{
    public static async Task<long> LoadAsync(NpgsqlDataSource dataSource, IEnumerable<AuditEvent> events, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var writer = await connection.BeginBinaryImportAsync(
            "COPY audit_events (sequence, occurred_at, actor, actor_kind, source_ip, action, application, deployment_id, " +
            "before_state, after_state, reason, details, previous_hash, hash) FROM STDIN (FORMAT BINARY)", cancellationToken);
        long sequence = 0;
        var previous = AuditHash.Genesis;
        foreach (var e in events)
        {
            e.Sequence = ++sequence;
            e.PreviousHash = previous;
            e.Hash = previous = AuditHash.Compute(e);

            await writer.StartRowAsync(cancellationToken);
            await writer.WriteAsync(e.Sequence, NpgsqlDbType.Bigint, cancellationToken);
            await writer.WriteAsync(e.OccurredAt, NpgsqlDbType.TimestampTz, cancellationToken);
            await writer.WriteAsync(e.Actor, NpgsqlDbType.Varchar, cancellationToken);
            await writer.WriteAsync(e.ActorKind.ToString(), NpgsqlDbType.Varchar, cancellationToken);
            await WriteNullableAsync(writer, e.SourceIp, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(e.Action, NpgsqlDbType.Varchar, cancellationToken);
            await WriteNullableAsync(writer, e.Application, NpgsqlDbType.Varchar, cancellationToken);
            if (e.DeploymentId is { } id) await writer.WriteAsync(id, NpgsqlDbType.Uuid, cancellationToken);
            else await writer.WriteNullAsync(cancellationToken);
            await WriteNullableAsync(writer, e.BeforeState, NpgsqlDbType.Text, cancellationToken);
            await WriteNullableAsync(writer, e.AfterState, NpgsqlDbType.Text, cancellationToken);
            await WriteNullableAsync(writer, e.Reason, NpgsqlDbType.Text, cancellationToken);
            await WriteNullableAsync(writer, e.Details, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(e.PreviousHash, NpgsqlDbType.Varchar, cancellationToken);
            await writer.WriteAsync(e.Hash, NpgsqlDbType.Varchar, cancellationToken);
        }
        await writer.CompleteAsync(cancellationToken);
        return sequence;
    }

    private static Task WriteNullableAsync(NpgsqlBinaryImporter writer, string? value, NpgsqlDbType type, CancellationToken cancellationToken) =>
        value is null ? writer.WriteNullAsync(cancellationToken) : writer.WriteAsync(value, type, cancellationToken);
}
