using System.Text.Json;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Queries;
using ControlPlane.Web.Security;
using ControlPlane.Web.Workers;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

public static class ApplicationsApi
{
    public static RouteGroupBuilder MapApplicationsApi(this RouteGroupBuilder api)
    {
        var apps = api.MapGroup("/applications").WithTags("Applications");

        // The same read as the overview page (Queries.ApplicationStatusQuery): last outcome, what needs a person.
        apps.MapGet("/", async (ControlPlaneDbContext db, TimeProvider time, RuntimeFaults faults, CancellationToken ct) =>
        {
            var now = time.GetUtcNow();
            return TypedResults.Ok((await ApplicationStatusQuery.AllAsync(db, ct)).Select(s => Dto.Summary(s, now, faults)).ToList());
        }).RequirePermission(Permission.ViewApplications);

        apps.MapGet("/{name}", async Task<Results<Ok<ApplicationDto>, ProblemHttpResult>> (string name, ControlPlaneDbContext db, HttpContext http, CancellationToken ct) =>
        {
            var app = await db.Applications.AsNoTracking().SingleOrDefaultAsync(a => a.Name == name, ct);
            if (app is null) return NotFound($"Application '{name}' does not exist.");
            var inFlight = await db.Deployments.AsNoTracking()
                .FirstOrDefaultAsync(d => d.ApplicationId == app.Id && DeploymentStates.InFlight.Contains(d.State), ct);
            // What an edit sends back in If-Match, so a concurrent edit is refused rather than silently overwritten.
            http.Response.Headers.ETag = ETagOf(app);
            return TypedResults.Ok(Dto.Detail(app, inFlight));
        }).RequirePermission(Permission.ViewApplications);

        // An edit takes the registration's own body and rules (name, initialVersion and liveSlot may be left out; if given they
        // must match). Audited with each changed field's before and after; a changed router or deployer is brought up again
        // by the runtime leader, not here.
        apps.MapPut("/{name}", async Task<Results<Ok<ApplicationDto>, ProblemHttpResult>> (
            string name, RegisterApplicationRequest body, ReleaseCommands commands, ControlPlaneDbContext db, HttpContext http, CancellationToken ct) =>
        {
            var errors = new List<Core.SettingsError>();
            if (body.Router?.Kind is null) errors.Add(new("router.kind", "is required"));
            if (body.Deployer?.Kind is null) errors.Add(new("deployer.kind", "is required"));
            uint? expected = null;
            if (http.Request.Headers.IfMatch.ToString() is { Length: > 0 } ifMatch)
            {
                if (uint.TryParse(ifMatch.Trim().Trim('"'), out var v)) expected = v;
                else errors.Add(new("If-Match", "must be the ETag of GET /api/v1/applications/{name}, such as \"1234\""));
            }
            if (errors.Count > 0) throw new ValidationException(errors);
            var current = await db.Applications.AsNoTracking().SingleOrDefaultAsync(a => a.Name == name, ct);
            if (current is null) return NotFound($"Application '{name}' does not exist.");
            var (app, _) = await commands.EditAsync(name, new RegisterApplication(
                body.Name ?? name, body.Router!.Kind!, body.Router.Settings ?? EmptyObject, body.Deployer!.Kind!,
                body.Deployer.Settings ?? EmptyObject, body.Checks ?? [], body.Policy ?? new ReleasePolicy(), body.InitialVersion ?? current.LiveVersion ?? "",
                body.LiveSlot ?? current.LiveSlot, body.VerifyPath ?? "/", body.Hooks), expected, null, http.ToActor(), ct);
            http.Response.Headers.ETag = ETagOf(app);
            return TypedResults.Ok(Dto.Detail(app, null));
        }).RequirePermission(Permission.RegisterApplication);

        apps.MapGet("/{name}/deployments", async Task<Results<Ok<List<DeploymentDto>>, ProblemHttpResult>> (
            string name, int? limit, ControlPlaneDbContext db, CancellationToken ct) =>
        {
            var app = await db.Applications.AsNoTracking().SingleOrDefaultAsync(a => a.Name == name, ct);
            if (app is null) return NotFound($"Application '{name}' does not exist.");
            var take = Math.Clamp(limit ?? 20, 1, 200);
            var list = await db.Deployments.AsNoTracking().Where(d => d.ApplicationId == app.Id)
                .OrderByDescending(d => d.CreatedAt).Take(take).ToListAsync(ct);
            return TypedResults.Ok(list.Select(d => Dto.Deployment(d)).ToList());
        }).RequirePermission(Permission.ViewApplications);

        apps.MapPost("/", async (RegisterApplicationRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            var errors = new List<Core.SettingsError>();
            if (body.Router?.Kind is null) errors.Add(new("router.kind", "is required"));
            if (body.Deployer?.Kind is null) errors.Add(new("deployer.kind", "is required"));
            if (body.InitialVersion is null) errors.Add(new("initialVersion", "is required"));
            if (errors.Count > 0) throw new ValidationException(errors);
            var app = await commands.RegisterAsync(new RegisterApplication(
                body.Name ?? "", body.Router!.Kind!, body.Router.Settings ?? EmptyObject, body.Deployer!.Kind!,
                body.Deployer.Settings ?? EmptyObject, body.Checks ?? [], body.Policy ?? new ReleasePolicy(), body.InitialVersion!,
                body.LiveSlot ?? Slot.Blue, body.VerifyPath ?? "/", body.Hooks), http.ToActor(), ct);
            // The runtime leader (on whichever replica) hears the registration and brings it up; publicUrl appears then.
            return TypedResults.Created($"/api/v1/applications/{app.Name}", Dto.Detail(app, null));
        }).RequirePermission(Permission.RegisterApplication);

        // Archive: recorded (and audited) here, carried out by the runtime leader, which stops the slots and the router.
        // The query's confirm must repeat the name; without it the 400 says exactly what would be stopped.
        apps.MapDelete("/{name}", async Task<Results<Accepted<ApplicationDto>, ProblemHttpResult>> (
            string name, string? confirm, string? reason, ReleaseCommands commands, ControlPlaneDbContext db, HttpContext http, CancellationToken ct) =>
        {
            if (!await db.Applications.AnyAsync(a => a.Name == name, ct)) return NotFound($"Application '{name}' does not exist.");
            var app = await commands.ArchiveAsync(name, confirm, reason, http.ToActor(), ct);
            return TypedResults.Accepted($"/api/v1/applications/{app.Name}", Dto.Detail(app, null));
        }).RequirePermission(Permission.RegisterApplication);

        apps.MapPost("/{name}/deployments", async (string name, StartReleaseRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            var d = await commands.StartReleaseAsync(name, body.Version, body.Reason, http.ToActor(), ct, body.FreezeOverride.ToOverride(http),
                HooksApi.SchemaRequest(body, http));
            return TypedResults.Accepted($"/api/v1/deployments/{d.Id}", Dto.Deployment(d));
        }).RequirePermission(Permission.StartRelease);

        // Recorded intent carried out by the runtime leader: answers once the old version is served (200), or — when the
        // leader has not reported within the bounded wait — 202 with the deployment to follow in Location.
        apps.MapPost("/{name}/rollback", async Task<Results<Ok<RollbackResultDto>, Accepted<RollbackResultDto>>> (
            string name, ReasonRequest body, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            var outcome = await commands.RollbackAsync(name, http.ToActor(), body.Reason, ct);
            if (outcome.Pending)
                return TypedResults.Accepted($"/api/v1/deployments/{outcome.DeploymentId}",
                    new RollbackResultDto(name, null, null, outcome.Message, true, outcome.DeploymentId));
            return TypedResults.Ok(new RollbackResultDto(name, outcome.LiveSlot, outcome.LiveVersion, outcome.Message, false, outcome.DeploymentId));
        }).RequirePermission(Permission.Rollback);

        // Freeze windows belong to applications' governance; mapped from here so Program.cs keeps one line per area.
        api.MapFreezeWindowsApi();
        return api;
    }

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement;

    internal static ProblemHttpResult NotFound(string detail) =>
        TypedResults.Problem(detail, statusCode: StatusCodes.Status404NotFound, title: "Not found");

    internal static string ETagOf(Application app) => $"\"{app.RowVersion}\"";
}
