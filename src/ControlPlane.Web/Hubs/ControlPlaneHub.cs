using ControlPlane.Core.Notifications;
using ControlPlane.Core.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace ControlPlane.Web.Hubs;

/// <summary>
/// Live change feed for external clients (CLI, other dashboards): each <see cref="ChangeNotice"/> is sent as
/// <c>changed(notice)</c>. Read-only; clients fetch the new state through the REST API.
/// </summary>
[Authorize(Policy = "permission:" + nameof(Permission.ViewApplications))]
public sealed class ControlPlaneHub : Hub
{
    public const string Path = "/hubs/controlplane";
    public const string ChangedMethod = "changed";
}

/// <summary>Feeds the hub from the same in-process notifier the Blazor components use.</summary>
public sealed class HubBroadcaster(ChangeNotifier notifier, IHubContext<ControlPlaneHub> hub) : IHostedService
{
    private IDisposable? _subscription;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = notifier.Subscribe(n => _ = hub.Clients.All.SendAsync(ControlPlaneHub.ChangedMethod, n));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        return Task.CompletedTask;
    }
}
