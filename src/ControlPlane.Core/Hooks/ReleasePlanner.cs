using System.Text.RegularExpressions;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Hooks;

/// <summary>An override of the DDL guard: only an Admin may give one, with a reason (audited).</summary>
public sealed record DdlOverride(string? Reason, bool Authorized);

/// <summary>The <c>schema</c> of a release request, with an optional guard override.</summary>
public sealed record SchemaRequest(ReleaseSchema? Schema, DdlOverride? Override);

/// <summary>
/// Decides, when a release is requested, which hook steps it runs (the application's hooks and the release's schema) and
/// refuses what must not start: a destructive expand script (unless an Admin overrides), a version older than a contract
/// that already ran, and a release while the previous one's contract/postHold is still to run.
/// </summary>
public static partial class ReleasePlanner
{
    public static void Validate(SchemaRequest? request)
    {
        if (request?.Schema is { } schema)
        {
            var errors = schema.Validate("schema").ToList();
            if (errors.Count > 0) throw new ValidationException(errors);
        }
        if (request?.Override is not { } o) return;
        if (!o.Authorized) throw DomainException.Forbidden("Only an Admin may override the schema guard (ddlOverride).");
        if (string.IsNullOrWhiteSpace(o.Reason))
            throw DomainException.Invalid("ddlOverride.reason", "ddlOverride.reason is required: say why the refused statements may run in expand (it is recorded in the audit trail).");
        if (o.Reason.Length > 2000) throw DomainException.Invalid("ddlOverride.reason", "ddlOverride.reason must be at most 2000 characters.");
    }

    public static async Task PlanAsync(ControlPlaneDbContext db, Application app, Deployment d, SchemaRequest? request, Actor by, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var pendingAfterHold = await db.Deployments.AsNoTracking()
            .Where(x => x.ApplicationId == app.Id && x.State == DeploymentState.Succeeded &&
                        x.Steps.Any(s => (s.Name == HookSteps.Contract || s.Name == HookSteps.PostHold) && (s.State == StepState.Pending || s.State == StepState.Running || s.State == StepState.Failed)))
            .Select(x => new { x.Version, x.Id }).FirstOrDefaultAsync(cancellationToken);
        if (pendingAfterHold is not null)
            throw DomainException.Conflict($"{app.Name} {pendingAfterHold.Version} (release {pendingAfterHold.Id}) still has its contract/postHold step to run at the end of " +
                                           $"its hold window{(app.RollbackAvailableUntil is { } until ? $" ({until:u})" : "")}; start the next release after it.");
        await RefuseOlderThanContractAsync(db, app, d.Version, cancellationToken);

        var schema = request?.Schema;
        var errors = new List<SettingsError>();
        foreach (var (field, hook) in new[] { ("schema.expand", schema?.Expand), ("schema.contract", schema?.Contract) })
        {
            if (hook?.Kind == HookKinds.Sql && app.Hooks?.SchemaDatabase is null)
                errors.Add(new($"{field}.kind", $"{app.Name} names no hooks.schemaDatabase for SQL scripts to run against; register one or use a command/http hook"));
            if (hook?.Kind == HookKinds.KubernetesJob)
                errors.AddRange(hook.Validate(field, sqlAllowed: true, app.DeployerKind).Where(e => e.Field == $"{field}.kind"));
        }
        if (schema?.Expand is { Kind: HookKinds.Sql, Script: { } script })
        {
            var findings = DdlGuard.CheckExpand(script);
            if (findings.Count > 0 && request?.Override is null)
                errors.Add(new("schema.expand.script",
                    "refused: expand runs while the live version serves and must keep it (and a rollback to it) working — " +
                    string.Join("; ", findings) + ". Move these to schema.contract, or an Admin may override with ddlOverride.reason"));
            else if (findings.Count > 0)
                d.RecordDdlOverride(by, request!.Override!.Reason!.Trim(), findings, now);
        }
        if (errors.Count > 0) throw new ValidationException(errors);
        d.PlanLifecycle(new ReleaseLifecycle { Hooks = app.Hooks, Schema = schema is { Expand: null, Contract: null } ? null : schema });
    }

    /// <summary>
    /// After a contract, versions from before it may read what it removed. Refused: a version released before the last
    /// contract, or one numerically lower than the contracted version (1.0.0 &lt; 2.0.0).
    /// </summary>
    public static async Task RefuseOlderThanContractAsync(ControlPlaneDbContext db, Application app, string version, CancellationToken cancellationToken)
    {
        if (await ContractOlderThanAsync(db, app, version, cancellationToken) is { } why) throw DomainException.Conflict(why);
    }

    public static async Task<string?> ContractOlderThanAsync(ControlPlaneDbContext db, Application app, string version, CancellationToken cancellationToken)
    {
        var contract = await db.Deployments.AsNoTracking()
            .Where(x => x.ApplicationId == app.Id && x.Steps.Any(s => s.Name == HookSteps.Contract && s.State == StepState.Succeeded))
            .OrderByDescending(x => x.CreatedAt).FirstOrDefaultAsync(cancellationToken);
        if (contract is null || contract.Version == version) return null;
        var before = await db.Deployments.AsNoTracking().Where(x => x.ApplicationId == app.Id && x.CreatedAt <= contract.CreatedAt)
            .Select(x => new { x.Version, x.FromVersion }).ToListAsync(cancellationToken);
        var since = await db.Deployments.AsNoTracking().Where(x => x.ApplicationId == app.Id && x.CreatedAt > contract.CreatedAt && x.Version == version &&
                                                                   x.State == DeploymentState.Succeeded).AnyAsync(cancellationToken);
        var older = !since && (before.Any(x => x.Version == version || x.FromVersion == version) || IsLower(version, contract.Version));
        if (!older) return null;
        var finished = contract.Step(HookSteps.Contract).FinishedAt;
        return $"{version} is older than {contract.Version}, whose contract step ran at {finished:u} and removed what versions before it " +
               $"may use (release {contract.Id}). Rolling back or redeploying across a contract is refused; release a version that works with the contracted schema.";
    }

    private static bool IsLower(string a, string b)
    {
        if (Numeric().Match(a) is not { Success: true } ma || Numeric().Match(b) is not { Success: true } mb) return false;
        return Version.TryParse(ma.Value, out var va) && Version.TryParse(mb.Value, out var vb) && va < vb;
    }

    [GeneratedRegex(@"^\d+(\.\d+){1,3}")]
    private static partial Regex Numeric();
}
