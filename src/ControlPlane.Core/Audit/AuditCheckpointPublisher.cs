using System.Text.Json;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Audit;

/// <summary>
/// Writes the newest genuine checkpoint where the database cannot reach — the log and the append-only checkpoint file —
/// whenever the chain head moved, every <see cref="AuditOptions.CheckpointInterval"/>. On start it also signs the head of
/// a trail written before checkpoints existed (once: never when the checkpoint file already holds checkpoints, because
/// then an empty checkpoints table means someone emptied it).
/// </summary>
public sealed class AuditCheckpointPublisher(IServiceScopeFactory scopes, AuditCheckpointKey key, AuditCheckpointFile file,
    IOptions<AuditOptions> options, ILogger<AuditCheckpointPublisher> logger) : BackgroundService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long? _published;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            try { await AdoptUnsignedTrailAsync(stoppingToken); }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning("Could not check whether the audit trail's head is signed: {Reason}", ex.Message);
            }
            using var timer = new PeriodicTimer(options.Value.CheckpointInterval);
            do
            {
                try { await PublishAsync(stoppingToken); }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning("Could not publish the audit checkpoint: {Reason}", ex.Message);
                }
            } while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    /// <summary>Logs and appends the newest genuine checkpoint if it is newer than the last one written; returns it.</summary>
    public async Task<AuditCheckpoint?> PublishAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var latest = await LatestAsync(cancellationToken);
            _published ??= file.LastSequence() ?? 0;
            if (latest is null || latest.Sequence <= _published) return latest;
            file.Append(latest.ToDto());
            _published = latest.Sequence;
            logger.LogInformation("Audit checkpoint {Checkpoint}", JsonSerializer.Serialize(latest.ToDto(), JsonSerializerOptions.Web));
            return latest;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The newest checkpoint in the database that carries this key's signature.</summary>
    public async Task<AuditCheckpoint?> LatestAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        long? before = null;
        while (true)
        {
            var q = db.AuditCheckpoints.AsNoTracking();
            if (before is { } b) q = q.Where(c => c.Sequence < b);
            var page = await q.OrderByDescending(c => c.Sequence).Take(100).ToListAsync(cancellationToken);
            if (page.Count == 0) return null;
            if (page.FirstOrDefault(key.Verify) is { } genuine) return genuine;
            if (before is null)
                logger.LogWarning("The newest audit checkpoint (event {Sequence}, key {KeyId}) is not signed by this replica's key {Own}: " +
                    "replicas sharing a database must share the checkpoint key, otherwise the checkpoints table was altered",
                    page[0].Sequence, page[0].KeyId, key.KeyId);
            before = page[^1].Sequence;
        }
    }

    private async Task AdoptUnsignedTrailAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({ControlPlaneDbContext.AuditChainLockKey})", cancellationToken);
        if (await db.AuditCheckpoints.AnyAsync(cancellationToken)) return;
        var head = await db.AuditEvents.AsNoTracking().OrderByDescending(e => e.Sequence)
            .Select(e => new { e.Sequence, e.Hash }).FirstOrDefaultAsync(cancellationToken);
        if (head is null) return;
        if (file.LastSequence() is { } kept)
        {
            logger.LogError("The audit checkpoints table is empty but {File} holds checkpoints up to event {Sequence}: someone removed " +
                "them. Not signing the current head; GET /api/v1/audit/verify says what no longer holds.", file.Path, kept);
            return;
        }
        db.AuditCheckpoints.Add(key.Sign(head.Sequence, head.Hash, DateTimeOffset.UtcNow));
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        logger.LogWarning("Signed the head of an audit trail written before checkpoints existed (event {Sequence}): the events up to it " +
            "are vouched for from now on by this checkpoint and the hash chain", head.Sequence);
    }
}
