using Npgsql;

namespace ControlPlane.Web.Workers;

/// <summary>
/// Decides which replica runs the release runtime (slot processes, the embedded router, the deployment worker): the one
/// holding a PostgreSQL session advisory lock. Other replicas serve the dashboard and the API from the same database and
/// take over when the leader's session ends.
/// </summary>
public sealed class RuntimeLeadership(NpgsqlDataSource dataSource, IHostApplicationLifetime lifetime, ILogger<RuntimeLeadership> logger) : BackgroundService
{
    private const long LockKey = 0x436F6E74726F6C4C; // "ControlL"
    private static readonly TimeSpan RetryEvery = TimeSpan.FromSeconds(2);
    private readonly TaskCompletionSource _acquired = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when this replica becomes the leader.</summary>
    public Task Acquired => _acquired.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        NpgsqlConnection? connection = null;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    connection ??= await dataSource.OpenConnectionAsync(stoppingToken);
                    await using var cmd = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LockKey})", connection);
                    if (await cmd.ExecuteScalarAsync(stoppingToken) is true) break;
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                {
                    logger.LogWarning("Cannot ask PostgreSQL for runtime leadership yet: {Reason}", ex.Message);
                    if (connection is not null) await connection.DisposeAsync();
                    connection = null;
                }
                await Task.Delay(RetryEvery, stoppingToken);
            }
            if (connection is null || stoppingToken.IsCancellationRequested) return;
            logger.LogInformation("This replica runs the release runtime (slot processes, routers, deployment worker)");
            _acquired.TrySetResult();

            // Holding the lock means holding this session: if it breaks, another replica may already lead, so this one
            // must stop acting at once rather than risk two runtimes driving the same slots.
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.Delay(RetryEvery, stoppingToken);
                await using var ping = new NpgsqlCommand("SELECT 1", connection);
                await ping.ExecuteScalarAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
        catch (Exception ex)
        {
            logger.LogCritical(ex, "Lost the runtime leadership session to PostgreSQL; stopping so that a healthy replica takes over");
            lifetime.StopApplication();
        }
        finally
        {
            if (connection is not null) await connection.DisposeAsync();
        }
    }
}
