using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;
using MudBlazor;

namespace ControlPlane.Web.Components.Shared;

/// <summary>The outcome of a command run from a page: the value, or the operator-readable reason it was refused.</summary>
public sealed record UiResult<T>(T? Value, string? Error, DomainException? Refusal)
{
    public bool Succeeded => Error is null;
}

/// <summary>
/// Runs a release command from a page in its own DI scope: a circuit lives for hours, its DbContext must not.
/// Domain refusals come back as words for a snackbar or an inline message; anything else is logged and summarized.
/// </summary>
public static class UiCommand
{
    /// <summary>
    /// Runs <paramref name="command"/> for <paramref name="user"/> after re-reading their account: a person demoted, locked
    /// or deleted while the page stayed open is refused (<see cref="ActingAuthority"/>).
    /// </summary>
    public static async Task<UiResult<T>> RunAsync<T>(IServiceScopeFactory scopes, SignedInUser user, Permission permission,
        Func<ReleaseCommands, Task<T>> command)
    {
        await using var scope = scopes.CreateAsyncScope();
        if (await ActingAuthority.RefusalAsync(scope.ServiceProvider, user, permission) is { } refusal)
            return new(default, refusal, DomainException.Forbidden(refusal));
        try
        {
            return new(await command(scope.ServiceProvider.GetRequiredService<ReleaseCommands>()), null, null);
        }
        catch (DomainException ex)
        {
            return new(default, ex.Message, ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Dashboard")
                .LogError(ex, "A dashboard command failed");
            return new(default, $"ControlPlane could not complete this: {ex.Message}. Nothing was changed unless the page shows otherwise; check the server log.", null);
        }
    }

    public static void Report<T>(this ISnackbar snackbar, UiResult<T> result, string success)
    {
        if (result.Succeeded) snackbar.Add(success, Severity.Success);
        else snackbar.Add(result.Error!, result.Refusal?.Kind == DomainErrorKind.Conflict ? Severity.Warning : Severity.Error);
    }
}
