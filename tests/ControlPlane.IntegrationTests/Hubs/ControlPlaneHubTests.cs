using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace ControlPlane.IntegrationTests.Hubs;

/// <summary>External clients get the same change feed as the dashboard, through /hubs/controlplane.</summary>
public sealed class ControlPlaneHubTests(PostgresFixture postgres) : IAsyncLifetime
{
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task A_signed_in_client_hears_a_release_change()
    {
        await using var hub = Connect(ControlPlaneAppFactory.AdminToken);
        var heard = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.On<JsonElement>("changed", n =>
        {
            if (n.GetProperty("kind").GetString() == "deployment") heard.TrySetResult(n);
        });
        await hub.StartAsync(TestContext.Current.CancellationToken);

        using var rm = await _factory.ClientWithRoleAsync("alice", "ReleaseManager");
        var id = (await rm.StartReleaseAsync("demo-shop", "2.0.0")).GetProperty("id").GetString();

        var notice = await heard.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("demo-shop", notice.GetProperty("application").GetString());
        Assert.Equal(id, notice.GetProperty("deploymentId").GetString());
    }

    [Fact]
    public async Task An_anonymous_client_is_refused()
    {
        await using var hub = Connect(token: null);
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => hub.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("401", ex.Message);
    }

    private HubConnection Connect(string? token) => new HubConnectionBuilder()
        .WithUrl(new Uri(_factory.Server.BaseAddress, "hubs/controlplane"), o =>
        {
            o.HttpMessageHandlerFactory = _ => _factory.Server.CreateHandler();
            o.Transports = HttpTransportType.LongPolling; // the in-memory test server has no WebSockets
            if (token is not null) o.AccessTokenProvider = () => Task.FromResult<string?>(token);
        })
        .Build();
}
