// ControlPlane router — the data plane of the `embedded` router kind: one small process per application that forwards every
// request to the live slot with YARP. ControlPlane starts it in its own session, records it, and adopts it across its own
// restarts; this process never needs ControlPlane (or PostgreSQL) to keep serving.
//
//   dotnet ControlPlane.Router.dll --app demo-shop --listen 127.0.0.1:8080 --state <DataDirectory>/routers/demo-shop
//
// The state directory holds:
//   control.secret   the control channel's bearer secret (mode 0600, written by ControlPlane; read once at start)
//   route.json       the last route this router was given ({live, blue, green, revision}); read at start, rewritten
//                    (write, fsync, rename) before a new route is acknowledged, so a restart serves the same route
//   endpoints.json   written by this process once listening: {pid, publicPort, controlPort}
//
// Control channel (127.0.0.1, its own port, Authorization: Bearer <secret>):
//   GET /route                        the current route
//   PUT /route {live, blue, green, expectedRevision}
//                                     compare-and-swap: 409 with the current route when the revision moved on
//   GET /traffic                      requests, 5xx and a latency histogram per slot (TrafficMeter.cs; off with --measure-traffic false)
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

var options = RouterArguments.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: ControlPlane.Router --app NAME --listen ADDRESS:PORT --state DIRECTORY");
    return 2;
}

var secretPath = Path.Combine(options.StateDirectory, RouterFiles.Secret);
var secret = File.Exists(secretPath) ? File.ReadAllText(secretPath).Trim() : "";
if (secret.Length < 32)
{
    Console.Error.WriteLine($"{secretPath} is missing or too short: refusing to open a control channel without a secret");
    return 2;
}

var meter = new TrafficMeter(options.MeasureTraffic, TimeProvider.System);
var routes = new RouteTable(options.StateDirectory, RouteFile.Read(Path.Combine(options.StateDirectory, RouterFiles.Route)));

var invoker = new HttpMessageInvoker(new SocketsHttpHandler
{
    UseProxy = false,
    AllowAutoRedirect = false,
    AutomaticDecompression = DecompressionMethods.None,
    UseCookies = false,
    EnableMultipleHttp2Connections = true,
    ConnectTimeout = TimeSpan.FromSeconds(5),
    // A transparent proxy: the client's own trace headers go through as they came (YARP copies them); no span of ours is
    // made up and injected into every forwarded request.
    ActivityHeadersPropagator = null,
});

// ---- The public listener: forwards every request to the live slot -------------------------------------------------------
var publicBuilder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "ControlPlane.Router", Args = [] });
publicBuilder.Logging.ClearProviders().AddSimpleConsole(o => { o.SingleLine = true; o.UseUtcTimestamp = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; });
publicBuilder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("ControlPlane.Router", LogLevel.Information)
    // Hosting starts an Activity for every request whenever this category is enabled at any level (for log scopes), which
    // showed in the profile under wrk; it logs nothing at Warning anyway (request start/stop are Information).
    .AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
publicBuilder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(options.Address, options.Port);
    kestrel.AddServerHeader = false;
    // The application behind the router decides how large a request may be.
    kestrel.Limits.MaxRequestBodySize = null;
});
publicBuilder.Services.AddHttpForwarder();
// In-flight requests get this long to finish on a stop; the router is stopped only on purpose.
publicBuilder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
var publicApp = publicBuilder.Build();
var logger = publicApp.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Router");
var forwarder = publicApp.Services.GetRequiredService<IHttpForwarder>();
publicApp.Run(async context =>
{
    // Read the route exactly once: this request finishes on it even if a switch happens meanwhile.
    var route = routes.Current;
    var started = meter.Start();
    if (route is null)
    {
        await Results.Problem(title: "No route yet", detail: $"{options.Application}: ControlPlane has not given this router a live slot yet.",
            statusCode: StatusCodes.Status503ServiceUnavailable).ExecuteAsync(context);
        return;
    }
    var error = await forwarder.SendAsync(context, route.LiveEndpoint, invoker, ForwarderRequestConfig.Empty, HttpTransformer.Default);
    // YARP has already set 502/504 and logged the cause; give the client a short explanation instead of an empty body.
    if (error != ForwarderError.None && !context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
    {
        var status = context.Response.StatusCode >= 500 ? context.Response.StatusCode : StatusCodes.Status502BadGateway;
        var what = error == ForwarderError.RequestTimedOut ? "did not answer in time" : "could not be reached";
        await Results.Problem(title: "The live slot did not answer",
            detail: $"{options.Application}: the live slot {route.Live} {what} through the embedded router.",
            statusCode: status).ExecuteAsync(context);
    }
    meter.Record(route.Live, context.Response.StatusCode, started);
});

// ---- The control channel: loopback only, its own port, a bearer secret --------------------------------------------------
var controlBuilder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "ControlPlane.Router.Control", Args = [] });
controlBuilder.Logging.ClearProviders();
controlBuilder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(IPAddress.Loopback, 0);
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = 64 * 1024;
});
controlBuilder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, RouterJson.Default));
var controlApp = controlBuilder.Build();
var expectedAuthorization = Encoding.UTF8.GetBytes("Bearer " + secret);
controlApp.Use(async (context, next) =>
{
    var given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
    if (!CryptographicOperations.FixedTimeEquals(given, expectedAuthorization))
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return;
    }
    await next(context);
});
controlApp.MapGet("/traffic", () => Results.Json(meter.Report(), TrafficJson.Default.TrafficReport));
controlApp.MapGet("/route", () => routes.Current is { } route ? Results.Json(route, RouterJson.Default.RouteState) : Results.NotFound());
controlApp.MapPut("/route", (RouteChange change) =>
{
    if (change.Live is not ("blue" or "green") || !Uri.TryCreate(change.Blue, UriKind.Absolute, out _) || !Uri.TryCreate(change.Green, UriKind.Absolute, out _))
        return Results.BadRequest();
    var before = routes.Current?.Live;
    bool applied;
    RouteState? current;
    try
    {
        (applied, current) = routes.CompareAndSet(change);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        logger.LogError(e, "{Application}: the route could not be saved; traffic stays on {Slot}", options.Application, before);
        return Results.Problem(title: "The route could not be saved", detail: $"{options.Application}: {e.Message}",
            statusCode: StatusCodes.Status500InternalServerError);
    }
    if (applied && current!.Live != before) meter.Restart(current.Live);
    if (!applied)
        return current is null ? Results.Conflict() : Results.Json(current, RouterJson.Default.RouteState, statusCode: StatusCodes.Status409Conflict);
    logger.LogInformation("{Application}: traffic goes to {Slot} ({Endpoint}), route revision {Revision}",
        options.Application, current!.Live, current.LiveEndpoint, current.Revision);
    return Results.Json(current, RouterJson.Default.RouteState);
});

await publicApp.StartAsync();
await controlApp.StartAsync();
var publicPort = BoundPort(publicApp);
var controlPort = BoundPort(controlApp);
RouteFile.WriteAtomically(Path.Combine(options.StateDirectory, RouterFiles.Endpoints),
    JsonSerializer.Serialize(new RouterEndpoints(Environment.ProcessId, publicPort, controlPort), RouterJson.Default.RouterEndpoints));
logger.LogInformation("{Application}: listening on {Address}:{Port}, control channel on 127.0.0.1:{ControlPort}, route {Route}",
    options.Application, options.Address, publicPort, controlPort, routes.Current is { } r ? $"{r.Live} ({r.LiveEndpoint}) revision {r.Revision}" : "none yet");

// SIGTERM (ControlPlane stopping the router on purpose) ends both listeners; in-flight requests get the shutdown timeout.
await publicApp.WaitForShutdownAsync();
await controlApp.StopAsync();
return 0;

static int BoundPort(WebApplication app) =>
    new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()
        .Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "[::1]", StringComparison.Ordinal)).Port;

internal sealed record RouterArguments(string Application, IPAddress Address, int Port, string StateDirectory, bool MeasureTraffic = true)
{
    public static RouterArguments? Parse(string[] args)
    {
        string? app = null, listen = null, state = null;
        var measure = true;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--app": app = args[i + 1]; break;
                case "--listen": listen = args[i + 1]; break;
                case "--state": state = args[i + 1]; break;
                case "--measure-traffic" when bool.TryParse(args[i + 1], out var on): measure = on; break;
                default: return null;
            }
        }
        if (app is null || state is null || listen is null || !IPEndPoint.TryParse(listen, out var endpoint)) return null;
        return new RouterArguments(app, endpoint.Address, endpoint.Port, Path.GetFullPath(state), measure);
    }
}

internal static class RouterFiles
{
    public const string Secret = "control.secret";
    public const string Route = "route.json";
    public const string Endpoints = "endpoints.json";
}

internal sealed record RouteState(string Live, string Blue, string Green, long Revision)
{
    [JsonIgnore]
    public string LiveEndpoint => Live == "blue" ? Blue : Green;
}

internal sealed record RouteChange(string Live, string Blue, string Green, long? ExpectedRevision);

internal sealed record RouterEndpoints(int Pid, int PublicPort, int ControlPort);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(RouteState))]
[JsonSerializable(typeof(RouteChange))]
[JsonSerializable(typeof(RouterEndpoints))]
internal sealed partial class RouterJson : JsonSerializerContext;

/// <summary>The live route: one immutable reference, swapped whole, so a request never sees a half-updated route.</summary>
internal sealed class RouteTable(string stateDirectory, RouteState? initial)
{
    private readonly Lock _changes = new();
    private RouteState? _current = initial;

    public RouteState? Current => Volatile.Read(ref _current);

    /// <summary>
    /// Applies <paramref name="change"/> when its expected revision is the current one. New requests take the new route at
    /// once; it is persisted before this returns (and so before the change is acknowledged), and taken back when it cannot be.
    /// </summary>
    /// <remarks>
    /// Traffic moves before the fsync, not after it: the PUT (mostly its fsync) took 5–28 ms with nothing else running and
    /// up to 100–400 ms while other processes wrote to the disk, and the new slot was served only after it. A crash in
    /// between restarts on the previous route; the change was never acknowledged, so ControlPlane sends it again.
    /// </remarks>
    public (bool Applied, RouteState? Current) CompareAndSet(RouteChange change)
    {
        lock (_changes)
        {
            var current = Current;
            if (change.ExpectedRevision is { } expected && expected != (current?.Revision ?? 0))
                return (false, current);
            if (current is not null && current.Live == change.Live && current.Blue == change.Blue && current.Green == change.Green)
                return (true, current);
            var next = new RouteState(change.Live, change.Blue, change.Green, (current?.Revision ?? 0) + 1);
            Volatile.Write(ref _current, next);
            try
            {
                RouteFile.WriteAtomically(Path.Combine(stateDirectory, RouterFiles.Route), JsonSerializer.Serialize(next, RouterJson.Default.RouteState));
            }
            catch
            {
                Volatile.Write(ref _current, current);
                throw;
            }
            return (true, next);
        }
    }
}

internal static class RouteFile
{
    public static RouteState? Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), RouterJson.Default.RouteState);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    public static void WriteAtomically(string path, string content)
    {
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(Encoding.UTF8.GetBytes(content));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
