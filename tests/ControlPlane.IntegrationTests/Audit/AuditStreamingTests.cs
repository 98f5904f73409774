using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.IntegrationTests.Audit;

/// <summary>
/// Export and verify walk the whole trail (millions of events): they must hand on each event as PostgreSQL sends it, never
/// read the whole result into memory first. The app is configured exactly as in production plus a probe on the data reader
/// of the one trail read path (<see cref="AuditTrailReader"/>), so anything that buffers (a list of rows, a buffering
/// reader, a buffered response) shows up as rows read before the first event got out. No timings: only the order of events.
/// </summary>
public sealed class AuditStreamingTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const int AddedEvents = 3000;
    private const int Gate = 2000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TrailProbe _probe = new();
    private ControlPlaneAppFactory _inner = null!;
    private WebApplicationFactory<Program> _factory = null!;

    public async ValueTask InitializeAsync()
    {
        _inner = new ControlPlaneAppFactory(await postgres.CreateDatabaseWithRolesAsync("stream"));
        _factory = _inner.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<IAuditTrailObserver>(_probe)));
        // Enough events (about 1.5 kB each) that every buffer between the reader and the client (CSV writer, response
        // pipe) fills long before the gate.
        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var details = System.Text.Json.JsonSerializer.Serialize(new { note = new string('x', 1400) });
        for (var i = 0; i < AddedEvents; i++)
            db.Record(AuditEvent.Create(Actor.System, "bench.filler", DateTimeOffset.UtcNow, "filler", details: details));
        await db.SaveChangesAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        await _inner.DisposeAsync();
    }

    [Theory]
    [InlineData("csv")]
    [InlineData("jsonl")]
    public async Task The_export_sends_the_first_event_while_the_trail_is_still_being_read(string format)
    {
        using var admin = _factory.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new("Bearer", ControlPlaneAppFactory.AdminToken);
        var total = (await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/v1/audit/verify", Ct)).GetProperty("events").GetInt64();

        // The trail query's reader stops at row 2000 until the client has the first event: a streamed export has long
        // sent it; a buffered one sends nothing until every row is read, so the gate only opens on its safety timeout.
        _probe.Arm(Gate);
        using var response = await admin.GetAsync($"/api/v1/audit/export?format={format}", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        if (format == "csv") Assert.StartsWith("sequence,", await reader.ReadLineAsync(Ct));
        var first = await reader.ReadLineAsync(Ct);
        var rowsReadWhenFirstArrived = _probe.RowsRead;
        _probe.Open();
        var lines = 1;
        while (await reader.ReadLineAsync(Ct) is { Length: > 0 }) lines++;

        Assert.NotNull(first);
        Assert.True(rowsReadWhenFirstArrived <= Gate,
            $"the client got its first event only after {rowsReadWhenFirstArrived} of {total} rows were read: the export is buffered");
        Assert.False(_probe.GateTimedOut, "the trail was read up to the gate before anything reached the client: the export is buffered");
        Assert.True(lines >= total, $"the export held {lines} events, the trail {total}");
    }

    [Fact]
    public async Task Verify_checks_each_event_as_it_arrives_instead_of_reading_the_whole_trail_first()
    {
        _probe.Arm(gate: null);
        await using var scope = _factory.Services.CreateAsyncScope();
        var result = await scope.ServiceProvider.GetRequiredService<AuditVerifier>().VerifyAsync(Ct);

        Assert.True(result.Valid, result.Problem);
        Assert.True(result.Events > AddedEvents);
        // Verify walks the trail through the export's read path (whose streaming the test above proves), every row read
        // once, and the first row's columns are read before the second row: nothing reads ahead of the verifier.
        Assert.Equal(result.Events, _probe.RowsRead);
        Assert.True(_probe.RowsReadAtFirstEvent is > 0 and <= 1,
            $"the first event was read by the verifier after {_probe.RowsReadAtFirstEvent} of {result.Events} rows were read: verify buffers the trail");
    }

    /// <summary>
    /// Wraps the data reader of every whole-trail read and counts its rows; notes how many rows were read when the first
    /// row's columns were first read (its sequence); optionally holds the reader at a row until <see cref="Open"/>.
    /// </summary>
    private sealed class TrailProbe : IAuditTrailObserver
    {
        private int? _gate;
        private int _rows;
        private int _rowsAtFirstEvent = -1;
        private TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int RowsRead => Volatile.Read(ref _rows);
        public int RowsReadAtFirstEvent => Volatile.Read(ref _rowsAtFirstEvent);
        public bool GateTimedOut { get; private set; }

        public void Arm(int? gate)
        {
            _gate = gate;
            _rows = 0;
            _rowsAtFirstEvent = -1;
            _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public void Open() => _open.TrySetResult();

        public DbDataReader Observe(DbDataReader reader) => new CountingReader(reader, this);

        private void FieldRead() => Interlocked.CompareExchange(ref _rowsAtFirstEvent, RowsRead, -1);

        private async Task RowAsync()
        {
            if (Interlocked.Increment(ref _rows) != _gate) return;
            // A safety timeout only, so a buffered export fails instead of hanging.
            try { await _open.Task.WaitAsync(TimeSpan.FromSeconds(30)); }
            catch (TimeoutException) { GateTimedOut = true; }
        }

        private sealed class CountingReader(DbDataReader inner, TrailProbe probe) : DelegatingReader(inner)
        {
            public override bool Read()
            {
                if (!Inner.Read()) return false;
                probe.RowAsync().GetAwaiter().GetResult();
                return true;
            }

            public override async Task<bool> ReadAsync(CancellationToken cancellationToken)
            {
                if (!await Inner.ReadAsync(cancellationToken)) return false;
                await probe.RowAsync();
                return true;
            }

            public override long GetInt64(int ordinal)
            {
                probe.FieldRead();
                return Inner.GetInt64(ordinal);
            }

            public override T GetFieldValue<T>(int ordinal)
            {
                probe.FieldRead();
                return Inner.GetFieldValue<T>(ordinal);
            }

            public override object GetValue(int ordinal)
            {
                probe.FieldRead();
                return Inner.GetValue(ordinal);
            }
        }
    }

    /// <summary>Hands every call to the provider's reader; a subclass sees each row.</summary>
    private abstract class DelegatingReader(DbDataReader inner) : DbDataReader
    {
        protected DbDataReader Inner { get; } = inner;
        public override int Depth => Inner.Depth;
        public override int FieldCount => Inner.FieldCount;
        public override bool HasRows => Inner.HasRows;
        public override bool IsClosed => Inner.IsClosed;
        public override int RecordsAffected => Inner.RecordsAffected;
        public override object this[int ordinal] => Inner[ordinal];
        public override object this[string name] => Inner[name];
        public override bool GetBoolean(int ordinal) => Inner.GetBoolean(ordinal);
        public override byte GetByte(int ordinal) => Inner.GetByte(ordinal);
        public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length) => Inner.GetBytes(ordinal, dataOffset, buffer, bufferOffset, length);
        public override char GetChar(int ordinal) => Inner.GetChar(ordinal);
        public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length) => Inner.GetChars(ordinal, dataOffset, buffer, bufferOffset, length);
        public override string GetDataTypeName(int ordinal) => Inner.GetDataTypeName(ordinal);
        public override DateTime GetDateTime(int ordinal) => Inner.GetDateTime(ordinal);
        public override decimal GetDecimal(int ordinal) => Inner.GetDecimal(ordinal);
        public override double GetDouble(int ordinal) => Inner.GetDouble(ordinal);
        public override System.Collections.IEnumerator GetEnumerator() => Inner.GetEnumerator();
        public override Type GetFieldType(int ordinal) => Inner.GetFieldType(ordinal);
        public override T GetFieldValue<T>(int ordinal) => Inner.GetFieldValue<T>(ordinal);
        public override Task<T> GetFieldValueAsync<T>(int ordinal, CancellationToken cancellationToken) => Inner.GetFieldValueAsync<T>(ordinal, cancellationToken);
        public override float GetFloat(int ordinal) => Inner.GetFloat(ordinal);
        public override Guid GetGuid(int ordinal) => Inner.GetGuid(ordinal);
        public override short GetInt16(int ordinal) => Inner.GetInt16(ordinal);
        public override int GetInt32(int ordinal) => Inner.GetInt32(ordinal);
        public override long GetInt64(int ordinal) => Inner.GetInt64(ordinal);
        public override string GetName(int ordinal) => Inner.GetName(ordinal);
        public override int GetOrdinal(string name) => Inner.GetOrdinal(name);
        public override string GetString(int ordinal) => Inner.GetString(ordinal);
        public override object GetValue(int ordinal) => Inner.GetValue(ordinal);
        public override int GetValues(object[] values) => Inner.GetValues(values);
        public override bool IsDBNull(int ordinal) => Inner.IsDBNull(ordinal);
        public override Task<bool> IsDBNullAsync(int ordinal, CancellationToken cancellationToken) => Inner.IsDBNullAsync(ordinal, cancellationToken);
        public override bool NextResult() => Inner.NextResult();
        public override Task<bool> NextResultAsync(CancellationToken cancellationToken) => Inner.NextResultAsync(cancellationToken);
        public override bool Read() => Inner.Read();
        public override Task<bool> ReadAsync(CancellationToken cancellationToken) => Inner.ReadAsync(cancellationToken);
        public override void Close() => Inner.Close();
        public override ValueTask DisposeAsync() => Inner.DisposeAsync();
        protected override void Dispose(bool disposing)
        {
            if (disposing) Inner.Dispose();
        }
    }
}
