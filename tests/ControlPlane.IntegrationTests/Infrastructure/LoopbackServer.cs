using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>
/// The tests' stand-ins for other servers (the fake Kubernetes API and ELBv2, hook, webhook and metrics endpoints, slot
/// backends) are real HTTP servers: Kestrel alone on 127.0.0.1, every request answered by one handler.
/// </summary>
public static class LoopbackServer
{
    /// <summary>The server, not started yet: the caller adds its handler with <c>app.Run</c>.</summary>
    /// <param name="port">0 lets the kernel pick a free port (<see cref="StartAsync"/> returns it in the URL).</param>
    public static WebApplication Create(int port = 0)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.AddLogging();
        return builder.Build();
    }

    /// <summary>Starts the server; returns its base URL, ending in a slash.</summary>
    public static async Task<Uri> StartAsync(WebApplication app, CancellationToken cancellationToken)
    {
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new Uri(address.TrimEnd('/') + "/");
    }
}
