using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.IntegrationTests.Hooks;

/// <summary>
/// A real loopback HTTP server for hook tests: records every request (path, Idempotency-Key, JSON body) and answers each
/// path with the status set in <see cref="Status"/> (200 otherwise). Also stands in for a slot's endpoint for checks.
/// </summary>
public sealed class HookServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HookServer(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }
    public ConcurrentDictionary<string, int> Status { get; } = new();

    /// <summary>What a request to a path also does (e.g. an expand hook that breaks what the live version's check reads).</summary>
    public ConcurrentDictionary<string, Action> Effects { get; } = new();
    public ConcurrentQueue<(string Path, string? Key, JsonElement Body)> Requests { get; } = new();

    /// <summary>Paths that never answer; a request to one that its client cancelled is listed in <see cref="Cancelled"/>.</summary>
    public ConcurrentDictionary<string, bool> Hang { get; } = new();
    public ConcurrentQueue<string> Cancelled { get; } = new();

    public static async Task<HookServer> StartAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddLogging();
        var app = builder.Build();
        HookServer? server = null;
        app.Run(async context =>
        {
            var path = context.Request.Path.Value ?? "/";
            var text = await new StreamReader(context.Request.Body).ReadToEndAsync(context.RequestAborted);
            server!.Requests.Enqueue((path, context.Request.Headers["Idempotency-Key"].ToString(),
                text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone()));
            if (server.Effects.TryGetValue(path, out var effect)) effect();
            if (server.Hang.ContainsKey(path))
            {
                try { await Task.Delay(Timeout.Infinite, context.RequestAborted); }
                catch (OperationCanceledException) { server.Cancelled.Enqueue(path); }
                return;
            }
            context.Response.StatusCode = server.Status.GetValueOrDefault(path, 200);
            await context.Response.WriteAsync($"hook server saw {context.Request.Method} {path}", context.RequestAborted);
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        server = new HookServer(app, new Uri(address.TrimEnd('/') + "/"));
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
