using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Governance;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Api;

/// <summary>Freeze windows per application (<c>/applications/{name}/freeze-windows</c>) and global ones (<c>/freeze-windows</c>); Admin only.</summary>
public static class FreezeWindowsApi
{
    public static RouteGroupBuilder MapFreezeWindowsApi(this RouteGroupBuilder api)
    {
        var perApp = api.MapGroup("/applications/{name}/freeze-windows").WithTags("Freeze windows");
        perApp.MapGet("/", async Task<Results<Ok<List<FreezeWindowDto>>, ProblemHttpResult>> (
            string name, ControlPlaneDbContext db, TimeProvider time, CancellationToken ct) =>
        {
            var app = await db.Applications.AsNoTracking().SingleOrDefaultAsync(a => a.Name == name, ct);
            if (app is null) return ApplicationsApi.NotFound($"Application '{name}' does not exist.");
            var now = time.GetUtcNow();
            return TypedResults.Ok((await db.FreezeWindowsOfAsync(app.Id, ct)).Select(w => Dto.FreezeWindow(w, now)).ToList());
        }).RequirePermission(Permission.ViewApplications);
        perApp.MapPost("/", async (string name, CreateFreezeWindowRequest body, ReleaseCommands commands, TimeProvider time, HttpContext http, CancellationToken ct) =>
        {
            var w = await commands.CreateFreezeWindowAsync(name, body.ToSpec(), http.ToActor(), ct);
            return TypedResults.Created($"/api/v1/applications/{name}/freeze-windows/{w.Id}", Dto.FreezeWindow(w, time.GetUtcNow()));
        }).RequirePermission(Permission.ManageFreezeWindows);
        perApp.MapDelete("/{id:guid}", async (string name, Guid id, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            await commands.DeleteFreezeWindowAsync(name, id, http.ToActor(), ct);
            return TypedResults.NoContent();
        }).RequirePermission(Permission.ManageFreezeWindows);

        var global = api.MapGroup("/freeze-windows").WithTags("Freeze windows");
        global.MapGet("/", async (ControlPlaneDbContext db, TimeProvider time, CancellationToken ct) =>
        {
            var now = time.GetUtcNow();
            var list = await db.FreezeWindows.AsNoTracking().Where(w => w.ApplicationId == null).OrderBy(w => w.CreatedAt).ToListAsync(ct);
            return TypedResults.Ok(list.Select(w => Dto.FreezeWindow(w, now)).ToList());
        }).RequirePermission(Permission.ViewApplications);
        global.MapPost("/", async (CreateFreezeWindowRequest body, ReleaseCommands commands, TimeProvider time, HttpContext http, CancellationToken ct) =>
        {
            var w = await commands.CreateFreezeWindowAsync(null, body.ToSpec(), http.ToActor(), ct);
            return TypedResults.Created($"/api/v1/freeze-windows/{w.Id}", Dto.FreezeWindow(w, time.GetUtcNow()));
        }).RequirePermission(Permission.ManageFreezeWindows);
        global.MapDelete("/{id:guid}", async (Guid id, ReleaseCommands commands, HttpContext http, CancellationToken ct) =>
        {
            await commands.DeleteFreezeWindowAsync(null, id, http.ToActor(), ct);
            return TypedResults.NoContent();
        }).RequirePermission(Permission.ManageFreezeWindows);
        return api;
    }

    /// <summary>The requested override, marked as authorized only for roles the single permission table allows (Admin).</summary>
    public static FreezeOverride? ToOverride(this FreezeOverrideRequest? request, HttpContext http) =>
        request is null ? null : new(request.Reason, Permissions.RolesFor(Permission.OverrideFreeze).Any(r => http.User.IsInRole(r.ToString())));
}
