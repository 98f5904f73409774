using System.Text.Json;
using ControlPlane.Core.Notifications;
using Npgsql;

namespace ControlPlane.Web.Workers;

/// <summary>
/// Holds one LISTEN connection and republishes every change NOTIFY in-process. This is how a change committed by any
/// replica (or the worker) reaches every open browser and wakes the worker at once.
/// </summary>
public sealed class PostgresChangeListener(NpgsqlDataSource dataSource, ChangeNotifier notifier, ILogger<PostgresChangeListener> logger) : BackgroundService
{
    /// <summary>Completes once the first LISTEN is in place (tests and start-up wait for it).</summary>
    public Task Listening => _listening.Task;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reported = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) =>
                {
                    var notice = JsonSerializer.Deserialize<ChangeNotice>(e.Payload);
                    if (notice is not null) notifier.Publish(notice);
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {ChangeNotice.Channel}", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                _listening.TrySetResult();
                if (reported) logger.LogInformation("Listening for PostgreSQL change notifications again");
                reported = false;
                // Anything missed while disconnected is caught up by subscribers refreshing on this synthetic notice.
                notifier.Publish(new ChangeNotice(ChangeNotice.ApplicationKind, null, null));
                while (!stoppingToken.IsCancellationRequested) await connection.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex)
            {
                // Once per outage, not once per attempt: the database supervisor reports the outage itself.
                if (!reported) logger.LogWarning("Lost the PostgreSQL LISTEN connection ({Reason}); reconnecting every second", ex.Message);
                reported = true;
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }
}
