using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using ControlPlane.IntegrationTests.Infrastructure;

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
        var app = LoopbackServer.Create();
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
        var url = await LoopbackServer.StartAsync(app, TestContext.Current.CancellationToken);
        server = new HookServer(app, url);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
