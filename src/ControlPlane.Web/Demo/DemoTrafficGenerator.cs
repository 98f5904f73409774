using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ControlPlane.Web.Demo;

/// <summary>
/// Sends a few requests per second through the demo's public URL, as its users would, so the router has real traffic to
/// measure and the traffic check something to judge. Only when the demo is on; <c>ControlPlane:Demo:TrafficPerSecond</c> = 0 stops it.
/// </summary>
public sealed class DemoTrafficGenerator(IOptions<DemoOptions> options, IDbContextFactory<ControlPlaneDbContext> dbFactory, ILogger<DemoTrafficGenerator> logger)
    : BackgroundService
{
    private static readonly TimeSpan LookupEvery = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var rate = options.Value.TrafficPerSecond;
        if (options.Value.Enabled != true || rate <= 0) return;
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromSeconds(30) })
        {
            Timeout = TimeSpan.FromSeconds(5),
        };
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1 / Math.Min(rate, 100)));
        string? url = null;
        var lookedUp = DateTimeOffset.MinValue;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (url is null || DateTimeOffset.UtcNow - lookedUp > LookupEvery)
                {
                    try
                    {
                        await using var db = await dbFactory.CreateDbContextAsync(stoppingToken);
                        url = await db.Applications.AsNoTracking().Where(a => a.Name == DemoOptions.ApplicationName).Select(a => a.PublicUrl).SingleOrDefaultAsync(stoppingToken);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        logger.LogDebug("Demo traffic paused: {Reason}", ex.Message);
                    }
                    lookedUp = DateTimeOffset.UtcNow;
                }
                if (url is null) continue;
                try
                {
                    using var response = await http.GetAsync(url, stoppingToken);
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !stoppingToken.IsCancellationRequested)
                {
                    // The router may be restarting; the next tick tries again.
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}
