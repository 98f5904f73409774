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
//   GET /healthz  {"status":"ok","version":"1.0.0"}; 503 {"status":"warming up",...} until the app is warm (Readiness.cs)
//   GET /version  the version as plain text
//   GET /internal/db-check         {"status":"connected"}  (seed 001's database check)
//   GET /metrics/cache-hit-ratio   {"hitRatio":0.92}       (seed 001's cache check)
//   GET /orders   the orders in the demo's own database, read as this version's code would (Orders.cs)
//
// Demo version-naming convention (how to see a failing release without editing code):
//   - a version containing "-fail-verify" (e.g. 2.0.0-fail-verify): /healthz is fine, so the version deploys,
//     but GET / answers 500 {"error":"demo: this version fails verification"}, so the release stops at Verifying
//     and traffic never moves.
//   - a version containing "-fail-monitor" (e.g. 2.1.0-fail-monitor): serves normally until it has answered
//     ControlPlane's data-plane probe after the switch (header X-ControlPlane-Probe; or 3 s of traffic through a proxy,
//     X-Forwarded-For; the pre-switch checks call the slot directly and carry neither), then GET / answers 500 from then on,
//     so the monitoring checks after the switch breach and ControlPlane rolls back automatically.
//     /healthz stays 200.
//   - a version containing "-slow-verify" (e.g. 2.0.0-slow-verify): answers requests that do not come through a proxy
//     (ControlPlane's own checks) after 1.5 seconds, so the Verifying step can be watched; traffic through the router is fast.
//   - a version containing "-slow-start" (e.g. 2.0.0-slow-start): waits 5 seconds before it starts listening, so
//     the Deploying step (and its progress messages) can be watched.
//   - a version containing "-cold-cache" (e.g. 2.0.0-cold-cache): /metrics/cache-hit-ratio says 0.6, so a check
//     {"path":"$.hitRatio","min":0.85} fails verification naming $.hitRatio and traffic never moves.
//   - a version containing "-errors-5pct" (e.g. 2.0.0-errors-5pct): every 20th real request to / through the router answers
//     500 (5%); ControlPlane's own checks and its data-plane probe (header X-ControlPlane-Probe) always pass, so only a
//     traffic check (the router's measurement of real requests) sees it and rolls the release back.
//   - a version containing "-db-down" (e.g. 2.0.0-db-down): /internal/db-check says {"status":"disconnected"}.
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
var warmDatabase = Readiness.StartDatabase(info);
if (info.Version.Contains("-slow-start", StringComparison.OrdinalIgnoreCase))
    await Task.Delay(TimeSpan.FromSeconds(5));

var app = builder.Build();

if (failsMonitor)
{
    // Trips only after ControlPlane's data-plane probe (X-ControlPlane-Probe, through the router) has been answered, so the
    // switch itself verifies. Real traffic (the demo's own generator) can reach the new slot a moment before the probe; it
    // trips the version only once it has flowed for 3 s, for routers whose switch sends no probe.
    long firstProxiedTicks = 0;
    app.Use(async (context, next) =>
    {
        await next(context);
        if (!context.Request.Headers.ContainsKey("X-Forwarded-For") && !context.Request.Headers.ContainsKey("X-ControlPlane-Probe")) return;
        var now = Environment.TickCount64;
        Interlocked.CompareExchange(ref firstProxiedTicks, now, 0);
        if (context.Request.Headers.ContainsKey("X-ControlPlane-Probe") || now - Interlocked.Read(ref firstProxiedTicks) >= 3000)
            Interlocked.Exchange(ref proxiedRequestAnswered, 1);
    });
}

var slowChecks = info.Version.Contains("-slow-verify", StringComparison.OrdinalIgnoreCase);
var errors5pct = info.Version.Contains("-errors-5pct", StringComparison.OrdinalIgnoreCase);
long realRequests = 0;

app.MapGet("/", async Task<IResult> (HttpContext context) =>
{
    if (slowChecks && !context.Request.Headers.ContainsKey("X-Forwarded-For"))
        await Task.Delay(TimeSpan.FromSeconds(1.5), context.RequestAborted);
    if (failsVerify)
        return TypedResults.Json(new DemoError("demo: this version fails verification"), statusCode: 500);
    if (failsMonitor && Volatile.Read(ref proxiedRequestAnswered) == 1)
        return TypedResults.Json(new DemoError("demo: this version fails after the switch"), statusCode: 500);
    if (errors5pct && context.Request.Headers.ContainsKey("X-Forwarded-For") && !context.Request.Headers.ContainsKey("X-ControlPlane-Probe")
        && Interlocked.Increment(ref realRequests) % 20 == 0)
        return TypedResults.Json(new DemoError("demo: this version fails 5% of real requests"), statusCode: 500);
    return TypedResults.Ok(info);
});
var warm = Readiness.WarmAsync(app, info, warmDatabase);
app.MapGet("/healthz", () => warm.IsCompleted
    ? TypedResults.Ok(new DemoHealth("ok", info.Version))
    : Results.Json(new DemoHealth("warming up", info.Version), statusCode: StatusCodes.Status503ServiceUnavailable));
app.MapGet("/version", () => TypedResults.Text(info.Version));
var dbDown = info.Version.Contains("-db-down", StringComparison.OrdinalIgnoreCase);
var coldCache = info.Version.Contains("-cold-cache", StringComparison.OrdinalIgnoreCase);
app.MapGet("/internal/db-check", () => TypedResults.Ok(new DemoDbCheck(dbDown ? "disconnected" : "connected")));
app.MapGet("/metrics/cache-hit-ratio", () => TypedResults.Ok(new DemoCacheRatio(coldCache ? 0.6 : 0.92)));
app.MapOrders(info); // GET /orders: the demo's orders database (Orders.cs)

await app.RunAsync();

internal sealed record DemoInfo(string App, string Version, string Slot);
internal sealed record DemoHealth(string Status, string Version);
internal sealed record DemoError(string Error);
internal sealed record DemoDbCheck(string Status);
internal sealed record DemoCacheRatio(double HitRatio);
