using ControlPlane.Core.Deployments;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Execution;

/// <summary>An Admin's edit of a registered application: the registration's request, checked by the registration's rules.</summary>
public sealed partial class ReleaseCommands
{
    /// <param name="expectedRowVersion">The version the editor saw (the ETag of <c>GET</c>); a different current one is a concurrent edit (409).</param>
    public async Task<(Application App, IReadOnlyList<string> Changed)> EditAsync(string name, RegisterApplication request, uint? expectedRowVersion,
        string? reason, Actor by, CancellationToken cancellationToken)
    {
        var app = await FindApplicationAsync(name, cancellationToken);
        var errors = new List<SettingsError>();
        // The registration's body, so a field added to registration is editable too; what only registration sets must match.
        if (!string.IsNullOrEmpty(request.Name) && request.Name != app.Name)
            errors.Add(new("name", $"cannot be changed by an edit (it is '{app.Name}'); register a new application instead"));
        if (!string.IsNullOrEmpty(request.InitialVersion) && request.InitialVersion != app.LiveVersion)
            errors.Add(new("initialVersion", $"cannot be changed by an edit (live is {app.LiveVersion}); releases change the version"));
        if (request.LiveSlot != app.LiveSlot)
            errors.Add(new("liveSlot", $"cannot be changed by an edit (live is {app.LiveSlot.Name()}); releases and rollbacks move traffic"));
        if (reason?.Length > 2000) errors.Add(new("reason", "must be at most 2000 characters"));
        errors.AddRange(ConfigurationErrors(request));
        if (errors.Count > 0) throw new ValidationException(errors);

        if (expectedRowVersion is { } expected && expected != app.RowVersion)
            throw DomainException.Conflict($"{app.Name} was changed by someone else since you read it; load it again and repeat the edit.");
        var inFlight = await db.Deployments.AsNoTracking()
            .Where(d => d.ApplicationId == app.Id && DeploymentStates.InFlight.Contains(d.State)).Select(d => new { d.Version, d.State })
            .FirstOrDefaultAsync(cancellationToken);
        if (inFlight is not null)
            throw DomainException.Conflict($"{app.Name} has a release in flight ({inFlight.Version}, {inFlight.State}); edit it once the release has ended.");

        var changed = app.Reconfigure(request.RouterKind, request.RouterSettings.GetRawText(), request.DeployerKind, request.DeployerSettings.GetRawText(),
            request.Checks, request.Policy, request.VerifyPath, request.Hooks, by, time.GetUtcNow(), string.IsNullOrWhiteSpace(reason) ? null : reason.Trim());
        if (changed.Count == 0) return (app, changed);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            // xmin moved between the read and the write: another edit, or the runtime recording what it saw.
            throw DomainException.Conflict($"{app.Name} was changed at the same time; load it again and repeat the edit.");
        }
        return (app, changed);
    }

    /// <summary>
    /// Archives an application (refused while a release is in flight): recorded and audited here; the runtime leader stops its
    /// slots and router on its next round. <paramref name="confirm"/> must repeat the application's name.
    /// </summary>
    public async Task<Application> ArchiveAsync(string name, string? confirm, string? reason, Actor by, CancellationToken cancellationToken)
    {
        var app = await FindApplicationAsync(name, cancellationToken);
        if (confirm != app.Name)
            throw DomainException.Invalid("confirm", $"confirm must repeat the application's name ({app.Name}): archiving stops {app.RuntimeDescription}. " +
                                                     "Its releases and audit trail are kept.");
        if (reason?.Length > 2000) throw DomainException.Invalid("reason", "reason must be at most 2000 characters.");
        var inFlight = await db.Deployments.AsNoTracking()
            .Where(d => d.ApplicationId == app.Id && DeploymentStates.InFlight.Contains(d.State)).Select(d => new { d.Version, d.State })
            .FirstOrDefaultAsync(cancellationToken);
        if (inFlight is not null)
            throw DomainException.Conflict($"{app.Name} has a release in flight ({inFlight.Version}, {inFlight.State}); abort it or let it end before archiving.");
        app.Archive(by, string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(), time.GetUtcNow());
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            throw DomainException.Conflict($"{app.Name} was changed at the same time; look again and repeat.");
        }
        return app;
    }
}
