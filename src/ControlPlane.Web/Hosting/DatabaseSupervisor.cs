using System.Diagnostics;
using Npgsql;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// Watches the database. When it goes away ControlPlane keeps running and keeps the data plane serving: this says so once,
/// reconnects with backoff, and on the embedded default starts its own PostgreSQL again when the server is gone. The
/// runtime workers skip their rounds while the database is away; <c>/healthz</c> answers 503 with the reason.
/// </summary>
public sealed class DatabaseSupervisor(ResolvedDatabase database, ILogger<DatabaseSupervisor> logger) : BackgroundService
{
    private static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private volatile string? _problem;
    private long _downSince;

    /// <summary>False from the first failed check until a check succeeds again.</summary>
    public bool IsAvailable => _problem is null;

    /// <summary>Why the database is not available (null when it is).</summary>
    public string? Problem => _problem;

    /// <summary>A check of its own, bounded by <paramref name="timeout"/>: null when PostgreSQL answers, else why not.</summary>
    public async Task<string?> CheckAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        try
        {
            await using var connection = await database.DataSource.OpenConnectionAsync(bounded.Token);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(bounded.Token);
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"PostgreSQL did not answer within {timeout.TotalSeconds:0.#} s";
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
        {
            return ex.InnerException is { } inner && ex.Message.StartsWith("Exception while", StringComparison.Ordinal) ? inner.Message : ex.Message;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = CheckEvery;
        string? lastRestartProblem = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var problem = await CheckAsync(CheckTimeout, stoppingToken);
            if (problem is null)
            {
                if (_problem is not null)
                {
                    // Pooled connections to the old server are dead; drop them rather than fail one request each.
                    database.DataSource.Clear();
                    logger.LogInformation("PostgreSQL is reachable again after {Seconds:0} s; resuming", Stopwatch.GetElapsedTime(_downSince).TotalSeconds);
                    _problem = null;
                }
                backoff = CheckEvery;
                lastRestartProblem = null;
            }
            else
            {
                if (_problem is null)
                {
                    _downSince = Stopwatch.GetTimestamp();
                    logger.LogWarning("PostgreSQL is not reachable: {Reason}. Slots and routers keep serving; ControlPlane waits and reconnects", problem);
                }
                _problem = problem;
                if (database.Embedded is { } embedded)
                    lastRestartProblem = await RestartEmbeddedAsync(embedded, lastRestartProblem, stoppingToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            await Task.Delay(_problem is null ? CheckEvery : backoff, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task<string?> RestartEmbeddedAsync(Core.Data.EmbeddedPostgres embedded, string? lastProblem, CancellationToken stoppingToken)
    {
        try
        {
            if (await embedded.IsRunningAsync(stoppingToken)) return null; // running but not answering (busy, stopped by a signal): wait
            logger.LogWarning("The embedded PostgreSQL (data {DataDirectory}) is not running; starting it again on port {Port}", embedded.DataDirectory, embedded.Port);
            if (await embedded.StartAgainAsync(stoppingToken))
                logger.LogInformation("Started the embedded PostgreSQL again on 127.0.0.1:{Port}", embedded.Port);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            if (ex.Message != lastProblem)
                logger.LogError("Could not start the embedded PostgreSQL again: {Reason}; retrying with backoff", ex.Message);
            return ex.Message;
        }
    }
}
