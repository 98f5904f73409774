using System.Text.Json.Serialization;
using ControlPlane.Core;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Data;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Notifications;
using ControlPlane.Core.Notifications.Webhooks;
using ControlPlane.Core.Routing;
using ControlPlane.Web.Api;
using ControlPlane.Web.Components;
using ControlPlane.Web.Demo;
using ControlPlane.Web.Hosting;
using ControlPlane.Web.Hubs;
using ControlPlane.Web.Security;
using ControlPlane.Web.Workers;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.EntityFrameworkCore;
using MudBlazor.Services;
using Npgsql;

var builder = WebApplication.CreateBuilder(args);
// `-- reset-admin [--user NAME]`: a new one-time password for a locked-out installation, without the web server (README).
if (ResetAdminCommand.Matches(args))
    return await ResetAdminCommand.RunAsync(builder.Configuration, args, Console.Out, Console.Error);
// `dotnet run` serves from the build output, where package assets (MudBlazor, the Blazor script) come through the static
// web assets manifest; ASP.NET Core only reads it in Development unless asked. Published output has no manifest: no-op.
builder.WebHost.UseStaticWebAssets();
builder.AddStaticAssetCaching(); // immutable fingerprinted assets, 304s, compression (Hosting/StaticAssetCaching.cs)
var dashboardUrls = builder.Configuration[WebHostDefaults.ServerUrlsKey];
if (string.IsNullOrEmpty(dashboardUrls))
    builder.WebHost.UseUrls(dashboardUrls = "http://localhost:5080");
// Checked before anything starts (database, slot processes, routers): a taken address ends the start with one line.
if (ListenAddressCheck.FirstTaken(dashboardUrls) is { } taken)
{
    Console.Error.WriteLine($"ControlPlane cannot listen on {taken}: the address is in use. Stop what uses it, or start on another address: " +
                            "dotnet run --project src/ControlPlane.Web -- --urls http://127.0.0.1:5081");
    return 2;
}

builder.Services.AddOptions<ControlPlaneOptions>().BindConfiguration(ControlPlaneOptions.Section);

// ---- Database: an external PostgreSQL when configured, otherwise our own embedded cluster -------------------------------
var database = await DatabaseHosting.ResolveAsync(builder.Configuration);
builder.Services.AddSingleton(database);
builder.Services.AddHostedService<EmbeddedPostgresLifetime>(); // registered first, so it stops last
builder.Services.AddSingleton(database.DataSource);
builder.Services.AddDbContext<ControlPlaneDbContext>(o => DatabaseHosting.Configure(o, database.DataSource),
    ServiceLifetime.Scoped, ServiceLifetime.Singleton);
builder.Services.AddDbContextFactory<ControlPlaneDbContext>(o => DatabaseHosting.Configure(o, database.DataSource));
builder.Services.AddOptions<DemoOptions>().BindConfiguration(DemoOptions.Section)
    .Configure(o => o.Enabled ??= database.IsEmbedded);

// ---- Release flow ------------------------------------------------------------------------------------------------------
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<ChangeNotifier>();
builder.Services.AddHttpClient(HttpCheckRunner.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
    .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(30) });
builder.Services.AddRoutersAndDeployers();
builder.Services.AddSingleton<ProviderRegistry>();
builder.Services.AddSingleton<HttpCheckRunner>();
builder.Services.AddCheckRunners(); // prometheus and the dispatcher by kind (Checks/CheckRunner.cs)
builder.Services.AddScoped<DeploymentReconciler>();
builder.Services.AddScoped<TrafficSwitch>();
builder.Services.AddScoped<ApplicationRuntime>();
builder.Services.AddSingleton<RuntimeFaults>(); // router cannot listen, slot cannot start: overview, /healthz, logged once per change
builder.Services.AddScoped<ReleaseCommands>();
builder.Services.AddLifecycleHooks(builder.Configuration, database); // hooks, expand/contract (Core/Hooks)
// Which host this ControlPlane runs on: slot processes and embedded routers belong to one host (README, "Replicas").
builder.Services.AddSingleton(new RuntimeHost(builder.Configuration["ControlPlane:HostId"] is { Length: > 0 } hostId ? hostId : Environment.MachineName));
// How long a rollback request waits for the runtime leader before answering 202 with where to poll.
builder.Services.AddSingleton(new RollbackWait(TimeSpan.FromSeconds(builder.Configuration.GetValue("ControlPlane:RollbackWaitSeconds", 10.0))));
builder.Services.AddAuditTrail(); // queries, verification, the checkpoint key (outside PostgreSQL) and publisher

builder.Services.AddOptions<RuntimeOptions>().BindConfiguration(RuntimeOptions.Section);
builder.Services.AddSingleton<DatabaseSupervisor>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<DatabaseSupervisor>());
builder.Services.AddHostedService<SlotProcessesLifetime>(); // after the workers stopped: leaves slots and routers serving (or stops them, opt-in)
builder.Services.AddSingleton<PostgresChangeListener>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresChangeListener>());
builder.Services.AddSingleton<RuntimeLeadership>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<RuntimeLeadership>());
builder.Services.AddSingleton<ApplicationRuntimeWorker>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ApplicationRuntimeWorker>());
builder.Services.AddHostedService<DeploymentWorker>();
builder.Services.AddHostedService<HubBroadcaster>();
builder.Services.AddWebhooks(); // durable outbox, signed deliveries (docs/webhooks.md)
builder.Services.AddHostedService<WebhookDeliveryWorker>();
builder.Services.AddHostedService<DemoTrafficGenerator>(); // the demo's own real traffic (ControlPlane:Demo:TrafficPerSecond, 0 = off)
builder.AddControlPlaneTelemetry(); // /metrics, per-slot traffic readings, spans (Hosting/Telemetry.cs)

// ---- API, auth, UI ----------------------------------------------------------------------------------------------------
// People sign in with a local account (or OIDC when configured) and get the session cookie; API and hub policies accept a
// bearer token or that cookie (cookie: reads only on the API). See Security/SecurityHardening.cs.
builder.AddControlPlaneSecurity();
builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ApiProblems.Customize);
builder.Services.AddSingleton<IProblemDetailsWriter, ApiProblemDetailsWriter>();
builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
// Binding failures throw in every environment (the default only does in Development; elsewhere they were a bare 400), so
// ProblemExceptionHandler answers them with problem details naming the field.
builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
builder.Services.ConfigureHttpJsonOptions(o =>
{
    // A misspelt field must not be silently ignored on a release control plane, nor a field given twice (which one wins?).
    o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
    o.SerializerOptions.AllowDuplicateProperties = false;
    // A number is a JSON number and a slot is its name: "2" for an integer or 7 for a slot is a wrong type, not a guess.
    o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
    o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(namingPolicy: null, allowIntegerValues: false));
});
builder.Services.AddOpenApi(OpenApiContract.Configure);
builder.Services.AddSignalR().AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new JsonStringEnumConverter()));
builder.Services.AddRazorComponents().AddInteractiveServerComponents();
builder.Services.AddMudServices(o =>
{
    // Toasts confirm that a request was taken; the page itself shows how it ends. A few at most, newest first, no repeats.
    o.SnackbarConfiguration.PreventDuplicates = true;
    o.SnackbarConfiguration.NewestOnTop = true;
    o.SnackbarConfiguration.MaxDisplayedSnackbars = 3;
    o.SnackbarConfiguration.VisibleStateDuration = 4000;
    o.SnackbarConfiguration.ShowCloseIcon = true;
});

var app = builder.Build();

app.UseExceptionHandler();
app.UseStatusCodePages();
app.Use((context, next) =>
{
    if (context.Request.Path.StartsWithSegments("/api"))
    {
        if (context.Request.ContentLength > RequestLimits.MaxApiBodyBytes)
            throw new BadHttpRequestException("Request body too large.", StatusCodes.Status413PayloadTooLarge);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = RequestLimits.MaxApiBodyBytes;
    }
    return next(context);
});
app.UseResponseCompression(); // CSS and JavaScript only (StaticAssetCaching)
app.UseSecurityHeaders();
app.UseApiRequestGuards();
app.UseAuthentication();
app.UseRateLimiter();
app.UseAuthorization();
app.UseAntiforgery();

app.MapStaticAssets();
app.MapOpenApi();
// Bounded: a stopped or unreachable database gives a 503 with the reason within 2 s, never a hanging request.
app.MapGet("/healthz", HealthEndpoint.CheckAsync).AllowAnonymous().WithTags("Health");
app.MapGroup("/api/v1")
    .MapApplicationsApi()
    .MapDeploymentsApi()
    .MapAuditApi()
    .MapTokensApi()
    .MapUsersApi()
    .MapWebhooksApi()
    .MapEvidenceApi();
app.MapHub<ControlPlaneHub>(ControlPlaneHub.Path);
app.MapControlPlaneMetrics();
app.MapAccountSignIn();
app.MapOidcSignIn();
app.MapDevSignIn();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode(o => o.ContentSecurityFrameAncestorsPolicy = "'none'");

app.Lifetime.ApplicationStarted.Register(() =>
{
    var urls = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
    app.Logger.LogInformation("ControlPlane dashboard on {Urls}", string.Join(", ", urls ?? []));
});
try
{
    await DatabaseHosting.MigrateAsync(app.Services);
    await InitialAdmin.EnsureAsync(app.Services);
    await DemoSeeder.SeedAsync(app.Services);
    await app.RunAsync();
}
catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
{
    // One line a person can act on, instead of a stack trace: the dashboard's address is taken.
    var urls = dashboardUrls;
    app.Logger.LogCritical("ControlPlane cannot listen on {Urls}: the address is in use ({Reason}). Stop what uses it, or start on another address: " +
                           "dotnet run --project src/ControlPlane.Web -- --urls http://127.0.0.1:5081", urls, ex.InnerException?.Message ?? ex.Message);
    Environment.ExitCode = 2;
}
finally
{
    // Also after a failed start (bad configuration, port in use): never leave the embedded PostgreSQL running behind us.
    await database.DisposeAsync();
}
return Environment.ExitCode;

public partial class Program;
