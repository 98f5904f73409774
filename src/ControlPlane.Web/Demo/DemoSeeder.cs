using System.Text.Json;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Hooks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Demo;

public sealed class DemoOptions
{
    public const string Section = "ControlPlane:Demo";
    public const string ApplicationName = "demo-shop";

    /// <summary>Seed <c>demo-shop</c>; defaults to true on the embedded default, false with an external database.</summary>
    public bool? Enabled { get; set; }

    /// <summary>The demo router's public port (0 = pick a free one).</summary>
    public int RouterPort { get; set; } = 8080;

    /// <summary>The IP address the demo router listens on; 0.0.0.0 inside a container, so a published port reaches it.</summary>
    public string RouterAddress { get; set; } = "127.0.0.1";

    /// <summary>Requests per second the demo sends through its own public URL, so traffic checks have real traffic (0 = off).</summary>
    public double TrafficPerSecond { get; set; } = 4;

    /// <summary>Where ControlPlane.DemoApp.dll is, when not next to ControlPlane or in the source tree.</summary>
    public string? AppPath { get; set; }
}

/// <summary>
/// Registers <c>demo-shop</c> on first start: the demo web app as two real processes on loopback ports (blue 1.0.0 live)
/// behind the embedded router. It goes through the same registration as any application.
/// </summary>
public static class DemoSeeder
{
    /// <summary>Seed 001's evidence: the page and health answer, the database is connected and the cache is warm (README, demo versions).</summary>
    /// <summary>Reads the demo's orders the way the version's code does: the check an expand that breaks the live version fails.</summary>
    public static readonly HttpCheck OrdersCheck = new() { Name = "orders", Path = "/orders", TimeoutSeconds = 3, Retries = 1 };

    public static readonly IReadOnlyList<HttpCheck> DemoChecks =
    [
        new() { Name = "home", Path = "/", TimeoutSeconds = 3, Retries = 1 },
        new() { Name = "health", Path = "/healthz", TimeoutSeconds = 3, Retries = 1 },
        new()
        {
            Name = "db", Path = "/internal/db-check", TimeoutSeconds = 3, Retries = 1,
            Json = [new() { Path = "$.status", ExpectedValue = JsonSerializer.SerializeToElement("connected") }],
        },
        new() { Name = "cache", Path = "/metrics/cache-hit-ratio", TimeoutSeconds = 3, Retries = 1, Json = [new() { Path = "$.hitRatio", Min = 0.85 }] },
        // Judged after the switch on the real requests the router measured (the demo's own traffic: DemoTrafficGenerator).
        new() { Kind = HttpCheck.TrafficKind, Name = "real-traffic", MaxErrorRate = 0.01, MinRequests = 20 },
    ];

    public static async Task SeedAsync(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<DemoOptions>>().Value;
        if (options.Enabled != true) return;
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Demo");
        // On every start: the schema database is registered in memory, and the cluster's port may have changed.
        var ordersFile = await DemoOrdersDatabase.EnsureAsync(services, logger);
        if (await db.Applications.AsNoTracking().SingleOrDefaultAsync(a => a.Name == DemoOptions.ApplicationName) is { } existing)
        {
            await ApplyRouterSettingAsync(scope.ServiceProvider, existing, options, logger);
            return;
        }

        var dll = DemoAppLocator.Find(options.AppPath);
        if (dll is null)
        {
            logger.LogWarning("Demo not seeded: ControlPlane.DemoApp.dll was not found (build the solution, or set ControlPlane:Demo:AppPath)");
            return;
        }
        var dotnet = DemoAppLocator.DotnetHost();
        var deployer = new
        {
            command = dotnet,
            arguments = new[] { dll, "--urls", "http://127.0.0.1:{port}", "--version", "{version}", "--slot", "{slot}", "--app", "{app}" },
            bluePort = LoopbackPorts.PickForLater(),
            greenPort = LoopbackPorts.PickForLater(),
            healthPath = "/healthz",
            startTimeoutSeconds = 30,
            environment = ordersFile is null ? new Dictionary<string, string>() : new() { [DemoOrdersDatabase.EnvironmentVariable] = ordersFile },
        };
        var router = new { listenAddress = options.RouterAddress, listenPort = options.RouterPort };
        try
        {
            await scope.ServiceProvider.GetRequiredService<ReleaseCommands>().RegisterAsync(new RegisterApplication(
                DemoOptions.ApplicationName,
                "embedded", JsonSerializer.SerializeToElement(router),
                "process", JsonSerializer.SerializeToElement(deployer),
                ordersFile is null ? DemoChecks : [.. DemoChecks, OrdersCheck],
                new ReleasePolicy { RequiredApprovals = 1, MonitoringWindowSeconds = 30, MonitoringIntervalSeconds = 2, HoldWindowSeconds = 600 },
                "1.0.0", Slot.Blue, "/",
                ordersFile is null ? null : new ApplicationHooks { SchemaDatabase = DemoOrdersDatabase.SchemaDatabaseName }), Actor.System, CancellationToken.None);
        }
        catch (ValidationException ex)
        {
            throw new InvalidOperationException($"The demo configuration (ControlPlane:Demo:*) is invalid: {ex.Message}", ex);
        }
        logger.LogInformation("Seeded the demo application {Application} (blue 1.0.0 live)", DemoOptions.ApplicationName);
    }

    /// <summary>
    /// ControlPlane:Demo:RouterPort / RouterAddress, when set explicitly, apply to an existing demo-shop too: through the
    /// normal audited edit (application.edited by system, before and after), after which the runtime brings the router up
    /// on the new address. Not set, the application's own router settings (perhaps edited through the API) stay as they are.
    /// </summary>
    private static async Task ApplyRouterSettingAsync(IServiceProvider services, Application app, DemoOptions options, ILogger logger)
    {
        var configuration = services.GetRequiredService<IConfiguration>();
        var portSet = configuration[$"{DemoOptions.Section}:RouterPort"] is { Length: > 0 };
        var addressSet = configuration[$"{DemoOptions.Section}:RouterAddress"] is { Length: > 0 };
        if (app.RouterKind != "embedded" || (!portSet && !addressSet)) return;
        var settings = System.Text.Json.Nodes.JsonNode.Parse(app.RouterSettings)!.AsObject();
        var port = settings["listenPort"]?.GetValue<int>() ?? 0;
        var address = settings["listenAddress"]?.GetValue<string>() ?? "127.0.0.1";
        // Port 0 means "any free port" and is pinned to the port it got: an unchanged 0 is no change.
        var wantPort = portSet && options.RouterPort != 0 && options.RouterPort != port;
        var wantAddress = addressSet && options.RouterAddress != address;
        if (!wantPort && !wantAddress) return;
        if (wantPort) settings["listenPort"] = options.RouterPort;
        if (wantAddress) settings["listenAddress"] = options.RouterAddress;
        try
        {
            await services.GetRequiredService<ReleaseCommands>().EditAsync(app.Name, new RegisterApplication(app.Name, app.RouterKind,
                    JsonSerializer.SerializeToElement(settings), app.DeployerKind, app.DeployerSettingsJson, app.Checks, app.Policy,
                    app.LiveVersion ?? "", app.LiveSlot, app.VerifyPath, app.Hooks), app.RowVersion,
                $"{DemoOptions.Section}:RouterPort/RouterAddress is {options.RouterAddress}:{options.RouterPort}", Actor.System, CancellationToken.None);
            logger.LogInformation("Demo router moves from {Old} to {New} ({Section}:RouterPort/RouterAddress)", $"{address}:{port}",
                $"{options.RouterAddress}:{(wantPort ? options.RouterPort : port)}", DemoOptions.Section);
        }
        catch (Exception ex) when (ex is DomainException or ValidationException)
        {
            logger.LogWarning("Demo router stays on {Old}, not {New}: {Reason}. It is tried again at the next start", $"{address}:{port}",
                $"{options.RouterAddress}:{options.RouterPort}", ex.Message);
        }
    }
}
