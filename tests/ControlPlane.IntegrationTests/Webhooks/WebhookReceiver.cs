using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Webhooks;

public sealed record ReceivedWebhook(string Path, string? Delivery, string? Event, string? Signature, string? ContentType, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);

    /// <summary>Checks the signature the way a receiver should: HMAC-SHA256 of the raw body, compared in constant time.</summary>
    public bool SignedWith(string secret) =>
        Signature is { } s && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s),
            Encoding.ASCII.GetBytes("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Body))));
}

/// <summary>
/// A real HTTP receiver on a free loopback port (Kestrel) that records every request with its raw body. Answers are
/// scripted per request (<see cref="Answers"/>: a status code, or 0 = hold the request open until the test ends); once
/// the script is used up it answers 200.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();

    private WebhookReceiver(WebApplication app) => _app = app;

    public ConcurrentQueue<int> Answers { get; } = new();
    public ConcurrentQueue<ReceivedWebhook> Received { get; } = new();
    public Uri Url { get; private set; } = null!;
    public Uri UrlFor(string path) => new(Url, path);

    public static async Task<WebhookReceiver> StartAsync(int port = 0)
    {
        var app = LoopbackServer.Create(port);
        var receiver = new WebhookReceiver(app);
        app.Run(async context =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            var h = context.Request.Headers;
            receiver.Received.Enqueue(new(context.Request.Path, h["X-ControlPlane-Delivery"], h["X-ControlPlane-Event"],
                h["X-ControlPlane-Signature"], context.Request.ContentType, buffer.ToArray()));
            var status = receiver.Answers.TryDequeue(out var scripted) ? scripted : 200;
            if (status == 0)
            {
                await Task.Delay(Timeout.Infinite, CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, receiver._stopping.Token).Token)
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                return;
            }
            context.Response.StatusCode = status;
        });
        var url = await LoopbackServer.StartAsync(app, CancellationToken.None);
        receiver.Url = url;
        return receiver;
    }

    /// <summary>Waits until <paramref name="condition"/> holds for what was received; fails with what was received otherwise.</summary>
    public async Task<List<ReceivedWebhook>> WaitForAsync(Func<List<ReceivedWebhook>, bool> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var now = Received.ToList();
            if (condition(now)) return now;
            await Task.Delay(50);
        }
        Assert.Fail($"The receiver did not get {what} within {seconds} s; it got: " +
            string.Join("; ", Received.Select(r => $"{r.Path} {r.Event} {r.Delivery}")));
        return [];
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
