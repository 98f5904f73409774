using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Routing;

/// <summary>What a slot's backend answers: the same shape as the demo app.</summary>
public sealed record BackendAnswer(string App, string Version, string Slot);

/// <summary>
/// A tiny real Kestrel backend on a free loopback port standing in for one slot.
/// <c>/</c> answers <see cref="BackendAnswer"/> as JSON, <c>/text</c> as plain text; <c>/headers</c> echoes the forwarding headers;
/// <c>/slow</c> signals <see cref="SlowRequestArrived"/> and answers once <see cref="ReleaseSlowRequests"/> is set.
/// </summary>
public sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication app;

    private TestBackend(WebApplication app, Uri url, BackendAnswer answer)
    {
        this.app = app;
        Url = url;
        Answer = answer;
    }

    public Uri Url { get; }
    public BackendAnswer Answer { get; }
    public TaskCompletionSource SlowRequestArrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource ReleaseSlowRequests { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<TestBackend> StartAsync(string application, string version, string slot, CancellationToken cancellationToken)
    {
        var app = LoopbackServer.Create();
        var answer = new BackendAnswer(application, version, slot);
        TestBackend? backend = null;

        app.Run(async context =>
        {
            switch (context.Request.Path.Value)
            {
                case "/headers":
                    await context.Response.WriteAsJsonAsync(new Dictionary<string, string?>
                    {
                        ["xForwardedFor"] = context.Request.Headers["X-Forwarded-For"],
                        ["xForwardedHost"] = context.Request.Headers["X-Forwarded-Host"],
                        ["slot"] = slot,
                    }, context.RequestAborted);
                    return;
                case "/fail":
                    context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    await context.Response.WriteAsync("failing on purpose\n", context.RequestAborted);
                    return;
                case "/text":
                    await context.Response.WriteAsync($"{application} {version} on {slot}\n", context.RequestAborted);
                    return;
                case "/slow":
                    backend!.SlowRequestArrived.TrySetResult();
                    // Held until the test releases it (at most 10 s), so "in flight" does not depend on timing.
                    await backend.ReleaseSlowRequests.Task.WaitAsync(TimeSpan.FromSeconds(10), context.RequestAborted);
                    break;
            }
            await context.Response.WriteAsJsonAsync(answer, context.RequestAborted);
        });

        var url = await LoopbackServer.StartAsync(app, cancellationToken);
        backend = new TestBackend(app, url, answer);
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
