// ControlPlane demo app — the small web app the built-in demo deploys into the blue and green slots.
//
// Configuration (command line wins over environment):
//   --version 2.0.0   or DEMO_VERSION   (default 1.0.0)
//   --slot green      or DEMO_SLOT      (default blue)
//   --app demo-shop   or DEMO_APP       (default demo-shop)
//   --urls http://127.0.0.1:5101        (standard ASP.NET Core)
//
// Endpoints:
//   GET /         {"app":"demo-shop","version":"1.0.0","slot":"blue"}
//   GET /healthz  {"status":"ok","version":"1.0.0"}
//   GET /version  the version as plain text
//   GET /orders   the orders in the demo's own database, read as this version's code would (Orders.cs)
//
// Demo version-naming convention (how to see a failing release without editing code):
//   - a version containing "-fail-verify" (e.g. 2.0.0-fail-verify): /healthz is fine, so the version deploys,
//     but GET / answers 500 {"error":"demo: this version fails verification"}, so the release stops at Verifying
//     and traffic never moves.
//   - a version containing "-fail-monitor" (e.g. 2.1.0-fail-monitor): serves normally until it has answered its
//     first request that came through a proxy (one with an X-Forwarded-For header, which the embedded router adds;
//     ControlPlane's pre-switch checks call the slot directly and do not), then GET / answers 500 from then on,
//     so the monitoring checks after the switch breach and ControlPlane rolls back automatically.
//     /healthz stays 200.
//   - a version containing "-slow-verify" (e.g. 2.0.0-slow-verify): answers requests that do not come through a proxy
//     (ControlPlane's own checks) after 1.5 seconds, so the Verifying step can be watched; traffic through the router is fast.
//   - a version containing "-slow-start" (e.g. 2.0.0-slow-start): waits 5 seconds before it starts listening, so
//     the Deploying step (and its progress messages) can be watched.
//   Any other version behaves well.

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);

// Read --version/--slot/--app from the command line only: the default environment provider would also map
// unrelated variables such as APP or VERSION onto those keys.
var commandLine = new ConfigurationBuilder().AddCommandLine(args).Build();
string Setting(string key, string environmentKey, string fallback) =>
    NonEmpty(commandLine[key]) ?? NonEmpty(builder.Configuration[environmentKey]) ?? fallback;
static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

var info = new DemoInfo(
    App: Setting("app", "DEMO_APP", "demo-shop"),
    Version: Setting("version", "DEMO_VERSION", "1.0.0"),
    Slot: Setting("slot", "DEMO_SLOT", "blue"));
var failsVerify = info.Version.Contains("-fail-verify", StringComparison.OrdinalIgnoreCase);
var failsMonitor = info.Version.Contains("-fail-monitor", StringComparison.OrdinalIgnoreCase);
var proxiedRequestAnswered = 0;
if (info.Version.Contains("-slow-start", StringComparison.OrdinalIgnoreCase))
    await Task.Delay(TimeSpan.FromSeconds(5));

var app = builder.Build();

if (failsMonitor)
{
    // Trips only after the proxied request has been answered, so the router's data-plane check still succeeds.
    app.Use(async (context, next) =>
    {
        await next(context);
        if (context.Request.Headers.ContainsKey("X-Forwarded-For"))
            Interlocked.Exchange(ref proxiedRequestAnswered, 1);
    });
}

var slowChecks = info.Version.Contains("-slow-verify", StringComparison.OrdinalIgnoreCase);

app.MapGet("/", async Task<IResult> (HttpContext context) =>
{
    if (slowChecks && !context.Request.Headers.ContainsKey("X-Forwarded-For"))
        await Task.Delay(TimeSpan.FromSeconds(1.5), context.RequestAborted);
    if (failsVerify)
        return TypedResults.Json(new DemoError("demo: this version fails verification"), statusCode: 500);
    if (failsMonitor && Volatile.Read(ref proxiedRequestAnswered) == 1)
        return TypedResults.Json(new DemoError("demo: this version fails after the switch"), statusCode: 500);
    return TypedResults.Ok(info);
});
app.MapGet("/healthz", () => TypedResults.Ok(new DemoHealth("ok", info.Version)));
app.MapGet("/version", () => TypedResults.Text(info.Version));
app.MapOrders(info); // GET /orders: the demo's orders database (Orders.cs)

await app.RunAsync();

internal sealed record DemoInfo(string App, string Version, string Slot);
internal sealed record DemoHealth(string Status, string Version);
internal sealed record DemoError(string Error);
