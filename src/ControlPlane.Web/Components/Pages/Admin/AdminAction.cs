using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.Web.Components.Pages.Admin;

/// <summary>
/// Runs an admin action from a page in its own DI scope, after re-reading the person's account and permission at the
/// moment of the action (the page being open is not enough). Refusals come back as words for a snackbar.
/// </summary>
public static class AdminAction
{
    public static async Task<(T? Value, string? Error)> RunAsync<TService, T>(
        IServiceScopeFactory scopes, SignedInUser user, Permission permission, Func<TService, Task<T>> action) where TService : notnull
    {
        await using var scope = scopes.CreateAsyncScope();
        if (await ActingAuthority.RefusalAsync(scope.ServiceProvider, user, permission) is { } refusal) return (default, refusal);
        try
        {
            return (await action(scope.ServiceProvider.GetRequiredService<TService>()), null);
        }
        catch (DomainException ex) { return (default, ex.Message); }
        catch (ValidationException ex) { return (default, string.Join(" ", ex.Errors.Select(e => $"{e.Field}: {e.Message}"))); }
    }
}
