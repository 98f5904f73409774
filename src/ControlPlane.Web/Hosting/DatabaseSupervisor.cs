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
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(15);

    private volatile string? _problem;
    private long _downSince;

    /// <summary>False from the first failed check until a check succeeds again.</summary>
    public bool IsAvailable => _problem is null;

    /// <summary>Why the database is not available (null when it is).</summary>
    public string? Problem => _problem;

    /// <summary>
    /// A check of its own, answered within <paramref name="timeout"/>: null when PostgreSQL answers, else why not. The probe
    /// itself is not cancelled at the timeout (on a busy machine a new connection may take longer to open, and cancelling it
    /// would leave the pool empty for the next check too); concurrent callers share one probe, so none pile up.
    /// </summary>
    public async Task<string?> CheckAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task<string?> probe;
        lock (_probeGate)
        {
            if (_probe is null || _probe.IsCompleted) _probe = ProbeAsync();
            probe = _probe;
        }
        if (await Task.WhenAny(probe, Task.Delay(timeout, cancellationToken)) == probe) return await probe;
        cancellationToken.ThrowIfCancellationRequested();
        return $"PostgreSQL did not answer within {timeout.TotalSeconds:0.#} s";
    }

    private readonly Lock _probeGate = new();
    private Task<string?>? _probe;

    private async Task<string?> ProbeAsync()
    {
        // Bounded by itself too: a stopped (SIGSTOP) server accepts the TCP connection but never answers.
        using var bounded = new CancellationTokenSource(ProbeTimeout);
        try
        {
            await using var connection = await database.DataSource.OpenConnectionAsync(bounded.Token);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(bounded.Token);
            return null;
        }
        catch (OperationCanceledException)
        {
            return $"PostgreSQL did not answer within {ProbeTimeout.TotalSeconds:0} s";
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
            // The whole probe (itself bounded): a slow answer on a busy machine is not an outage.
            var problem = await CheckAsync(ProbeTimeout + TimeSpan.FromSeconds(1), stoppingToken);
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
