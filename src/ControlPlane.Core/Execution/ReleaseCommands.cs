using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Core.Execution;

public sealed record RegisterApplication(
    string Name, string RouterKind, JsonElement RouterSettings, string DeployerKind, JsonElement DeployerSettings,
    IReadOnlyList<HttpCheck> Checks, ReleasePolicy Policy, string InitialVersion, Slot LiveSlot, string VerifyPath);

/// <summary>
/// What people and pipelines can ask of the release flow (API and pages call these). Each command validates, applies the
/// domain transition and saves it with its audit event; the worker is woken by the NOTIFY that the save sends.
/// </summary>
public sealed partial class ReleaseCommands(ControlPlaneDbContext db, ProviderRegistry providers, TrafficSwitch trafficSwitch, TimeProvider time)
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
        if (errors.Count > 0) throw new ValidationException(errors);

        if (await db.Applications.AnyAsync(a => a.Name == request.Name, cancellationToken))
            throw DomainException.Conflict($"An application named '{request.Name}' already exists.");

        var app = Application.Register(request.Name, request.RouterKind, request.RouterSettings.GetRawText(), request.DeployerKind,
            request.DeployerSettings.GetRawText(), request.Checks, request.Policy, request.InitialVersion, request.LiveSlot,
            request.VerifyPath, by, time.GetUtcNow());
        db.Applications.Add(app);
        await SaveAsync(cancellationToken);
        return app;
    }

    public async Task<Deployment> StartReleaseAsync(string application, string? version, string? reason, Actor by, CancellationToken cancellationToken)
    {
        if (VersionError(version) is { } error) throw DomainException.Invalid("version", $"version {error}.");
        if (reason?.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        var app = await FindApplicationAsync(application, cancellationToken);
        var inFlight = await db.Deployments.AsNoTracking()
            .FirstOrDefaultAsync(d => d.ApplicationId == app.Id && DeploymentStates.InFlight.Contains(d.State), cancellationToken);
        if (inFlight is not null) throw InFlightConflict(app.Name, inFlight.Id, inFlight.Version, inFlight.State);
        if (app.LiveVersion == version)
            throw DomainException.Conflict($"{app.Name} already runs {version} on the live slot.");

        var d = Deployment.Request(app, version!, by, string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(), time.GetUtcNow());
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

    public Task<Deployment> SwitchAsync(Guid id, Actor by, CancellationToken cancellationToken) =>
        MutateAsync(id, d => d.BeginSwitch(by, time.GetUtcNow()), cancellationToken);

    public Task<Deployment> AbortAsync(Guid id, Actor by, string? reason, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw DomainException.Invalid("reason", "reason is required to abort a release.");
        return MutateAsync(id, d => d.Abort(by, reason.Trim(), time.GetUtcNow()), cancellationToken);
    }

    public Task<RollbackOutcome> RollbackAsync(string application, Actor by, string? reason, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw DomainException.Invalid("reason", "reason is required for a rollback (it is recorded in the audit trail).");
        if (reason.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        return trafficSwitch.RollbackAsync(application, by, reason.Trim(), onlyIfMonitoring: null, cancellationToken);
    }

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

    private async Task<Application> FindApplicationAsync(string name, CancellationToken cancellationToken) =>
        await db.Applications.SingleOrDefaultAsync(a => a.Name == name, cancellationToken)
        ?? throw DomainException.NotFound($"Application '{name}' does not exist.");

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

/// <summary>Several field-level errors at once (registration).</summary>
public sealed class ValidationException(IReadOnlyList<SettingsError> errors)
    : Exception("Invalid request: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")))
{
    public IReadOnlyList<SettingsError> Errors { get; } = errors;
}
