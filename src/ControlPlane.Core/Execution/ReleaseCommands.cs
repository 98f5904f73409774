using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Governance;
using ControlPlane.Core.Notifications;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Core.Execution;

public sealed record RegisterApplication(
    string Name, string RouterKind, JsonElement RouterSettings, string DeployerKind, JsonElement DeployerSettings,
    IReadOnlyList<HttpCheck> Checks, ReleasePolicy Policy, string InitialVersion, Slot LiveSlot, string VerifyPath,
    Hooks.ApplicationHooks? Hooks = null);

/// <summary>
/// What people and pipelines can ask of the release flow (API and pages call these). Each command validates, applies the
/// domain transition and saves it with its audit event; the worker is woken by the NOTIFY that the save sends.
/// </summary>
public sealed partial class ReleaseCommands(
    ControlPlaneDbContext db, ProviderRegistry providers, ChangeNotifier notifier, RollbackWait rollbackWait, TimeProvider time,
    Hooks.SchemaDatabases? schemaDatabases = null)
{
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\z")]
    private static partial Regex VersionPattern();

    [GeneratedRegex(@"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z")]
    private static partial Regex NamePattern();

    public static string? VersionError(string? version) =>
        string.IsNullOrWhiteSpace(version) ? "is required"
        : !VersionPattern().IsMatch(version) || version.Contains("..")
            ? "must be 1-64 characters of letters, digits, '.', '_', '+' or '-', starting with a letter or digit (no slashes or '..')"
            : null;

    public static string? NameError(string? name) =>
        string.IsNullOrWhiteSpace(name) ? "is required"
        : !NamePattern().IsMatch(name) ? "must be a DNS label: 1-63 lower-case letters, digits or '-', not starting or ending with '-'"
        : null;

    public async Task<Application> RegisterAsync(RegisterApplication request, Actor by, CancellationToken cancellationToken)
    {
        var errors = new List<SettingsError>();
        if (NameError(request.Name) is { } nameError) errors.Add(new("name", nameError));
        if (VersionError(request.InitialVersion) is { } versionError) errors.Add(new("initialVersion", versionError));
        errors.AddRange(ConfigurationErrors(request));
        if (errors.Count > 0) throw new ValidationException(errors);

        if (await db.Applications.AnyAsync(a => a.Name == request.Name, cancellationToken))
            throw DomainException.Conflict($"An application named '{request.Name}' already exists.");

        var app = Application.Register(request.Name, request.RouterKind, request.RouterSettings.GetRawText(), request.DeployerKind,
            request.DeployerSettings.GetRawText(), request.Checks, request.Policy, request.InitialVersion, request.LiveSlot,
            request.VerifyPath, by, time.GetUtcNow(), request.Hooks);
        db.Applications.Add(app);
        await SaveAsync(cancellationToken);
        return app;
    }

    /// <summary>What registration and an edit both check: everything an application is configured with (not its name or first version).</summary>
    public IReadOnlyList<SettingsError> ConfigurationErrors(RegisterApplication request)
    {
        var errors = new List<SettingsError>();
        if (string.IsNullOrEmpty(request.VerifyPath) || !request.VerifyPath.StartsWith('/'))
            errors.Add(new("verifyPath", "must be an absolute path such as /"));
        var router = providers.FindRouter(request.RouterKind);
        if (router is null) errors.Add(new("router.kind", $"must be one of: {string.Join(", ", providers.RouterKinds.Order())}"));
        else errors.AddRange(router.ValidateSettings(request.RouterSettings).Select(e => e with { Field = "router.settings." + e.Field }));
        var deployer = providers.FindDeployer(request.DeployerKind);
        if (deployer is null) errors.Add(new("deployer.kind", $"must be one of: {string.Join(", ", providers.DeployerKinds.Order())}"));
        else errors.AddRange(deployer.ValidateSettings(request.DeployerSettings).Select(e => e with { Field = "deployer.settings." + e.Field }));
        for (var i = 0; i < request.Checks.Count; i++) errors.AddRange(request.Checks[i].Validate($"checks[{i}]"));
        errors.AddRange(request.Policy.Validate("policy"));
        if (request.Hooks is not null) errors.AddRange(request.Hooks.Validate("hooks", schemaDatabases?.Names ?? [], request.DeployerKind));
        return errors;
    }

    public async Task<Deployment> StartReleaseAsync(string application, string? version, string? reason, Actor by, CancellationToken cancellationToken,
        FreezeOverride? freezeOverride = null, Hooks.SchemaRequest? schema = null, Deployment? retryOf = null)
    {
        Hooks.ReleasePlanner.Validate(schema);
        if (VersionError(version) is { } error) throw DomainException.Invalid("version", $"version {error}.");
        if (reason?.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        var overrideReason = CheckOverride(freezeOverride);
        var app = await FindApplicationAsync(application, cancellationToken);
        var inFlight = await db.Deployments.AsNoTracking()
            .FirstOrDefaultAsync(d => d.ApplicationId == app.Id && DeploymentStates.InFlight.Contains(d.State), cancellationToken);
        if (inFlight is not null) throw InFlightConflict(app.Name, inFlight.Id, inFlight.Version, inFlight.State);
        var rollingBack = await db.Deployments.AsNoTracking()
            .Where(d => d.ApplicationId == app.Id && d.RollbackRequestId != null && d.RollbackRefusal == null && d.State == DeploymentState.Succeeded)
            .Select(d => new { d.RollbackRequestedBy }).FirstOrDefaultAsync(cancellationToken);
        if (rollingBack is not null)
            throw DomainException.Conflict($"A rollback of {app.Name} requested by {rollingBack.RollbackRequestedBy} is under way; start the release once it is done.");
        if (app.LiveVersion == version)
            throw DomainException.Conflict($"{app.Name} already runs {version} on the live slot.");
        var now = time.GetUtcNow();
        var freeze = await db.ActiveFreezeAsync(app.Id, now, cancellationToken);
        if (freeze is not null && overrideReason is null)
            throw DomainException.Conflict(FreezeCalendar.BlockedMessage(app.Name, freeze, "New releases are"));

        var d = Deployment.Request(app, version!, by, string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(), now);
        if (retryOf is not null) d.RecordRetryOf(retryOf, by, now);
        if (freeze is not null)
            d.RecordFreezeOverride(by, overrideReason!, "release", freeze.Window.Name, freeze.Window.Id, freeze.End, now);
        await Hooks.ReleasePlanner.PlanAsync(db, app, d, schema, by, now, cancellationToken);
        db.Deployments.Add(d);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { ConstraintName: "ux_deployments_one_in_flight" })
        {
            // Lost a race with another request: the database's unique index is the final word.
            throw DomainException.Conflict($"Another deployment of {app.Name} is already in flight.");
        }
        return d;
    }

    public Task<Deployment> ApproveAsync(Guid id, Actor by, string? comment, CancellationToken cancellationToken) =>
        MutateAsync(id, d => d.Approve(by, string.IsNullOrWhiteSpace(comment) ? null : comment.Trim(), time.GetUtcNow()), cancellationToken);

    /// <summary>
    /// The forward switch. Refused during a freeze unless an Admin overrides it with a reason; refused (and the release sent
    /// back to AwaitingApproval, audited) when an approval it relies on lapsed. Records the intent (audited) for the runtime
    /// leader's reconcile loop to carry out, then waits — bounded like a rollback (<see cref="RollbackWait"/>) — until the
    /// leader reports the traffic moved (Monitoring, or the switch failed) and returns the deployment as it then is; still
    /// <see cref="DeploymentState.Switching"/> when the wait ran out.
    /// </summary>
    public async Task<Deployment> SwitchAsync(Guid id, Actor by, CancellationToken cancellationToken, FreezeOverride? freezeOverride = null)
    {
        var overrideReason = CheckOverride(freezeOverride);
        using var report = new LeaderReport(notifier) { Deployment = id };
        // One read and one save: the worker may save the same row meanwhile (optimistic concurrency on xmin), so a few tries.
        Deployment recorded;
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var d = await db.Deployments.SingleOrDefaultAsync(x => x.Id == id, cancellationToken)
                    ?? throw DomainException.NotFound($"Deployment {id} does not exist.");
            var expired = d.ExpireApprovals(time.GetUtcNow());
            DomainException? refusal = null;
            if (expired && d.State == DeploymentState.AwaitingApproval)
                // The lapse is saved (and audited) all the same; the refusal then says why the switch did not happen.
                refusal = DomainException.Conflict($"Not switching {d.ApplicationName} {d.Version}: the {d.Step(StepNames.Approval).Message}. " +
                                                   "The release is back to AwaitingApproval and must be approved again.");
            else
            {
                var now = time.GetUtcNow();
                var freeze = await db.ActiveFreezeAsync(d.ApplicationId, now, cancellationToken);
                if (freeze is not null && overrideReason is null)
                    refusal = DomainException.Conflict(FreezeCalendar.BlockedMessage(d.ApplicationName, freeze, "Forward switches are"));
                else
                {
                    d.BeginSwitch(by, now);
                    if (freeze is not null) d.RecordFreezeOverride(by, overrideReason!, "switch", freeze.Window.Name, freeze.Window.Id, freeze.End, now);
                }
            }
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateConcurrencyException) when (attempt < 5)
            {
                continue;
            }
            if (refusal is not null) throw refusal;
            recorded = d;
            break;
        }
        return await report.WaitAsync(rollbackWait.Limit, async () =>
        {
            var d = await db.Deployments.AsNoTracking().SingleAsync(x => x.Id == id, cancellationToken);
            return d.State == DeploymentState.Switching ? null : d;
        }, cancellationToken) ?? recorded;
    }

    /// <summary>The override's reason when one was given by someone allowed to; null when none was asked for.</summary>
    private static string? CheckOverride(FreezeOverride? freezeOverride)
    {
        if (freezeOverride is null) return null;
        if (!freezeOverride.Authorized) throw DomainException.Forbidden("Only an Admin may override a freeze window.");
        if (string.IsNullOrWhiteSpace(freezeOverride.Reason))
            throw DomainException.Invalid("freezeOverride.reason", "freezeOverride.reason is required: say why the freeze is overridden (it is recorded in the audit trail).");
        if (freezeOverride.Reason.Length > 2000) throw DomainException.Invalid("freezeOverride.reason", "freezeOverride.reason must be at most 2000 characters.");
        return freezeOverride.Reason.Trim();
    }

    public async Task<FreezeWindow> CreateFreezeWindowAsync(string? application, FreezeWindowSpec spec, Actor by, CancellationToken cancellationToken)
    {
        var app = application is null ? null : await FindApplicationAsync(application, cancellationToken);
        var window = spec.Build(app, by, time.GetUtcNow());
        db.FreezeWindows.Add(window);
        await db.SaveChangesAsync(cancellationToken);
        return window;
    }

    public async Task DeleteFreezeWindowAsync(string? application, Guid id, Actor by, CancellationToken cancellationToken)
    {
        var window = await db.FreezeWindows.SingleOrDefaultAsync(w => w.Id == id && w.ApplicationName == application, cancellationToken)
                     ?? throw DomainException.NotFound(application is null
                         ? $"There is no global freeze window {id}."
                         : $"Application '{application}' has no freeze window {id}.");
        window.Delete(by, time.GetUtcNow());
        db.FreezeWindows.Remove(window);
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>A person's decision on a hook interrupted by a crash: run it again, or count it as done (audited with the reason).</summary>
    public Task<Deployment> ResolveHookAsync(Guid id, Actor by, bool runAgain, string? reason, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw DomainException.Invalid("reason", "reason is required (it is recorded in the audit trail).");
        if (reason.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        return MutateAsync(id, d => d.ResolveHeldHook(by, runAgain, reason.Trim(), time.GetUtcNow()), cancellationToken);
    }

    public Task<Deployment> AbortAsync(Guid id, Actor by, string? reason, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw DomainException.Invalid("reason", "reason is required to abort a release.");
        return MutateAsync(id, d => d.Abort(by, reason.Trim(), time.GetUtcNow()), cancellationToken);
    }

    /// <summary>
    /// A person's rollback: refused at once (409) when nothing warm and healthy is there to go back to; otherwise recorded as
    /// intent on the live release (audited in the same transaction) for the runtime leader's reconcile loop to carry out —
    /// on whichever replica that is. Returns once the leader reports the old version served (or refused), or after the
    /// bounded wait with <see cref="RollbackOutcome.Pending"/> set.
    /// </summary>
    public async Task<RollbackOutcome> RollbackAsync(string application, Actor by, string? reason, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw DomainException.Invalid("reason", "reason is required for a rollback (it is recorded in the audit trail).");
        if (reason.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");

        // Listening before the intent is saved, so the leader's answer cannot slip by between the save and the wait.
        using var report = new LeaderReport(notifier);
        Deployment live;
        Guid requestId;
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var app = await FindApplicationAsync(application, cancellationToken);
            var now = time.GetUtcNow();
            var previous = app.SlotStatusOf(app.StandbySlot);
            var current = await db.Deployments
                .Where(d => d.ApplicationId == app.Id && d.TargetSlot == app.LiveSlot &&
                            (d.State == DeploymentState.Monitoring || d.State == DeploymentState.Succeeded))
                .OrderByDescending(d => d.CreatedAt).FirstOrDefaultAsync(cancellationToken);
            var releasing = await db.Deployments.AsNoTracking()
                .FirstOrDefaultAsync(d => d.ApplicationId == app.Id && BeforeSwitch.Contains(d.State), cancellationToken);
            if (current is null || releasing is not null || !app.IsRollbackAvailable(now) || previous.Version is null)
            {
                // Across a contract the reason is the schema, not the slot: redeploying the old version is refused too.
                if (previous.Version is { } older && await Hooks.ReleasePlanner.ContractOlderThanAsync(db, app, older, cancellationToken) is { } contracted)
                    throw DomainException.Conflict($"Rollback of {app.Name} to {older} refused: {contracted}");
                throw DomainException.Conflict(TrafficSwitch.NoWarmSlotMessage(app, releasing, current?.FromVersion));
            }
            if (!previous.Healthy)
                throw DomainException.Conflict(TrafficSwitch.PreviousUnhealthyMessage(app, previous.Message));
            live = current;
            report.Deployment = live.Id;
            requestId = live.RequestRollback(by, reason.Trim(), automatic: false, now);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                break;
            }
            // The worker may save the same row meanwhile (a monitoring tick): look again with fresh state.
            catch (DbUpdateConcurrencyException) when (attempt < 5) { }
        }
        return await WaitForRollbackAsync(live.Id, requestId, application, report, cancellationToken);
    }

    private static readonly DeploymentState[] BeforeSwitch = [.. DeploymentStates.InFlight.Where(s => s.IsBeforeSwitch())];

    private async Task<RollbackOutcome> WaitForRollbackAsync(Guid deploymentId, Guid requestId, string application, LeaderReport report,
        CancellationToken cancellationToken) =>
        await report.WaitAsync(rollbackWait.Limit, async () =>
        {
            var d = await db.Deployments.AsNoTracking().Where(x => x.Id == deploymentId)
                .Select(x => new { x.State, x.RollbackRequestId, x.RollbackRefusal, x.Version }).SingleAsync(cancellationToken);
            if (d.RollbackRequestId == requestId && d.RollbackRefusal is { } refusal) throw DomainException.Conflict(refusal);
            if (d.State != DeploymentState.RolledBack) return null;
            var app = await db.Applications.AsNoTracking().SingleAsync(a => a.Name == application, cancellationToken);
            return new RollbackOutcome(true, false, deploymentId, app.LiveSlot, app.LiveVersion,
                $"Rolled back: {application} serves {app.LiveVersion} from {app.LiveSlot.Name()} (verified through the router).");
        }, cancellationToken)
        ?? new RollbackOutcome(false, true, deploymentId, default, null,
            $"The rollback of {application} is recorded and the runtime leader has not reported yet; follow deployment {deploymentId}.");

    private async Task<Deployment> MutateAsync(Guid id, Action<Deployment> change, CancellationToken cancellationToken)
    {
        // The worker may save the same row meanwhile (optimistic concurrency on xmin): reload and re-apply, a few times.
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var d = await db.Deployments.SingleOrDefaultAsync(x => x.Id == id, cancellationToken)
                    ?? throw DomainException.NotFound($"Deployment {id} does not exist.");
            change(d);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return d;
            }
            catch (DbUpdateConcurrencyException) when (attempt < 5) { }
        }
    }

    private async Task<Application> FindApplicationAsync(string name, CancellationToken cancellationToken)
    {
        var app = await db.Applications.SingleOrDefaultAsync(a => a.Name == name, cancellationToken)
                  ?? throw DomainException.NotFound($"Application '{name}' does not exist.");
        if (app.ArchivedAt is { } at) throw DomainException.Conflict($"{name} was archived at {at:u}; its history is kept, but nothing can be done to it.");
        return app;
    }

    private async Task SaveAsync(CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            throw DomainException.Conflict("It already exists (" + ((PostgresException)ex.InnerException).ConstraintName + ").");
        }
    }

    private static DomainException InFlightConflict(string app, Guid id, string version, DeploymentState state) =>
        DomainException.Conflict($"{app} already has a deployment in flight: {version} ({id}) is {state}. Wait for it to finish or abort it.");
}

/// <summary>How long a rollback or switch request waits for the runtime leader to report the move before answering "accepted, poll here".</summary>
public sealed record RollbackWait(TimeSpan Limit);

/// <summary>Several field-level errors at once (registration).</summary>
public sealed class ValidationException(IReadOnlyList<SettingsError> errors)
    : Exception("Invalid request: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")))
{
    public IReadOnlyList<SettingsError> Errors { get; } = errors;
}
