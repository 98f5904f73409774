using Microsoft.AspNetCore.Components;
using Microsoft.JSInterop;

namespace ControlPlane.Web.Components.Shared;

/// <summary>
/// The text of a dialog's reason box as it stands in the browser. Keystrokes reach the server as separate events and a
/// confirm click can overtake the last of them, so the text is read from the element when the person confirms; the
/// server never writes the box's value, so what was typed is never replaced by an older copy.
/// </summary>
public static class ReasonBox
{
    public static async Task FocusAsync(IJSRuntime js, ElementReference box)
    {
        try
        {
            await using var module = await js.InvokeAsync<IJSObjectReference>("import", "./js/reason-box.js");
            await module.InvokeVoidAsync("focusBox", box);
        }
        catch (JSException) { } // focus is a convenience: the box still works without it
    }

    public static async Task<string?> ReadAsync(IJSRuntime js, ElementReference box, string? fallback)
    {
        try
        {
            await using var module = await js.InvokeAsync<IJSObjectReference>("import", "./js/reason-box.js");
            return await module.InvokeAsync<string?>("textOf", box);
        }
        catch (JSException) { return fallback; }
    }
}
