using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using ControlPlane.Core.Identity;
using ControlPlane.Core.Notifications;
using ControlPlane.Core.Notifications.Webhooks;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Data;

/// <summary>
/// The one database context: release flow, audit trail, API tokens, local accounts (ASP.NET Core Identity, users only —
/// each user has one role column) and the Data Protection key ring shared by every replica.
/// </summary>
/// <param name="checkpointKey">Signs the chain head on every audited save; null only where no key exists (design time).</param>
public sealed class ControlPlaneDbContext(DbContextOptions<ControlPlaneDbContext> options, AuditCheckpointKey? checkpointKey = null)
    : IdentityUserContext<ControlPlaneUser>(options), IDataProtectionKeyContext
{
    /// <summary>Serializes writers of the audit hash chain (pg_advisory_xact_lock key).</summary>
    public const long AuditChainLockKey = 0x436F6E74726F6C50; // "ControlP"

    private readonly List<AuditEvent> _pendingAuditEvents = [];

    public DbSet<Application> Applications => Set<Application>();
    public DbSet<Deployment> Deployments => Set<Deployment>();
    public DbSet<AuditEvent> AuditEvents => Set<AuditEvent>();
    public DbSet<AuditCheckpoint> AuditCheckpoints => Set<AuditCheckpoint>();
    public DbSet<ApiToken> ApiTokens => Set<ApiToken>();
    public DbSet<FreezeWindow> FreezeWindows => Set<FreezeWindow>();
    public DbSet<CheckMeasurement> CheckMeasurements => Set<CheckMeasurement>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    /// <summary>Records an audit event not owned by an aggregate (e.g. a refused sign-in); saved with the next SaveChanges.</summary>
    public void Record(AuditEvent auditEvent) => _pendingAuditEvents.Add(auditEvent);

    protected override void OnModelCreating(ModelBuilder b)
    {
        base.OnModelCreating(b); // Identity's user tables
        MapIdentity(b);
        var json = JsonSerializerOptions.Web;
        b.Entity<Application>().Ignore(a => a.PendingAuditEvents);
        b.Entity<Deployment>().Ignore(d => d.PendingAuditEvents);
        b.Entity<ApiToken>().Ignore(t => t.PendingAuditEvents);

        b.Entity<Application>(e =>
        {
            e.ToTable("applications");
            e.HasKey(a => a.Id);
            e.HasIndex(a => a.Name).IsUnique();
            e.Property(a => a.Name).HasMaxLength(63);
            e.Property(a => a.LiveSlot).HasConversion<string>().HasMaxLength(8);
            e.Property(a => a.RouterKind).HasMaxLength(32);
            e.Property(a => a.DeployerKind).HasMaxLength(32);
            e.Property(a => a.RouterSettings).HasColumnType("jsonb");
            e.Property(a => a.DeployerSettings).HasColumnType("jsonb");
            e.Property(a => a.Checks).HasColumnType("jsonb").HasConversion(
                v => JsonSerializer.Serialize(v, json),
                v => JsonSerializer.Deserialize<List<HttpCheck>>(v, json) ?? new List<HttpCheck>(),
                new ValueComparer<List<HttpCheck>>((x, y) => x!.SequenceEqual(y!), v => v.Aggregate(0, (h, c) => HashCode.Combine(h, c)), v => v.ToList()));
            e.Property(a => a.Policy).HasColumnType("jsonb").HasConversion(
                v => JsonSerializer.Serialize(v, json),
                v => JsonSerializer.Deserialize<ReleasePolicy>(v, json) ?? new ReleasePolicy());
            e.Property(a => a.Hooks).HasColumnType("jsonb").HasConversion(
                v => v == null ? null : JsonSerializer.Serialize(v, json),
                v => v == null ? null : JsonSerializer.Deserialize<Hooks.ApplicationHooks>(v, json));
            e.OwnsOne(a => a.Blue, s => MapSlot(s, "blue"));
            e.OwnsOne(a => a.Green, s => MapSlot(s, "green"));
            e.Property(a => a.RowVersion).IsRowVersion();
            e.Property(a => a.RuntimeHost).HasMaxLength(253);
            e.Ignore(a => a.LiveStatus);
            e.Ignore(a => a.LiveVersion);
            e.Ignore(a => a.StandbySlot);
            e.Ignore(a => a.RouterSettingsJson);
            e.Ignore(a => a.DeployerSettingsJson);
        });

        b.Entity<Deployment>(e =>
        {
            e.ToTable("deployments");
            e.HasKey(d => d.Id);
            e.Property(d => d.State).HasConversion<string>().HasMaxLength(24);
            e.Property(d => d.FromSlot).HasConversion<string>().HasMaxLength(8);
            e.Property(d => d.TargetSlot).HasConversion<string>().HasMaxLength(8);
            e.Property(d => d.Version).HasMaxLength(64);
            e.Property(d => d.FromVersion).HasMaxLength(64);
            e.Property(d => d.ApplicationName).HasMaxLength(63);
            e.Property(d => d.RowVersion).IsRowVersion();
            e.Property(d => d.RollbackRequestedBy).HasMaxLength(128);
            e.Property(d => d.RollbackRequestedByKind).HasConversion<string>().HasMaxLength(16);
            e.Ignore(d => d.RollbackPending);
            e.Property(d => d.PromoteRequestedBy).HasMaxLength(128);
            e.Property(d => d.PromoteRequestedByKind).HasConversion<string>().HasMaxLength(16);
            e.Property(d => d.Lifecycle).HasColumnType("jsonb").HasConversion(
                v => v == null ? null : JsonSerializer.Serialize(v, json),
                v => v == null ? null : JsonSerializer.Deserialize<Hooks.ReleaseLifecycle>(v, json));
            e.Property(d => d.HeldHook).HasMaxLength(32);
            e.Ignore(d => d.RollbackRequester);
            e.HasOne<Application>().WithMany().HasForeignKey(d => d.ApplicationId).OnDelete(DeleteBehavior.Restrict);
            // The database itself refuses a second in-flight deployment for an application.
            e.HasIndex(d => d.ApplicationId).IsUnique().HasFilter(
                "state IN (" + string.Join(", ", DeploymentStates.InFlight.Select(s => $"'{s}'")) + ")")
                .HasDatabaseName("ux_deployments_one_in_flight");
            e.HasIndex(d => new { d.ApplicationId, d.CreatedAt });
            e.HasIndex(d => d.NextRunAt).HasFilter("next_run_at IS NOT NULL");
            e.HasMany(d => d.Steps).WithOne().HasForeignKey(s => s.DeploymentId).OnDelete(DeleteBehavior.Cascade);
            e.HasMany(d => d.Approvals).WithOne().HasForeignKey(a => a.DeploymentId).OnDelete(DeleteBehavior.Cascade);
            e.Navigation(d => d.Steps).AutoInclude();
            e.Navigation(d => d.Approvals).AutoInclude();
        });

        b.Entity<CheckMeasurement>(e =>
        {
            e.ToTable("check_measurements");
            e.HasKey(m => m.Id);
            e.Property(m => m.Step).HasMaxLength(16);
            e.Property(m => m.CheckName).HasMaxLength(100);
            e.Property(m => m.Name).HasMaxLength(200);
            e.Property(m => m.Outcome).HasConversion<string>().HasMaxLength(16);
            e.HasOne<Deployment>().WithMany().HasForeignKey(m => m.DeploymentId).OnDelete(DeleteBehavior.Cascade);
            e.HasIndex(m => new { m.DeploymentId, m.At });
        });

        b.Entity<DeploymentStep>(e =>
        {
            e.ToTable("deployment_steps");
            e.HasKey(s => s.Id);
            e.Property(s => s.Name).HasMaxLength(32);
            e.Property(s => s.State).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(s => new { s.DeploymentId, s.Name }).IsUnique();
        });

        b.Entity<Approval>(e =>
        {
            e.ToTable("approvals");
            e.HasKey(a => a.Id);
            e.Property(a => a.By).HasMaxLength(128);
            // Distinct people: the same actor cannot approve one deployment twice, even racing.
            e.HasIndex(a => new { a.DeploymentId, a.By }).IsUnique();
        });

        b.Entity<AuditEvent>(e =>
        {
            e.ToTable("audit_events");
            e.HasKey(a => a.Sequence);
            e.Property(a => a.Sequence).ValueGeneratedNever();
            e.Property(a => a.ActorKind).HasConversion<string>().HasMaxLength(16);
            e.Property(a => a.Action).HasMaxLength(64);
            e.Property(a => a.Actor).HasMaxLength(128);
            e.Property(a => a.Application).HasMaxLength(63);
            e.Property(a => a.PreviousHash).HasMaxLength(64);
            e.Property(a => a.Hash).HasMaxLength(64);
            // Keyset paging newest-first, overall and per filter.
            e.HasIndex(a => new { a.Application, a.Sequence });
            e.HasIndex(a => new { a.Actor, a.Sequence });
            e.HasIndex(a => new { a.Action, a.Sequence });
            // Time windows become sequence ranges through this index (occurred_at never decreases along the chain).
            e.HasIndex(a => new { a.OccurredAt, a.Sequence });
            e.HasIndex(a => a.DeploymentId);
        });

        b.Entity<AuditCheckpoint>(e =>
        {
            e.ToTable("audit_checkpoints");
            e.HasKey(c => c.Sequence);
            e.Property(c => c.Sequence).ValueGeneratedNever();
            e.Property(c => c.Hash).HasMaxLength(64);
            e.Property(c => c.KeyId).HasMaxLength(16);
            e.Property(c => c.Signature).HasMaxLength(200);
            e.Ignore(c => c.SignedAtText);
        });

        b.Entity<FreezeWindow>(e =>
        {
            e.ToTable("freeze_windows");
            e.HasKey(w => w.Id);
            e.Ignore(w => w.PendingAuditEvents);
            e.Ignore(w => w.Summary);
            e.Ignore(w => w.Zone);
            e.Property(w => w.Id).ValueGeneratedNever();
            e.Property(w => w.Name).HasMaxLength(100);
            e.Property(w => w.ApplicationName).HasMaxLength(63);
            e.Property(w => w.Kind).HasConversion<string>().HasMaxLength(16);
            e.Property(w => w.TimeZone).HasMaxLength(64);
            e.Property(w => w.CreatedBy).HasMaxLength(128);
            e.Property(w => w.DaysOfWeek).HasColumnType("jsonb").HasConversion(
                v => JsonSerializer.Serialize(v, json),
                v => JsonSerializer.Deserialize<List<DayOfWeek>>(v, json) ?? new List<DayOfWeek>(),
                new ValueComparer<List<DayOfWeek>>((x, y) => x!.SequenceEqual(y!), v => v.Aggregate(0, (h, d) => HashCode.Combine(h, d)), v => v.ToList()));
            // A window of an application goes with it; global windows have no application.
            e.HasOne<Application>().WithMany().HasForeignKey(w => w.ApplicationId).OnDelete(DeleteBehavior.Cascade);
            e.HasIndex(w => w.ApplicationId);
        });

        b.Entity<ApiToken>(e =>
        {
            e.ToTable("api_tokens");
            e.HasKey(t => t.Id);
            e.Property(t => t.Name).HasMaxLength(64);
            e.Property(t => t.Role).HasConversion<string>().HasMaxLength(24);
            e.Property(t => t.TokenHash).HasMaxLength(64);
            e.Property(t => t.Owner).HasMaxLength(256);
            e.HasIndex(t => t.TokenHash).IsUnique();
            // A token name is an identity (machine tokens) or the means named in the audit trail: one token per name.
            e.HasIndex(t => t.Name).IsUnique();
            e.HasIndex(t => t.Owner);
        });

        WebhookModel.Map(b);

        // Keys are created in the domain (Guid v7), never by the database; telling EF so makes a new approval or step
        // added to a tracked deployment an INSERT rather than an UPDATE of a row that does not exist.
        b.Entity<Application>().Property(x => x.Id).ValueGeneratedNever();
        b.Entity<Deployment>().Property(x => x.Id).ValueGeneratedNever();
        b.Entity<DeploymentStep>().Property(x => x.Id).ValueGeneratedNever();
        b.Entity<Approval>().Property(x => x.Id).ValueGeneratedNever();
        b.Entity<ApiToken>().Property(x => x.Id).ValueGeneratedNever();

        // snake_case columns, so hand-written SQL (claims, triggers, filters) reads naturally.
        foreach (var entity in b.Model.GetEntityTypes().Where(t => !t.IsOwned()))
            foreach (var property in entity.GetProperties())
                if (property.GetColumnName() == property.Name && property.Name != nameof(Application.RowVersion))
                    property.SetColumnName(SnakeCase(property.Name));
    }

    private static void MapIdentity(ModelBuilder b)
    {
        b.Entity<ControlPlaneUser>(e =>
        {
            e.ToTable("users");
            e.Property(u => u.Role).HasConversion<string>().HasMaxLength(24);
        });
        b.Entity<Microsoft.AspNetCore.Identity.IdentityUserClaim<string>>().ToTable("user_claims");
        b.Entity<Microsoft.AspNetCore.Identity.IdentityUserLogin<string>>().ToTable("user_logins");
        b.Entity<Microsoft.AspNetCore.Identity.IdentityUserToken<string>>().ToTable("user_tokens");
        b.Entity<DataProtectionKey>().ToTable("data_protection_keys");
    }

    private static string SnakeCase(string name) =>
        string.Concat(name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    private static void MapSlot<T>(OwnedNavigationBuilder<Application, T> s, string prefix) where T : class
    {
        s.Property(nameof(SlotStatus.Version)).HasColumnName($"{prefix}_version").HasMaxLength(64);
        s.Property(nameof(SlotStatus.State)).HasColumnName($"{prefix}_state").HasConversion<string>().HasMaxLength(16);
        s.Property(nameof(SlotStatus.Healthy)).HasColumnName($"{prefix}_healthy");
        s.Property(nameof(SlotStatus.ObservedAt)).HasColumnName($"{prefix}_observed_at");
        s.Property(nameof(SlotStatus.Message)).HasColumnName($"{prefix}_message");
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        // Data Protection's key repository saves synchronously; a new key needs no audit event or notice.
        if (_pendingAuditEvents.Count == 0 && ChangeTracker.Entries()
                .Where(e => e.State is not (EntityState.Unchanged or EntityState.Detached))
                .All(e => e.Entity is DataProtectionKey))
            return base.SaveChanges(acceptAllChangesOnSuccess);
        throw new NotSupportedException("Use SaveChangesAsync: saving appends to the audit chain, which takes a database lock.");
    }

    /// <summary>
    /// Saves the change, the audit events it recorded (hash-chained, under a lock) and a NOTIFY for every replica — all in
    /// one transaction, so an action and its audit record exist together or not at all.
    /// </summary>
    public override async Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        var recorders = ChangeTracker.Entries<IRecordsAuditEvents>().Select(e => e.Entity).ToList();
        var events = _pendingAuditEvents.Concat(recorders.SelectMany(r => r.PendingAuditEvents)).ToList();
        var notices = CollectNotices(events);
        if (events.Count == 0 && notices.Count == 0)
            return await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);

        var ownTransaction = Database.CurrentTransaction is null
            ? await Database.BeginTransactionAsync(cancellationToken)
            : null;
        try
        {
            await LockApplicationsAsync(cancellationToken);
            if (events.Count > 0) await ChainAsync(events, cancellationToken);
            var written = await base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
            foreach (var notice in notices)
                await Database.ExecuteSqlAsync($"SELECT pg_notify({ChangeNotice.Channel}, {JsonSerializer.Serialize(notice)})", cancellationToken);
            if (ownTransaction is not null) await ownTransaction.CommitAsync(cancellationToken);
            _pendingAuditEvents.Clear();
            foreach (var r in recorders) r.ClearPendingAuditEvents();
            Telemetry.ControlPlaneTelemetry.Saved(events);
            return written;
        }
        catch
        {
            // Sequence and hash were assigned for a transaction that did not commit; drop them so a retry re-chains.
            foreach (var e in events) Entry(e).State = EntityState.Detached;
            foreach (var c in ChangeTracker.Entries<AuditCheckpoint>().Where(c => c.State == EntityState.Added).ToList()) c.State = EntityState.Detached;
            foreach (var o in ChangeTracker.Entries<WebhookOutboxMessage>().Where(o => o.State == EntityState.Added).ToList()) o.State = EntityState.Detached;
            throw;
        }
        finally
        {
            if (ownTransaction is not null) await ownTransaction.DisposeAsync();
        }
    }

    /// <summary>
    /// One lock order for every writer: the application rows a save touches (in id order), then the audit chain, then
    /// deployments. Without it a save that takes the audit lock and then touches an application row (an UPDATE, or the
    /// key-share lock of inserting a deployment) deadlocks with a rollback or worker step holding that row.
    /// </summary>
    private async Task LockApplicationsAsync(CancellationToken cancellationToken)
    {
        var ids = ChangeTracker.Entries()
            .Where(e => e.State is EntityState.Modified or EntityState.Deleted or EntityState.Added)
            .Select(e => e.Entity switch
            {
                Application a when e.State != EntityState.Added => a.Id,
                Deployment d => d.ApplicationId,
                FreezeWindow w => w.ApplicationId,
                _ => (Guid?)null,
            })
            .OfType<Guid>().Distinct().Order().ToArray();
        if (ids.Length > 0)
            await Database.ExecuteSqlAsync($"SELECT 1 FROM applications WHERE id = ANY({ids}) ORDER BY id FOR UPDATE", cancellationToken);
    }

    private async Task ChainAsync(List<AuditEvent> events, CancellationToken cancellationToken)
    {
        await Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({AuditChainLockKey})", cancellationToken);
        var last = await AuditEvents.AsNoTracking().OrderByDescending(a => a.Sequence)
            .Select(a => new { a.Sequence, a.Hash, a.OccurredAt }).FirstOrDefaultAsync(cancellationToken);
        var sequence = last?.Sequence ?? 0;
        var previous = last?.Hash ?? AuditHash.Genesis;
        var previousAt = last?.OccurredAt ?? DateTimeOffset.MinValue;
        var latest = checkpointKey is null || last is null ? null
            : await AuditCheckpoints.AsNoTracking().OrderByDescending(c => c.Sequence).FirstOrDefaultAsync(cancellationToken);
        // A trail older than checkpoints (none at all yet) is signed once at start by AuditCheckpointPublisher, not here.
        var legacy = last is not null && latest is null;
        var anchored = checkpointKey is not null && (last is null
            || latest is not null && latest.Sequence == last.Sequence && latest.Hash == last.Hash && checkpointKey.Verify(latest));
        foreach (var e in events)
        {
            // Events are stamped before they wait for this lock; keeping time non-decreasing along the chain lets a time
            // filter become a sequence range (fast over millions of events). The shift is at most the lock wait.
            if (e.OccurredAt < previousAt) e.OccurredAt = previousAt;
            previousAt = e.OccurredAt;
            e.Sequence = ++sequence;
            e.PreviousHash = previous;
            e.Hash = previous = AuditHash.Compute(e);
            AuditEvents.Add(e);
            // The webhook outbox row commits with its audit event or not at all (delivered later by WebhookDeliveryWorker).
            if (WebhookEvents.ForAuditAction(e.Action) is { } webhookEvent)
                Add(new WebhookOutboxMessage { AuditSequence = e.Sequence, EventType = webhookEvent, CreatedAt = e.OccurredAt });
        }
        // The new head, signed in the same transaction: every genuine event is covered by a checkpoint, so a row added
        // by anyone without the key (a database superuser included) is not. Only a head that is itself signed is built
        // on: signing on top of a forged row would vouch for it.
        if (anchored)
            AuditCheckpoints.Add(checkpointKey!.Sign(sequence, previous, DateTimeOffset.UtcNow));
        else if (checkpointKey is not null && !legacy)
            this.GetService<ILoggerFactory>().CreateLogger("ControlPlane.Audit").LogError(
                "Not signing audit events {From}..{To}: the chain head they follow (event {Head}) is not covered by a checkpoint signed " +
                "with key {KeyId}, so it was added or changed without the key. GET /api/v1/audit/verify names the first such event.",
                last!.Sequence + 1, sequence, last.Sequence, checkpointKey.KeyId);
    }

    private List<ChangeNotice> CollectNotices(List<AuditEvent> events)
    {
        var notices = new HashSet<ChangeNotice>();
        foreach (var entry in ChangeTracker.Entries())
        {
            if (entry.State is EntityState.Unchanged or EntityState.Detached) continue;
            switch (entry.Entity)
            {
                case Application a: notices.Add(new(ChangeNotice.ApplicationKind, a.Name, null)); break;
                case Deployment d: notices.Add(new(ChangeNotice.DeploymentKind, d.ApplicationName, d.Id)); break;
                // A freeze window changes what every view of its application shows (a global one: of every application).
                case FreezeWindow w: notices.Add(new(ChangeNotice.ApplicationKind, w.ApplicationName, null)); break;
            }
        }
        // Owned slot state and child rows (steps, approvals) change without their owner being marked modified.
        foreach (var entry in ChangeTracker.Entries<SlotStatus>().Where(e => e.State is EntityState.Modified or EntityState.Added))
            if (entry.Metadata.IsOwned() && FindOwner(entry) is Application a) notices.Add(new(ChangeNotice.ApplicationKind, a.Name, null));
        foreach (var id in ChangeTracker.Entries<DeploymentStep>().Where(e => e.State != EntityState.Unchanged).Select(e => e.Entity.DeploymentId)
                     .Concat(ChangeTracker.Entries<Approval>().Where(e => e.State != EntityState.Unchanged).Select(e => e.Entity.DeploymentId)))
        {
            var d = ChangeTracker.Entries<Deployment>().FirstOrDefault(x => x.Entity.Id == id)?.Entity;
            if (d is not null) notices.Add(new(ChangeNotice.DeploymentKind, d.ApplicationName, d.Id));
        }
        if (events.Count > 0) notices.Add(new(ChangeNotice.AuditKind, null, null));
        return [.. notices];
    }

    private object? FindOwner(EntityEntry<SlotStatus> owned)
    {
        var ownership = owned.Metadata.FindOwnership();
        if (ownership is null) return null;
        return ChangeTracker.Entries<Application>()
            .FirstOrDefault(a => ReferenceEquals(a.Entity.Blue, owned.Entity) || ReferenceEquals(a.Entity.Green, owned.Entity))?.Entity;
    }
}
