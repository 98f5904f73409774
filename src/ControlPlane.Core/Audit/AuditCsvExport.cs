using System.Buffers;
using System.Data;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.RegularExpressions;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Core.Audit;

/// <summary>
/// The audit CSV export: PostgreSQL writes the CSV (<c>COPY (…) TO STDOUT (FORMAT csv)</c>, what <c>psql \copy</c> does)
/// and ControlPlane only copies its bytes to the client. Formatting a million rows in .NET cost ~1.9 s of CPU on a
/// machine whose two cores PostgreSQL and the client share; PostgreSQL formats them in its own scan.
/// <para>
/// The bytes are those the per-event CsvHelper 34 writer wrote (RFC 4180 mode, quoting when needed, CRLF, injection
/// escape): the SELECT formats each column as that writer did (the instant as .NET's "O" of a UTC DateTime, NULL and ""
/// both an empty unquoted field, a text cell starting with = + - @ tab or CR prefixed with an apostrophe) and
/// PostgreSQL quotes exactly the fields CsvHelper quotes (those holding a comma, a quote, CR or LF) — except two things
/// its COPY cannot do, which <see cref="CsvCopyTransform"/> does while the bytes pass: CsvHelper ends records with CRLF
/// (PostgreSQL with LF), and it quotes every escaped cell. For the second the SELECT puts a CR before the apostrophe,
/// which makes PostgreSQL quote the cell; a quoted cell can start with CR only then (a value starting with CR is itself
/// escaped), so the CR right after a cell's opening quote is the mark and is dropped.
/// </para>
/// </summary>
public sealed class AuditCsvExport(ControlPlaneDbContext db, IAuditTrailObserver? observer = null)
{
    public static readonly string[] Header =
        ["sequence", "occurredAt", "actor", "actorKind", "sourceIp", "action", "application", "deploymentId", "before", "after", "reason", "details", "previousHash", "hash"];

    private static readonly byte[] HeaderLine = Encoding.UTF8.GetBytes(string.Join(',', Header) + "\r\n");

    /// <summary>Prefix of the transaction-local settings that carry the filter values into the COPY.</summary>
    private const string SettingPrefix = "controlplane_export.p";

    private const int FlushBytes = 64 * 1024;

    /// <summary>
    /// Writes the header and every event of <paramref name="query"/> (oldest first) to <paramref name="body"/>, flushing
    /// every 64 kB: memory stays flat whatever the trail's size. If the client goes away the COPY is cancelled in
    /// PostgreSQL and the connection goes back to the pool clean.
    /// </summary>
    public async Task WriteAsync(IQueryable<AuditEvent> query, PipeWriter body, CancellationToken cancellationToken)
    {
        var (copySql, values) = CopyCommand(query);
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
            if (values.Count > 0)
            {
                // COPY takes no bind parameters: the filter values are bound here, as parameters, into settings local to
                // this transaction, and the COPY reads them back with current_setting. No value is ever SQL text.
                await using var set = new NpgsqlCommand(
                    "SELECT " + string.Join(", ", values.Select((_, i) => $"set_config('{SettingPrefix}{i}', ${i + 1}, true)")),
                    connection, transaction);
                foreach (var value in values) set.Parameters.Add(new NpgsqlParameter { Value = value });
                await set.ExecuteNonQueryAsync(cancellationToken);
            }

            await CopyAsync(connection, copySql, body, cancellationToken);
            await transaction.CommitAsync(CancellationToken.None);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private async Task CopyAsync(NpgsqlConnection connection, string copySql, PipeWriter body, CancellationToken cancellationToken)
    {
        // Npgsql's text export is a StreamReader over the COPY's raw stream (BeginRawBinaryCopy refuses a text COPY);
        // the bytes are read from that stream, never decoded into characters.
        await using var copy = await connection.BeginTextExportAsync(copySql, cancellationToken);
        var source = observer?.ObserveCopy(copy.BaseStream) ?? copy.BaseStream;
        // The COPY has started (the query is planned and valid): now the response begins.
        var completed = false;
        // A client that goes away while PostgreSQL is still looking for rows (a narrow filter over a large trail)
        // would otherwise only be noticed at the next write.
        await using var cancel = cancellationToken.Register(static s => CancelQuietly((NpgsqlCopyTextReader)s!), copy);
        try
        {
            body.Write(HeaderLine);
            if ((await body.FlushAsync(cancellationToken)).IsCompleted) return;
            // One dedicated thread reads the COPY with blocking socket reads, as psql does. Asynchronous reads cost a
            // thread-pool hop each time Npgsql's 8 kB buffer ran dry (every few rows): idle workers spinning
            // (sched_yield) took 2–3× the CPU of the old writer in a perf profile.
            completed = await Task.Factory.StartNew(() => Pump(source, body, cancellationToken), CancellationToken.None,
                TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            // Disposing an unfinished COPY would read the rest of it; cancel it in PostgreSQL first.
            if (!completed) await CancelQuietlyAsync(copy);
        }
    }

    /// <summary>Copies the COPY's rows to <paramref name="body"/>; false when the client went away first.</summary>
    private static bool Pump(Stream source, PipeWriter body, CancellationToken cancellationToken)
    {
        var transform = new CsvCopyTransform();
        var input = ArrayPool<byte>.Shared.Rent(FlushBytes);
        // Rows are gathered here and handed to the response 64 kB at a time: each write into Kestrel's pipe takes its lock.
        var output = new ArrayBufferWriter<byte>(2 * FlushBytes);
        try
        {
            while (true)
            {
                // Npgsql hands out at most one CopyData message (one row) per read, from its buffer when it can.
                var read = source.Read(input);
                if (read > 0) transform.Write(input.AsSpan(0, read), output);
                if (read > 0 && output.WrittenCount < FlushBytes) continue;
                body.Write(output.WrittenSpan);
                output.ResetWrittenCount();
                // This thread is not the pool's: waiting for the response to drain blocks nothing else.
                var flushed = body.FlushAsync(cancellationToken).AsTask().GetAwaiter().GetResult();
                if (read == 0) return true;
                if (flushed.IsCompleted) return false;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
        }
    }

    /// <summary>
    /// The COPY for <paramref name="query"/>: EF's SQL of the 14 columns, each parameter placeholder replaced by
    /// <c>current_setting('controlplane_export.pN')::type</c>, and the list of values to set. Public for tests.
    /// </summary>
    public static (string Sql, IReadOnlyList<string> Values) CopyCommand(IQueryable<AuditEvent> query)
    {
        // The same projection (and so the same filters and plan) as AuditTrailReader; its column order is the CSV's.
        using var command = query.OrderBy(e => e.Sequence).AsSingleQuery()
            .Select(e => new
            {
                e.Sequence, e.OccurredAt, e.Actor, e.ActorKind, e.SourceIp, e.Action, e.Application, e.DeploymentId,
                e.BeforeState, e.AfterState, e.Reason, e.Details, e.PreviousHash, e.Hash,
            })
            .CreateDbCommand();
        var sql = command.CommandText;
        var values = new List<string>();
        // Longest names first, so @p1 never matches the start of @p10.
        foreach (var parameter in command.Parameters.Cast<System.Data.Common.DbParameter>().OrderByDescending(p => p.ParameterName.Length))
        {
            var name = parameter.ParameterName.TrimStart('@');
            var (text, type) = SettingValue(parameter.Value);
            var setting = $"current_setting('{SettingPrefix}{values.Count}')::{type}";
            var replaced = Regex.Replace(sql, "@" + Regex.Escape(name) + "(?![A-Za-z0-9_])", setting.Replace("$", "$$"));
            if (replaced == sql) throw new InvalidOperationException($"The export query does not use its parameter {name}.");
            sql = replaced;
            values.Add(text);
        }
        return ($"""
            COPY (SELECT s.c0,
              to_char(s.c1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '0Z',
              {Text("s.c2")}, {Text("s.c3")}, {Text("s.c4")}, {Text("s.c5")}, {Text("s.c6")},
              s.c7,
              {Text("s.c8")}, {Text("s.c9")}, {Text("s.c10")}, {Text("s.c11")}, {Text("s.c12")}, {Text("s.c13")}
            FROM ({sql}) AS s(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13)
            ORDER BY s.c0) TO STDOUT (FORMAT csv)
            """, values);
    }

    /// <summary>
    /// A text column as CsvHelper wrote it: NULL and "" both as NULL (an empty unquoted field; COPY quotes ""), a
    /// value starting with = + - @ tab or CR (the bytes 61 43 45 64 9 13) behind CR (the mark) and an apostrophe.
    /// </summary>
    private static string Text(string column) =>
        $"CASE WHEN ascii({column}) IN (9, 13, 43, 45, 61, 64) THEN E'\\r''' || {column} ELSE NULLIF({column}, '') END";

    /// <summary>A filter value as the text PostgreSQL reads back into the type the bound parameter had.</summary>
    private static (string Text, string Type) SettingValue(object? value) => value switch
    {
        string s => (s, "text"),
        Guid g => (g.ToString("D"), "uuid"),
        long l => (l.ToString(CultureInfo.InvariantCulture), "bigint"),
        int i => (i.ToString(CultureInfo.InvariantCulture), "integer"),
        // Npgsql sends microseconds, the ticks truncated; the same instant as text.
        DateTimeOffset d => (Microseconds(d.UtcDateTime), "timestamptz"),
        DateTime d when d.Kind == DateTimeKind.Utc => (Microseconds(d), "timestamptz"),
        _ => throw new InvalidOperationException($"The export cannot carry a filter value of type {value?.GetType().Name ?? "null"}."),
    };

    private static string Microseconds(DateTime utc) =>
        new DateTime(utc.Ticks - utc.Ticks % 10, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'+00:00'", CultureInfo.InvariantCulture);

    private static void CancelQuietly(NpgsqlCopyTextReader copy)
    {
        try { copy.Cancel(); }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or NpgsqlException) { }
    }

    private static async Task CancelQuietlyAsync(NpgsqlCopyTextReader copy)
    {
        try { await copy.CancelAsync(); }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or NpgsqlException) { }
    }
}

/// <summary>
/// Turns PostgreSQL's CSV into CsvHelper's as it passes: LF at the end of a record becomes CRLF, and the CR that marks
/// an escaped cell (right after the cell's opening quote) is dropped. Tracks the quotes across reads: in COPY's CSV a
/// quote outside a quoted field opens one, inside it closes it or (doubled) stands for itself.
/// </summary>
public sealed class CsvCopyTransform
{
    private static readonly SearchValues<byte> QuoteOrLf = SearchValues.Create("\"\n"u8);

    private bool _quoted;
    private bool _opened;
    private byte _previous = (byte)'\n';

    /// <summary>Writes <paramref name="input"/> transformed to <paramref name="output"/>; returns the bytes written.</summary>
    public int Write(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        if (input.IsEmpty) return 0;
        var written = 0;
        var start = 0;
        var i = 0;
        if (_opened)
        {
            _opened = false;
            if (input[0] == (byte)'\r') start = i = 1;
        }
        while (i < input.Length)
        {
            var found = _quoted ? input[i..].IndexOf((byte)'"') : input[i..].IndexOfAny(QuoteOrLf);
            if (found < 0) break;
            var at = i + found;
            i = at + 1;
            if (input[at] == (byte)'\n')
            {
                written += Copy(input[start..at], output) + Copy("\r\n"u8, output);
                start = i;
            }
            else if (_quoted) _quoted = false;
            else
            {
                _quoted = true;
                // An opening quote follows the separator; the second quote of a doubled pair follows a quote.
                if ((at > 0 ? input[at - 1] : _previous) != (byte)',') continue;
                if (i == input.Length) _opened = true;
                else if (input[i] == (byte)'\r')
                {
                    written += Copy(input[start..i], output);
                    start = ++i;
                }
            }
        }
        written += Copy(input[start..], output);
        _previous = input[^1];
        return written;
    }

    private static int Copy(ReadOnlySpan<byte> bytes, IBufferWriter<byte> output)
    {
        if (!bytes.IsEmpty) output.Write(bytes);
        return bytes.Length;
    }
}
