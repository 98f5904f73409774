using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

/// <summary>
/// <c>GET /api/v1/deployments/{id}/evidence</c>: one release's record as a zip an auditor verifies offline
/// (<c>controlplane evidence verify</c>, docs/cli.md). Files: <c>release.json</c> (the API's deployment: steps, approvals,
/// outcome), <c>checks.json</c> (every check result recorded on the release's audit events), <c>approvals.json</c>,
/// <c>overrides.json</c>, <c>audit-events.jsonl</c> (the release's own events), <c>audit-chain.jsonl</c> (every event from
/// the release's first one up to the nearest signed checkpoint, so each hash can be recomputed and linked),
/// <c>checkpoint.json</c>, <c>public-key.pem</c>, and <c>manifest.json</c> (SHA-256 of each file) with
/// <c>manifest.sig</c> (ECDSA P-256 with the audit checkpoint key).
/// </summary>
public static class EvidenceApi
{
    public const string Format = "controlplane-evidence/v1";
    private const int MaxChainEvents = 200_000;
    private static readonly JsonSerializerOptions Indented = new(JsonSerializerOptions.Web) { WriteIndented = true };

    public static RouteGroupBuilder MapEvidenceApi(this RouteGroupBuilder api)
    {
        api.MapGet("/deployments/{id:guid}/evidence", async (Guid id, ControlPlaneDbContext db, AuditCheckpointKey key, HttpContext http,
            Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> apiJson, CancellationToken ct) =>
        {
            var d = await db.Deployments.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id, ct);
            if (d is null) return (IResult)ApplicationsApi.NotFound($"Deployment {id} does not exist.");
            var own = await db.AuditEvents.AsNoTracking().Where(e => e.DeploymentId == id).OrderBy(e => e.Sequence).ToListAsync(ct);
            if (own.Count == 0) return ApplicationsApi.NotFound($"Deployment {id} has no audit events.");
            var checkpoint = await NearestCheckpointAsync(db, key, own[^1].Sequence, ct);
            if (checkpoint is null)
                return TypedResults.Problem(statusCode: 409, title: "Conflict with the current state",
                    detail: $"No checkpoint signed with key {key.KeyId} covers event {own[^1].Sequence} yet; GET /api/v1/audit/verify says why.");
            if (checkpoint.Sequence - own[0].Sequence >= MaxChainEvents)
                return TypedResults.Problem(statusCode: 409, title: "Conflict with the current state",
                    detail: $"The chain from this release's first event to the nearest signed checkpoint is longer than {MaxChainEvents} events.");
            var chain = await db.AuditEvents.AsNoTracking().Where(e => e.Sequence >= own[0].Sequence && e.Sequence <= checkpoint.Sequence)
                .OrderBy(e => e.Sequence).ToListAsync(ct);

            var files = new List<(string Name, byte[] Bytes)>
            {
                // The same JSON as GET /api/v1/deployments/{id} (enums as strings).
                ("release.json", JsonSerializer.SerializeToUtf8Bytes(Dto.Deployment(d), new JsonSerializerOptions(apiJson.Value.SerializerOptions) { WriteIndented = true })),
                ("checks.json", Json(new JsonArray([.. own.Where(e => e.Details is not null && e.Details.Contains("\"check", StringComparison.Ordinal) || e.Action is "deployment.ready-to-switch" or "deployment.awaiting-approval" or "deployment.failed" or "deployment.auto-rolled-back" or "deployment.succeeded")
                    .Select(e => (JsonNode)new JsonObject { ["sequence"] = e.Sequence, ["at"] = Time(e.OccurredAt), ["action"] = e.Action, ["reason"] = e.Reason, ["details"] = ParseOrText(e.Details) })]))),
                ("approvals.json", Json(new JsonArray([.. own.Where(e => e.Action == "deployment.approved")
                    .Select(e => (JsonNode)new JsonObject { ["by"] = e.Actor, ["kind"] = e.ActorKind.ToString(), ["at"] = Time(e.OccurredAt), ["comment"] = e.Reason, ["sourceIp"] = e.SourceIp, ["sequence"] = e.Sequence, ["details"] = ParseOrText(e.Details) })]))),
                ("overrides.json", Json(new JsonArray([.. own.Where(e => e.Action is "freeze.overridden" || e.Action.StartsWith("rollback.", StringComparison.Ordinal) || e.Action == "deployment.rolled-back")
                    .Select(e => (JsonNode)new JsonObject { ["action"] = e.Action, ["by"] = e.Actor, ["at"] = Time(e.OccurredAt), ["reason"] = e.Reason, ["sequence"] = e.Sequence, ["details"] = ParseOrText(e.Details) })]))),
                ("audit-events.jsonl", Lines(own)),
                ("audit-chain.jsonl", Lines(chain)),
                ("checkpoint.json", JsonSerializer.SerializeToUtf8Bytes(checkpoint.ToDto(), Indented)),
                ("public-key.pem", Encoding.UTF8.GetBytes(key.PublicKeyPem)),
            };
            var manifest = new JsonObject
            {
                ["format"] = Format,
                ["deployment"] = id,
                ["application"] = d.ApplicationName,
                ["version"] = d.Version,
                ["state"] = d.State.ToString(),
                ["createdAt"] = Time(DateTimeOffset.UtcNow),
                ["createdBy"] = http.ToActor().Name,
                ["keyId"] = key.KeyId,
                ["files"] = new JsonArray([.. files.Select(f => (JsonNode)new JsonObject
                {
                    ["path"] = f.Name, ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(f.Bytes)), ["bytes"] = f.Bytes.Length,
                })]),
            };
            var manifestBytes = Encoding.UTF8.GetBytes(manifest.ToJsonString(Indented));
            files.Add(("manifest.json", manifestBytes));
            files.Add(("manifest.sig", Encoding.ASCII.GetBytes(key.SignDocument(manifestBytes))));

            var zip = new MemoryStream();
            using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
                foreach (var (name, bytes) in files)
                {
                    await using var entry = await archive.CreateEntry(name, CompressionLevel.Optimal).OpenAsync(ct);
                    await entry.WriteAsync(bytes, ct);
                }
            zip.Position = 0;
            return TypedResults.File(zip, "application/zip", $"evidence-{d.ApplicationName}-{d.Version}-{id}.zip");
        }).WithTags("Deployments").RequirePermission(Permission.ReadAudit);
        return api;
    }

    /// <summary>The first checkpoint at or after <paramref name="sequence"/> that this key signed (every audited save signs its head).</summary>
    private static async Task<AuditCheckpoint?> NearestCheckpointAsync(ControlPlaneDbContext db, AuditCheckpointKey key, long sequence, CancellationToken ct)
    {
        var candidates = await db.AuditCheckpoints.AsNoTracking().Where(c => c.Sequence >= sequence).OrderBy(c => c.Sequence).Take(50).ToListAsync(ct);
        return candidates.FirstOrDefault(key.Verify);
    }

    /// <summary>Each event with exactly the fields its hash covers, in the hashed text forms (time to the microsecond, UTC).</summary>
    private static byte[] Lines(IEnumerable<AuditEvent> events)
    {
        var text = new StringBuilder();
        foreach (var e in events)
            text.Append(new JsonObject
            {
                ["sequence"] = e.Sequence, ["occurredAt"] = Time(e.OccurredAt), ["actor"] = e.Actor, ["actorKind"] = e.ActorKind.ToString(),
                ["sourceIp"] = e.SourceIp, ["action"] = e.Action, ["application"] = e.Application, ["deploymentId"] = e.DeploymentId?.ToString("D"),
                ["before"] = e.BeforeState, ["after"] = e.AfterState, ["reason"] = e.Reason, ["details"] = e.Details,
                ["previousHash"] = e.PreviousHash, ["hash"] = e.Hash,
            }.ToJsonString()).Append('\n');
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static JsonNode? ParseOrText(string? details)
    {
        if (details is null) return null;
        try { return JsonNode.Parse(details); } catch (JsonException) { return details; }
    }

    private static byte[] Json(JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString(Indented));
}
