using System.Globalization;
using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using CsvHelper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

public static class AuditApi
{
    public static RouteGroupBuilder MapAuditApi(this RouteGroupBuilder api)
    {
        var audit = api.MapGroup("/audit").WithTags("Audit").RequirePermission(Permission.ReadAudit);

        audit.MapGet("/", async Task<Results<Ok<AuditPageDto>, ProblemHttpResult>> (
            string? application, string? actor, string? action, DateTimeOffset? from, DateTimeOffset? to, Guid? deploymentId,
            int? limit, string? cursor, AuditQuery query, CancellationToken ct) =>
        {
            if (limit is < 1 or > AuditQuery.MaxPageSize)
                return Invalid("limit", $"limit must be between 1 and {AuditQuery.MaxPageSize}.");
            long? before = null;
            if (cursor is not null)
            {
                if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var c))
                    return Invalid("cursor", "cursor must be the nextCursor value of a previous page.");
                before = c;
            }
            var page = await query.PageAsync(new(application, actor, action, from, to, deploymentId), limit ?? 50, before, ct);
            return TypedResults.Ok(new AuditPageDto([.. page.Items.Select(Dto.Audit)], page.NextCursor));
        });

        audit.MapGet("/export", async Task<Results<EmptyHttpResult, ProblemHttpResult>> (
            string? format, string? application, string? actor, string? action, DateTimeOffset? from, DateTimeOffset? to, Guid? deploymentId,
            AuditQuery query, AuditTrailReader trail, AuditCheckpointPublisher checkpoints, HttpContext http) =>
        {
            var kind = format?.ToLowerInvariant();
            if (kind is not ("csv" or "jsonl")) return Invalid("format", "format must be csv or jsonl.");
            var filtered = query.Filtered(new AuditFilter(application, actor, action, from, to, deploymentId));
            http.Response.ContentType = kind == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"audit-{DateTime.UtcNow:yyyyMMdd-HHmmss}.{kind}\"";
            // The newest signed checkpoint travels with every export, so the auditor's copy holds an anchor too.
            if (await checkpoints.LatestAsync(http.RequestAborted) is { } latest)
                http.Response.Headers[CheckpointHeader] = JsonSerializer.Serialize(latest.ToDto(), JsonSerializerOptions.Web);
            // Written straight to the response as rows arrive: memory stays flat for millions of events.
            if (kind == "csv") await WriteCsvAsync(http.Response.Body, trail.ReadAsync(filtered, http.RequestAborted), http.RequestAborted);
            else await WriteJsonLinesAsync(http.Response.Body, trail.ReadEventsAsync(filtered, http.RequestAborted), http.RequestAborted);
            return TypedResults.Empty;
        });

        audit.MapGet("/verify", async (AuditVerifier verifier, CancellationToken ct) =>
            TypedResults.Ok(VerifyDto(await verifier.VerifyAsync(ct))));

        // The auditor's own copies of checkpoints (kept from earlier exports, the checkpoint file or /checkpoints): the
        // trail must still agree with every one of them.
        audit.MapPost("/verify", async Task<Results<Ok<AuditVerifyDto>, ProblemHttpResult>> (
            AuditVerifyRequest request, AuditVerifier verifier, AuditCheckpointKey key, CancellationToken ct) =>
        {
            var supplied = new List<AuditCheckpoint>();
            foreach (var (dto, i) in (request.Checkpoints ?? []).Select((c, i) => (c, i)))
            {
                var field = $"checkpoints[{i}]";
                if (dto is null)
                    return Invalid(field, $"{field} must be {{sequence, hash, signedAt, keyId, signature}} as ControlPlane issued it.");
                // Name the first field that cannot be what ControlPlane issued, so the auditor knows which copy is damaged.
                var wrong = dto.Sequence < 1 ? ("sequence", "an event sequence (1 or more)")
                    : string.IsNullOrEmpty(dto.Hash) ? ("hash", "the event's hash")
                    : dto.ToCheckpoint() is null ? ("signedAt", "the signing time exactly as issued (yyyy-MM-ddTHH:mm:ss.ffffffZ)")
                    : string.IsNullOrEmpty(dto.KeyId) ? ("keyId", "the id of the key that signed it")
                    : string.IsNullOrEmpty(dto.Signature) ? ("signature", "the signature as issued")
                    : default((string Name, string Needs)?);
                if (wrong is { } w)
                    return Invalid($"{field}.{w.Name}", $"{field}.{w.Name} must be {w.Needs}, as ControlPlane issued it.");
                var checkpoint = dto.ToCheckpoint()!;
                if (!key.Verify(checkpoint))
                    return Invalid(field, checkpoint.KeyId == key.KeyId
                        ? $"{field} (event {checkpoint.Sequence}) does not carry a valid signature: it was altered after it was issued."
                        : $"{field} was signed with key {checkpoint.KeyId}, not with this ControlPlane's checkpoint key {key.KeyId}.");
                supplied.Add(checkpoint);
            }
            return TypedResults.Ok(VerifyDto(await verifier.VerifyAsync(supplied, ct)));
        });

        audit.MapGet("/checkpoints", async Task<Results<Ok<AuditCheckpointsDto>, ProblemHttpResult>> (
            int? limit, ControlPlane.Core.Data.ControlPlaneDbContext db, AuditCheckpointKey key, CancellationToken ct) =>
        {
            if (limit is < 1 or > AuditQuery.MaxPageSize)
                return Invalid("limit", $"limit must be between 1 and {AuditQuery.MaxPageSize}.");
            var items = await db.AuditCheckpoints.AsNoTracking().OrderByDescending(c => c.Sequence).Take(limit ?? 50).ToListAsync(ct);
            return TypedResults.Ok(new AuditCheckpointsDto(key.KeyId, key.PublicKeyPem, [.. items.Select(c => c.ToDto())]));
        });

        return api;
    }

    public const string CheckpointHeader = "X-ControlPlane-Audit-Checkpoint";

    private static AuditVerifyDto VerifyDto(AuditVerification r) =>
        new(r.Valid, r.Events, r.FirstInvalidSequence, r.Problem, r.Reason, r.Checkpoints);

    private static readonly JsonSerializerOptions LineJson = new(JsonSerializerDefaults.Web) { Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    public static readonly string[] CsvHeader =
        ["sequence", "occurredAt", "actor", "actorKind", "sourceIp", "action", "application", "deploymentId", "before", "after", "reason", "details", "previousHash", "hash"];

    /// <summary>
    /// Actors, reasons and details are typed by people: a cell starting with = + - @ tab or CR would run as a formula when
    /// an auditor opens the export in a spreadsheet (OWASP CSV injection), so such text gets a leading apostrophe.
    /// </summary>
    public static readonly CsvWriterOptions CsvExportOptions = CsvWriterOptions.Default with { Injection = CsvInjection.Escape };

    /// <summary>
    /// Text columns go from PostgreSQL's UTF-8 to the CSV's UTF-8 without becoming strings; numbers, the instant and the
    /// id are formatted into a stack buffer. The bytes are the same as writing the event's strings (checked with
    /// <c>cmp</c> on a million-event trail with hostile values, see docs/benchmarks.md).
    /// </summary>
    private static async Task WriteCsvAsync(Stream body, IAsyncEnumerable<AuditTrailRow> rows, CancellationToken ct)
    {
        await using var csv = CsvWriter.Create(body, CsvExportOptions, leaveOpen: true);
        foreach (var h in CsvHeader) csv.WriteField(h);
        await csv.EndRecordAsync(ct);
        await foreach (var row in rows.WithCancellation(ct))
        {
            WriteRow(csv, row);
            await csv.EndRecordAsync(ct);
        }
        await csv.FlushAsync(ct);
    }

    private static void WriteRow(CsvWriter csv, AuditTrailRow row)
    {
        Span<byte> formatted = stackalloc byte[40];
        row.GetSequence().TryFormat(formatted, out var n, default, CultureInfo.InvariantCulture);
        csv.WriteField(formatted[..n]);
        // "O" of a UTC DateTime: seven fraction digits and Z, as DateTime.ToString("O") writes it.
        row.GetOccurredAt().TryFormat(formatted, out n, "O", CultureInfo.InvariantCulture);
        csv.WriteField(formatted[..n]);
        csv.WriteField(row.GetUtf8(AuditTrailRow.Actor));
        csv.WriteField(row.GetUtf8(AuditTrailRow.ActorKind));
        csv.WriteField(row.GetUtf8(AuditTrailRow.SourceIp));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Action));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Application));
        if (row.GetDeploymentId() is { } id)
        {
            id.TryFormat(formatted, out n, "D");
            csv.WriteField(formatted[..n]);
        }
        else csv.WriteField(ReadOnlySpan<byte>.Empty);
        csv.WriteField(row.GetUtf8(AuditTrailRow.BeforeState));
        csv.WriteField(row.GetUtf8(AuditTrailRow.AfterState));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Reason));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Details));
        csv.WriteField(row.GetUtf8(AuditTrailRow.PreviousHash));
        csv.WriteField(row.GetUtf8(AuditTrailRow.Hash));
    }

    private static async Task WriteJsonLinesAsync(Stream body, IAsyncEnumerable<AuditEvent> events, CancellationToken ct)
    {
        var newline = "\n"u8.ToArray();
        await foreach (var e in events.WithCancellation(ct))
        {
            await JsonSerializer.SerializeAsync(body, Dto.Audit(e), LineJson, ct);
            await body.WriteAsync(newline, ct);
        }
    }

    private static ProblemHttpResult Invalid(string field, string message) =>
        TypedResults.Problem(message, statusCode: StatusCodes.Status400BadRequest, title: "Invalid request",
            extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [field] = [message] } });
}

public sealed record AuditVerifyRequest(IReadOnlyList<AuditCheckpointDto?>? Checkpoints);

/// <summary>The newest checkpoints and the public key that verifies them (PEM, SubjectPublicKeyInfo).</summary>
public sealed record AuditCheckpointsDto(string KeyId, string PublicKey, IReadOnlyList<AuditCheckpointDto> Items);
