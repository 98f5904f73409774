using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Api;

public sealed record CreateUserRequest(string? UserName, string? Role, string? Password);
public sealed record ChangeRoleRequest(string? Role);
/// <summary>Leave <see cref="Password"/> out to have ControlPlane generate one (returned once).</summary>
public sealed record ResetPasswordRequest(string? Password);
public sealed record ChangePasswordRequest(string? CurrentPassword, string? NewPassword);

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
        users.MapPost("/{userName}/password-reset", async (string userName, ResetPasswordRequest? body, UserAdministration admin, HttpContext http, CancellationToken ct) =>
        {
            var reset = await admin.ResetPasswordAsync(userName, body?.Password, http.ToActor(), ct);
            // The generated password is in this one answer and nowhere else: never cached by anything in between.
            http.Response.Headers.CacheControl = "no-store";
            return TypedResults.Ok(reset);
        });
        users.MapDelete("/{userName}", async (string userName, UserAdministration admin, HttpContext http, CancellationToken ct) =>
        {
            await admin.DeleteAsync(userName, http.ToActor(), ct);
            return TypedResults.NoContent();
        });

        // Any person, for their own account, with their own token (the API takes no cookie for changes).
        api.MapPut("/account/password", async (ChangePasswordRequest body, UserAdministration admin, HttpContext http, CancellationToken ct) =>
            TypedResults.Ok(await admin.ChangeOwnPasswordAsync(http.User.Identity?.Name ?? "", body.CurrentPassword, body.NewPassword, http.ToActor(), ct)))
            .WithTags("Users").RequirePermission(Permission.ViewApplications);
        return api;
    }
}
