using Npgsql;

namespace ControlPlane.Web.Workers;

/// <summary>
/// Decides which replica runs the release runtime (slot processes, the embedded routers, the deployment worker): the one
/// holding a PostgreSQL session advisory lock. Other replicas serve the dashboard and the API from the same database and
/// take over when the leader's session ends. Losing the session (the database went away, the network broke) ends this
/// replica's term but never stops the host or the data plane: slots and routers keep serving, and the replica keeps
/// trying, with backoff, to lead again.
/// </summary>
public sealed class RuntimeLeadership(NpgsqlDataSource dataSource, ILogger<RuntimeLeadership> logger) : BackgroundService
{
    private const long LockKey = 0x436F6E74726F6C4C; // "ControlL"
    private static readonly TimeSpan PingEvery = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly TaskCompletionSource _acquired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationTokenSource _term = new();
    private int _terms;

    /// <summary>Completes when this replica becomes the leader for the first time.</summary>
    public Task Acquired => _acquired.Task;

    /// <summary>Whether this replica holds the leadership lock right now.</summary>
    public bool IsLeader { get; private set; }

    /// <summary>Whether this replica has led at some point (it started the local slot and router processes).</summary>
    public bool HasLed => _acquired.Task.IsCompleted;

    /// <summary>Counts leadership terms: a higher number than last seen means "lead again, re-attach the runtime".</summary>
    public int Terms => Volatile.Read(ref _terms);

    /// <summary>Cancelled when the current term ends (already cancelled while not leading).</summary>
    public CancellationToken Term => IsLeader ? _term.Token : new CancellationToken(canceled: true);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = FirstBackoff;
        string? lastProblem = null;
        var followerReported = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            NpgsqlConnection? connection = null;
            try
            {
                connection = await dataSource.OpenConnectionAsync(stoppingToken);
                await using (var cmd = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LockKey})", connection))
                {
                    if (await cmd.ExecuteScalarAsync(stoppingToken) is not true)
                    {
                        if (!followerReported)
                            logger.LogInformation("Another replica runs the release runtime; this one serves the dashboard and API and stands by");
                        followerReported = true;
                        lastProblem = null;
                        backoff = FirstBackoff;
                        await connection.DisposeAsync();
                        await Task.Delay(PingEvery, stoppingToken);
                        continue;
                    }
                }

                BeginTerm(again: Terms > 0);
                lastProblem = null;
                followerReported = false;
                backoff = FirstBackoff;
                // Holding the lock means holding this session: when it breaks, another replica may lead, so this term ends.
                while (!stoppingToken.IsCancellationRequested)
                {
                    await Task.Delay(PingEvery, stoppingToken);
                    await using var ping = new NpgsqlCommand("SELECT 1", connection);
                    await ping.ExecuteScalarAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
            {
                if (IsLeader)
                {
                    EndTerm();
                    logger.LogWarning("Lost the runtime leadership session to PostgreSQL ({Reason}). Slots and routers keep serving; " +
                                      "reconnecting with backoff", ex.Message);
                }
                else if (lastProblem != ex.Message)
                {
                    logger.LogWarning("Cannot ask PostgreSQL for runtime leadership ({Reason}); retrying with backoff", ex.Message);
                }
                lastProblem = ex.Message;
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            finally
            {
                if (connection is not null) await connection.DisposeAsync();
            }
        }
        if (IsLeader) EndTerm();
    }

    private void BeginTerm(bool again)
    {
        _term = new CancellationTokenSource();
        Interlocked.Increment(ref _terms);
        IsLeader = true;
        logger.LogInformation(again
            ? "This replica runs the release runtime again (slot processes, routers, deployment worker)"
            : "This replica runs the release runtime (slot processes, routers, deployment worker)");
        _acquired.TrySetResult();
    }

    private void EndTerm()
    {
        IsLeader = false;
        _term.Cancel();
    }
}
