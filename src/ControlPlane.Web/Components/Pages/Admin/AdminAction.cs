using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Components.Pages.Admin;

/// <summary>
/// Runs an admin action from a page in its own DI scope, after re-checking the permission for the person at the moment
/// of the action (the page being open is not enough). Refusals come back as words for a snackbar.
/// </summary>
public static class AdminAction
{
    public static async Task<(T? Value, string? Error)> RunAsync<TService, T>(
        IServiceScopeFactory scopes, SignedInUser user, Permission permission, Func<TService, Task<T>> action) where TService : notnull
    {
        if (!user.Can(permission)) return (default, $"Your role ({user.Role}) may not do this.");
        await using var scope = scopes.CreateAsyncScope();
        try
        {
            return (await action(scope.ServiceProvider.GetRequiredService<TService>()), null);
        }
        catch (DomainException ex) { return (default, ex.Message); }
        catch (ValidationException ex) { return (default, string.Join(" ", ex.Errors.Select(e => $"{e.Field}: {e.Message}"))); }
    }
}
