using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ControlPlane.Core.Deployments;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Yarp.ReverseProxy.Forwarder;

namespace ControlPlane.Core.Routing;

/// <summary>
/// The <c>embedded</c> router: per application, an in-process Kestrel listener that forwards every request to the live
/// slot with YARP. The live destination is one immutable reference swapped atomically, so a switch takes effect for the
/// next request while requests already forwarded finish on the slot they started on.
/// </summary>
public sealed class EmbeddedRouter : ITrafficRouter, IAsyncDisposable
{
    public const string KindName = "embedded";

    private readonly DataPlaneProbe probe;
    private readonly ILoggerFactory loggerFactory;
    private readonly ILogger logger;
    private readonly ConcurrentDictionary<string, Listener> listeners = new(StringComparer.Ordinal);
    // Serialises start/stop of listeners; switching does not take it.
    private readonly SemaphoreSlim lifecycle = new(1, 1);
    private bool disposed;

    // One client for all applications: connection pools are per destination, so a switch never reuses a connection to
    // the old slot for new requests, and keep-alive connections to both slots stay warm for instant rollback.
    private readonly HttpMessageInvoker invoker = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        ConnectTimeout = TimeSpan.FromSeconds(5),
    });

    /// <param name="probe">Used by <see cref="VerifyDataPlaneAsync"/> against the public URL.</param>
    /// <param name="loggerFactory">Also given to each listener (Kestrel, YARP); nothing is logged when null.</param>
    public EmbeddedRouter(DataPlaneProbe probe, ILoggerFactory? loggerFactory = null)
    {
        this.probe = probe;
        this.loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        logger = this.loggerFactory.CreateLogger<EmbeddedRouter>();
    }

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => EmbeddedRouterSettings.Validate(settings);

    public string DescribeSwitch(RouterBinding binding, Slot from, Slot to)
    {
        var settings = EmbeddedRouterSettings.Parse(binding.Settings);
        return $"The embedded proxy on {settings.ListenAddress}:{(settings.ListenPort == 0 ? "(its port)" : settings.ListenPort)} forwards new requests " +
               $"to {to.Name()} ({binding.EndpointOf(to)}) instead of {from.Name()} ({binding.EndpointOf(from)}); requests in flight finish on {from.Name()}.";
    }

    public async Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken)
    {
        var settings = EmbeddedRouterSettings.Parse(binding.Settings);
        var route = new Route(liveSlot, binding.BlueEndpoint, binding.GreenEndpoint);

        await lifecycle.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (listeners.TryGetValue(binding.Application, out var existing))
            {
                if (existing.Serves(settings))
                {
                    Volatile.Write(ref existing.CurrentRoute, route);
                    logger.LogInformation("Embedded router for {Application} already listens on {PublicUrl}; sends traffic to {Slot} ({Endpoint})",
                        binding.Application, existing.PublicUrl, liveSlot.Name(), route.LiveEndpoint);
                    return existing.PublicUrl;
                }

                logger.LogInformation("Embedded router for {Application} restarts its listener: settings changed from {Old} to {New}",
                    binding.Application, existing.Settings, settings);
                listeners.TryRemove(binding.Application, out _);
                await existing.StopAsync(cancellationToken);
            }

            var listener = await StartListenerAsync(binding.Application, settings, route, cancellationToken);
            listeners[binding.Application] = listener;
            logger.LogInformation("Embedded router for {Application} listens on {PublicUrl} and sends traffic to {Slot} ({Endpoint})",
                binding.Application, listener.PublicUrl, liveSlot.Name(), route.LiveEndpoint);
            return listener.PublicUrl;
        }
        finally
        {
            lifecycle.Release();
        }
    }

    public Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken) =>
        Task.FromResult(listeners.TryGetValue(binding.Application, out var listener)
            ? Volatile.Read(ref listener.CurrentRoute).Live
            : (Slot?)null);

    /// <summary>The public URL of an attached application, or null.</summary>
    public Uri? PublicUrlOf(string application) => listeners.TryGetValue(application, out var listener) ? listener.PublicUrl : null;

    public Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken)
    {
        if (!listeners.TryGetValue(binding.Application, out var listener))
            throw new RouterException($"The embedded router for {binding.Application} is not attached, so it cannot switch traffic to {target.Name()}.");

        // Compare-and-swap so a concurrent re-attach (new endpoints) is never overwritten by a stale copy.
        while (true)
        {
            var current = Volatile.Read(ref listener.CurrentRoute);
            if (current.Live == target)
            {
                logger.LogDebug("Embedded router for {Application} already sends traffic to {Slot}", binding.Application, target.Name());
                return Task.CompletedTask;
            }

            var next = current with { Live = target };
            if (Interlocked.CompareExchange(ref listener.CurrentRoute, next, current) == current)
            {
                logger.LogInformation("Embedded router for {Application} now sends traffic to {Slot} ({Endpoint})",
                    binding.Application, target.Name(), next.LiveEndpoint);
                return Task.CompletedTask;
            }
        }
    }

    public Task<DataPlaneVerification> VerifyDataPlaneAsync(
        RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        if (!listeners.TryGetValue(binding.Application, out var listener))
            return Task.FromResult(DataPlaneVerification.Fail($"The embedded router for {binding.Application} is not attached: nothing serves its public URL."));
        return probe.VerifyAsync(listener.PublicUrl, binding.VerifyPath, expectedSlot, expectedVersion, cancellationToken);
    }

    public async Task DetachAsync(string application, CancellationToken cancellationToken)
    {
        await lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (!listeners.TryRemove(application, out var listener))
                return;
            await listener.StopAsync(cancellationToken);
            logger.LogInformation("Embedded router for {Application} stopped listening on {PublicUrl}", application, listener.PublicUrl);
        }
        finally
        {
            lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await lifecycle.WaitAsync();
        try
        {
            if (disposed)
                return;
            disposed = true;
            foreach (var (application, listener) in listeners)
            {
                listeners.TryRemove(application, out _);
                await listener.StopAsync(CancellationToken.None);
            }
            invoker.Dispose();
        }
        finally
        {
            lifecycle.Release();
        }
    }

    private async Task<Listener> StartListenerAsync(string application, EmbeddedRouterSettings settings, Route route, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = $"{KindName}-router-{application}" });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(settings.Address, settings.ListenPort);
            kestrel.AddServerHeader = false;
            // The application behind the router decides how large a request may be.
            kestrel.Limits.MaxRequestBodySize = null;
        });
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddLogging();
        builder.Services.AddHttpForwarder();
        // The listener lives as long as the router decides, not until the process gets Ctrl+C / SIGTERM.
        builder.Services.AddSingleton<IHostLifetime, OwnedLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));

        var app = builder.Build();
        var listener = new Listener(application, settings, route, app);
        var forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        app.Run(context => ForwardAsync(context, listener, forwarder));

        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync();
            var endpoint = $"{settings.ListenAddress}:{settings.ListenPort}";
            var reason = ex is AddressInUseException || ex.InnerException is AddressInUseException
                ? $"port {settings.ListenPort} is already in use"
                : ex.Message;
            throw new RouterException(
                $"The embedded router for {application} cannot listen on {endpoint}: {reason}. " +
                $"Change router.settings.{EmbeddedRouterSettings.ListenPortField} (0 picks a free port) or stop what uses the port.", ex);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        listener.PublicUrl = PublicUrl(settings.Address, new Uri(bound).Port);
        return listener;
    }

    private async Task ForwardAsync(HttpContext context, Listener listener, IHttpForwarder forwarder)
    {
        // Read the live destination exactly once: this request finishes on it even if a switch happens meanwhile.
        var route = Volatile.Read(ref listener.CurrentRoute);
        var error = await forwarder.SendAsync(context, route.LiveEndpoint.AbsoluteUri, invoker, ForwarderRequestConfig.Empty, HttpTransformer.Default);

        // YARP has already set 502/504 and logged the cause; give the client a short explanation instead of an empty body.
        if (error != ForwarderError.None && !context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            var status = context.Response.StatusCode >= 500 ? context.Response.StatusCode : StatusCodes.Status502BadGateway;
            var what = error == ForwarderError.RequestTimedOut ? "did not answer in time" : "could not be reached";
            await Results.Problem(
                title: "The live slot did not answer",
                detail: $"{listener.Application}: the live slot {route.Live.Name()} {what} through the embedded router.",
                statusCode: status).ExecuteAsync(context);
        }
    }

    private static Uri PublicUrl(IPAddress address, int port)
    {
        // A wildcard address is reachable on loopback from this machine; other addresses are used as they are.
        var host = address.Equals(IPAddress.Any) ? IPAddress.Loopback
            : address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
            : address;
        return new Uri($"http://{new IPEndPoint(host, port)}/");
    }

    /// <summary>The live slot and both endpoints, replaced as a whole so a request never sees a half-updated route.</summary>
    private sealed record Route(Slot Live, Uri Blue, Uri Green)
    {
        public Uri LiveEndpoint => Live == Slot.Blue ? Blue : Green;
    }

    private sealed class Listener(string application, EmbeddedRouterSettings settings, Route route, WebApplication app)
    {
        public string Application { get; } = application;
        public EmbeddedRouterSettings Settings { get; } = settings;
        public Uri PublicUrl { get; set; } = null!;

        // A field, not a property: it is read and swapped with Volatile/Interlocked.
        public Route CurrentRoute = route;

        /// <summary>Whether this listener already matches the settings (port 0 is satisfied by whatever port was picked).</summary>
        public bool Serves(EmbeddedRouterSettings wanted) =>
            wanted.Address.Equals(Settings.Address) && (wanted.ListenPort == 0 || wanted.ListenPort == PublicUrl.Port);

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            await app.StopAsync(cancellationToken);
            await app.DisposeAsync();
        }
    }

    private sealed class OwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
