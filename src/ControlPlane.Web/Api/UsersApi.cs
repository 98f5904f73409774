using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Api;

public sealed record CreateUserRequest(string? UserName, string? Role, string? Password);
public sealed record ChangeRoleRequest(string? Role);

/// <summary>Local accounts, for automation (the admin pages do the same through <see cref="UserAdministration"/>).</summary>
public static class UsersApi
{
    public static RouteGroupBuilder MapUsersApi(this RouteGroupBuilder api)
    {
        var users = api.MapGroup("/users").WithTags("Users").RequirePermission(Permission.ManageUsers);
        users.MapGet("", async (UserAdministration admin, CancellationToken ct) => TypedResults.Ok(await admin.ListAsync(ct)));
        users.MapPost("", async (CreateUserRequest body, UserAdministration admin, HttpContext http, CancellationToken ct) =>
        {
            var user = await admin.CreateAsync(body.UserName, body.Role, body.Password, http.ToActor(), ct);
            return TypedResults.Created($"/api/v1/users/{Uri.EscapeDataString(user.UserName)}", user);
        });
        users.MapPut("/{userName}/role", async (string userName, ChangeRoleRequest body, UserAdministration admin, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(await admin.ChangeRoleAsync(userName, body.Role, http.ToActor(), ct)));
        users.MapPost("/{userName}/lock", async (string userName, UserAdministration admin, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(await admin.LockAsync(userName, http.ToActor(), ct)));
        users.MapPost("/{userName}/unlock", async (string userName, UserAdministration admin, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(await admin.UnlockAsync(userName, http.ToActor(), ct)));
        users.MapDelete("/{userName}", async (string userName, UserAdministration admin, HttpContext http, CancellationToken ct) =>
        {
            await admin.DeleteAsync(userName, http.ToActor(), ct);
            return TypedResults.NoContent();
        });
        return api;
    }
}
