using System.Text.Json;
using Microsoft.Extensions.Options;

/// <summary>
/// /healthz says "ok" only once the app can serve its routes at their usual speed: what the first requests would otherwise pay
/// for (loading Npgsql and opening the orders database's pool, the JSON contracts of the answers) is done at start, meanwhile
/// /healthz answers 503. A readiness probe that passes before the main routes can answer promptly moves the start's cost
/// into the first checks and the first users' requests.
/// </summary>
internal static class Readiness
{
    /// <summary>An orders database that does not answer within this is left to GET /orders to report.</summary>
    private static readonly TimeSpan DatabaseBound = TimeSpan.FromSeconds(3);

    /// <summary>Starts what does not need the app (the orders database), so it overlaps the host's own start.</summary>
    public static Task StartDatabase(DemoInfo info) => Task.Run(() => Orders.WarmUpAsync(info, DatabaseBound));

    /// <summary>Completes when the app is warm: the database part and the answers' JSON contracts in the app's own serializer options.</summary>
    public static Task WarmAsync(WebApplication app, DemoInfo info, Task database) => Task.WhenAll(database, Task.Run(() =>
    {
        var json = app.Services.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        JsonSerializer.Serialize(info, json);
        JsonSerializer.Serialize(new DemoHealth("ok", info.Version), json);
        JsonSerializer.Serialize(new DemoError("warm-up"), json);
        JsonSerializer.Serialize(new DemoDbCheck("connected"), json);
        JsonSerializer.Serialize(new DemoCacheRatio(0.92), json);
        JsonSerializer.Serialize(new DemoOrders(info.Version, "customer_name", [new DemoOrder(1, "warm-up")], null), json);
    }));
}
