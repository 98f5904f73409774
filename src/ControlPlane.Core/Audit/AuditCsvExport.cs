using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Core.Audit;

/// <summary>
/// The audit trail as CSV, written by PostgreSQL itself: one <c>COPY (SELECT …) TO STDOUT (FORMAT binary)</c> whose only
/// column is the finished CSV line, so .NET only strips COPY's six-byte row framing and hands the bytes to the response.
/// Materializing a million events and quoting them field by field in .NET took twice as long as <c>psql \copy</c>.
/// <para>
/// The lines are exactly what CsvHelper wrote with the injection-escaping options of the export before (RFC 4180, CRLF,
/// a field quoted when it holds a comma, quote, CR or LF; text starting with = @ + - tab or CR gets a leading apostrophe
/// and quotes, so a spreadsheet shows it as text; NULL and empty alike as an empty field; times as ISO 8601 with seven
/// fraction digits and Z). <c>AuditCsvExportTests</c> compares the two byte for byte on hostile values.
/// </para>
/// <para>
/// COPY takes no bind parameters. The filter values never enter the SQL text: they are bound parameters of a
/// <c>set_config(…, is_local: true)</c> in the same read-only transaction, and the COPY's query reads them back with
/// <c>current_setting</c>, so the statement text is one of a fixed set and no value can change what it means.
/// </para>
/// </summary>
public sealed class AuditCsvExport(ControlPlaneDbContext db)
{
    public static readonly string[] Header =
        ["sequence", "occurredAt", "actor", "actorKind", "sourceIp", "action", "application", "deploymentId", "before", "after", "reason", "details", "previousHash", "hash"];

    private static readonly byte[] HeaderLine = Encoding.UTF8.GetBytes(string.Join(',', Header) + "\r\n");

    // The eleven-byte signature of PostgreSQL's binary COPY format, then flags (4) and the header extension's length (4).
    private static readonly byte[] Signature = [.. "PGCOPY\n"u8, 0xFF, (byte)'\r', (byte)'\n', 0];

    /// <summary>
    /// One text column as CsvHelper writes a string field with <c>CsvInjection.Escape</c>: 61 = 64 @ 43 + 45 - 9 tab 13 CR
    /// start a formula. NULL falls through every branch and <c>concat</c> makes it an empty field, as an empty string is.
    /// </summary>
    private static string Cell(string column) =>
        $"""CASE WHEN ascii({column}) IN (61, 64, 43, 45, 9, 13) THEN '"''' || replace({column}, '"', '""') || '"' """ +
        $"""WHEN {column} ~ E'[",\r\n]' THEN '"' || replace({column}, '"', '""') || '"' ELSE {column} END""";

    private static readonly string Line = "concat(" + string.Join(", ',', ",
    [
        "sequence",
        // DateTime.ToString("O") of the UTC time: PostgreSQL keeps microseconds, .NET writes seven digits.
        """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"0Z"')""",
        Cell("actor"), Cell("actor_kind"), Cell("source_ip"), Cell("action"), Cell("application"),
        "deployment_id",
        Cell("before_state"), Cell("after_state"), Cell("reason"), Cell("details"), Cell("previous_hash"), Cell("hash"),
    ]) + @", E'\r\n')";

    private const string Prefix = "controlplane.audit_export_";

    public async Task WriteAsync(AuditFilter filter, Stream destination, CancellationToken cancellationToken)
    {
        var (where, settings) = Conditions(filter);
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using (var set = new NpgsqlCommand { Connection = connection, Transaction = transaction })
            {
                // Read-only as well: whatever the COPY's query did, it could not change anything.
                set.CommandText = "SELECT " + string.Join(", ", ["set_config('transaction_read_only', 'on', true)",
                    .. settings.Select((s, i) => $"set_config('{Prefix}{s.Name}', ${i + 1}::text, true)")]);
                foreach (var (_, value, type) in settings) set.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = type });
                await set.ExecuteNonQueryAsync(cancellationToken);
            }
            var sql = $"COPY (SELECT {Line} FROM audit_events{(where.Count == 0 ? "" : " WHERE " + string.Join(" AND ", where))} ORDER BY sequence) TO STDOUT (FORMAT binary)";
            await using (var copy = await connection.BeginRawBinaryCopyAsync(sql, cancellationToken))
            {
                try
                {
                    await destination.WriteAsync(HeaderLine, cancellationToken);
                    await CopyLinesAsync(copy, destination, cancellationToken);
                }
                catch
                {
                    // Disposing a COPY TO that is not finished reads the rest of it; the client is gone, so stop the query.
                    try { await copy.CancelAsync(); } catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException) { }
                    throw;
                }
            }
            await transaction.CommitAsync(cancellationToken);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>The WHERE conditions of <see cref="AuditQuery.Filtered"/>, each value read from a transaction-local setting.</summary>
    private static (List<string> Where, List<(string Name, object Value, NpgsqlDbType Type)> Settings) Conditions(AuditFilter f)
    {
        var where = new List<string>();
        var settings = new List<(string, object, NpgsqlDbType)>();
        void Text(string name, string column, string? value)
        {
            if (string.IsNullOrWhiteSpace(value)) return;
            settings.Add((name, value, NpgsqlDbType.Text));
            where.Add($"{column} = current_setting('{Prefix}{name}')");
        }
        Text("application", "application", f.Application);
        Text("actor", "actor", f.Actor);
        Text("action", "action", f.Action);
        if (f.DeploymentId is { } id)
        {
            settings.Add(("deployment_id", id, NpgsqlDbType.Uuid));
            where.Add($"deployment_id = current_setting('{Prefix}deployment_id')::uuid");
        }
        // As in AuditQuery: occurred_at never decreases along the chain, so the window's ends are single index probes.
        if (f.From is { } from)
        {
            settings.Add(("from", from.ToUniversalTime(), NpgsqlDbType.TimestampTz));
            const string value = $"current_setting('{Prefix}from')::timestamptz";
            where.Add($"occurred_at >= {value} AND sequence >= (SELECT x.sequence FROM audit_events x WHERE x.occurred_at >= {value} " +
                "ORDER BY x.occurred_at, x.sequence LIMIT 1)");
        }
        if (f.To is { } to)
        {
            settings.Add(("to", to.ToUniversalTime(), NpgsqlDbType.TimestampTz));
            const string value = $"current_setting('{Prefix}to')::timestamptz";
            where.Add($"occurred_at < {value} AND sequence <= (SELECT x.sequence FROM audit_events x WHERE x.occurred_at < {value} " +
                "ORDER BY x.occurred_at DESC, x.sequence DESC LIMIT 1)");
        }
        return (where, settings);
    }

    /// <summary>
    /// Binary COPY: the header (signature, flags, extension), then per row a field count (int16, always 1) and the line's
    /// length (int32) before its bytes, and -1 as the count after the last row. PostgreSQL sends a message per row, and a
    /// read returns at most one: the lines are gathered in the buffer, moved down over the framing, and written out once
    /// it is nearly full (a write per row cost more CPU than the whole per-event export).
    /// </summary>
    private static async Task CopyLinesAsync(Stream copy, Stream destination, CancellationToken cancellationToken)
    {
        var header = new byte[19];
        await copy.ReadExactlyAsync(header, cancellationToken);
        if (!header.AsSpan(0, 11).SequenceEqual(Signature))
            throw new InvalidDataException("COPY did not answer in PostgreSQL's binary format.");
        var extension = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(15));
        if (extension > 0) await copy.ReadExactlyAsync(new byte[extension], cancellationToken);

        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            var framing = new byte[6];
            var framed = 0;
            var left = 0;
            var ended = false;
            var written = 0;
            while (true)
            {
                if (buffer.Length - written < 4096)
                {
                    await destination.WriteAsync(buffer.AsMemory(0, written), cancellationToken);
                    written = 0;
                }
                var reading = copy.ReadAsync(buffer.AsMemory(written), cancellationToken);
                var caughtUp = !reading.IsCompleted;
                var filled = await reading;
                if (filled == 0) break;
                // PostgreSQL sends a message per row: once this loop has caught up with it, every row would cost a socket
                // wake-up and a thread-pool hop (more CPU than the whole per-event export on two cores). A millisecond's
                // pause lets the socket gather a few hundred rows for the next reads, which the read buffer then serves.
                if (caughtUp && written + filled < buffer.Length / 2) await Task.Delay(1, cancellationToken);
                if (ended) throw new InvalidDataException("COPY sent data after its last row.");
                int read = written, end = written + filled;
                while (read < end)
                {
                    if (left > 0)
                    {
                        var n = Math.Min(left, end - read);
                        if (written != read) buffer.AsSpan(read, n).CopyTo(buffer.AsSpan(written));
                        read += n;
                        written += n;
                        left -= n;
                        continue;
                    }
                    framing[framed++] = buffer[read++];
                    if (framed == 2)
                    {
                        var fields = BinaryPrimitives.ReadInt16BigEndian(framing);
                        if (fields == -1)
                        {
                            if (read < end) throw new InvalidDataException("COPY sent data after its last row.");
                            ended = true;
                            framed = 0;
                        }
                        else if (fields != 1) throw new InvalidDataException($"COPY sent a row of {fields} fields.");
                    }
                    else if (framed == 6)
                    {
                        left = BinaryPrimitives.ReadInt32BigEndian(framing.AsSpan(2));
                        if (left < 0) throw new InvalidDataException("COPY sent a NULL line.");
                        framed = 0;
                    }
                }
            }
            if (!ended) throw new InvalidDataException("COPY ended before its trailer.");
            if (written > 0) await destination.WriteAsync(buffer.AsMemory(0, written), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
