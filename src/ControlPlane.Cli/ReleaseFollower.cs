using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR.Client;

namespace ControlPlane.Cli;

/// <summary>
/// Follows one release until it ends: wakes on the hub's change notices for it (bearer token as <c>access_token</c>) and
/// polls the REST API every few seconds anyway, so a hub that cannot be reached (a proxy without WebSockets) only makes
/// it slower. The REST answer is the truth either way.
/// </summary>
public sealed class ReleaseFollower(ApiClient api, TextWriter progress, bool quiet)
{
    private static readonly TimeSpan PollEvery = TimeSpan.FromSeconds(2);

    public async Task<(JsonNode Deployment, int ExitCode, string Message)> FollowAsync(string id, TimeSpan timeout, CancellationToken ct)
    {
        using var wake = new SemaphoreSlim(0);
        await using var hub = await ConnectHubAsync(id, wake, ct);
        var deadline = DateTimeOffset.UtcNow + timeout;
        string? lastState = null;
        var seenSteps = new Dictionary<string, string>();
        while (true)
        {
            var d = await api.GetAsync($"api/v1/deployments/{id}", ct);
            var state = d["state"]!.GetValue<string>();
            Report(d, state, lastState, seenSteps);
            lastState = state;
            var outcome = d["outcome"]?.GetValue<string>();
            switch (state)
            {
                case "Succeeded": return (d, ExitCodes.Ok, $"{Name(d)} succeeded{(outcome is null ? "" : ": " + outcome)}");
                case "Failed": return (d, ExitCodes.ReleaseFailed, $"{Name(d)} failed: {outcome}");
                case "RolledBack": return (d, ExitCodes.ReleaseRolledBack, $"{Name(d)} was rolled back: {outcome}");
                case "Aborted": return (d, ExitCodes.ReleaseAborted, $"{Name(d)} was aborted: {outcome}");
            }
            var left = deadline - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                var waiting = state == "AwaitingApproval"
                    ? $" waiting for approval ({d["validApprovals"]} of {d["requiredApprovals"]} given)" : "";
                return (d, ExitCodes.TimedOut, $"Timed out after {timeout.TotalSeconds:0} s: {Name(d)} is still {state}{waiting}");
            }
            await wake.WaitAsync(left < PollEvery ? left : PollEvery, ct);
        }
    }

    private async Task<HubConnection?> ConnectHubAsync(string id, SemaphoreSlim wake, CancellationToken ct)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(api.BaseAddress, "hubs/controlplane"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(api.Token))
            .WithAutomaticReconnect()
            .Build();
        connection.On<JsonElement>("changed", notice =>
        {
            if (notice.TryGetProperty("deploymentId", out var d) && d.ValueKind == JsonValueKind.String && d.GetString() == id && wake.CurrentCount == 0)
                wake.Release();
        });
        try
        {
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            connectTimeout.CancelAfter(TimeSpan.FromSeconds(10));
            await connection.StartAsync(connectTimeout.Token);
            return connection;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            if (!quiet) await progress.WriteLineAsync($"(live updates unavailable: {ex.Message}; polling every {PollEvery.TotalSeconds:0} s)");
            await connection.DisposeAsync();
            return null;
        }
    }

    private void Report(JsonNode d, string state, string? lastState, Dictionary<string, string> seenSteps)
    {
        if (quiet) return;
        var now = DateTimeOffset.Now.ToString("HH:mm:ss");
        if (state != lastState)
            progress.WriteLine($"{now}  {Name(d)}  {(lastState is null ? "" : lastState + " → ")}{state}" +
                               (state == "AwaitingApproval" ? $"  (approvals {d["validApprovals"]}/{d["requiredApprovals"]})" : ""));
        foreach (var step in d["steps"]?.AsArray() ?? [])
        {
            var name = step!["name"]!.GetValue<string>();
            var stepState = step["state"]!.GetValue<string>();
            if (seenSteps.TryGetValue(name, out var seen) && seen == stepState) continue;
            if (!seenSteps.ContainsKey(name) && stepState == "Pending") { seenSteps[name] = stepState; continue; }
            seenSteps[name] = stepState;
            var message = step["message"]?.GetValue<string>();
            progress.WriteLine($"{now}    step {name}: {stepState}{(string.IsNullOrEmpty(message) ? "" : " — " + message)}");
        }
    }

    public static string Name(JsonNode d) => $"{d["application"]} {d["version"]}";
}
