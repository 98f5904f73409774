using System.Data.Common;
using System.Diagnostics;
using ControlPlane.Core.Notifications;

namespace ControlPlane.Core.Execution;

/// <summary>
/// Lets a request that recorded a traffic move (a switch or a rollback) wait, bounded, for the runtime leader — on whichever
/// replica that is — to report it carried out: every save of the deployment sends a NOTIFY, which wakes the wait at once; a
/// periodic look covers a notice lost to a reconnect. Created before the intent is saved, so the leader's answer cannot slip
/// by between the save and the wait.
/// </summary>
public sealed class LeaderReport : IDisposable
{
    private readonly SemaphoreSlim _heard = new(0);
    private readonly IDisposable _subscription;
    private volatile object? _watched;

    public LeaderReport(ChangeNotifier notifier)
    {
        _subscription = notifier.Subscribe(n =>
        {
            if (n.DeploymentId is { } id && _watched is Guid watched && id == watched && _heard.CurrentCount == 0) _heard.Release();
        });
    }

    /// <summary>The deployment whose saves wake the wait (a rollback learns it only once it has looked).</summary>
    public Guid? Deployment
    {
        get => _watched as Guid?;
        set => _watched = value;
    }

    /// <summary>
    /// Calls <paramref name="look"/> until it returns an answer (the move is done, or refused: it may also throw the refusal),
    /// or <paramref name="limit"/> has passed; null then. A zero limit does not look at all. Null too when the database cannot
    /// be read during the wait: the intent is already committed and the leader carries it out regardless (the router keeps
    /// serving without the database), so the caller answers "recorded, follow it" rather than failing a move that will happen.
    /// </summary>
    public async Task<T?> WaitAsync<T>(TimeSpan limit, Func<Task<T?>> look, CancellationToken cancellationToken) where T : class
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (limit > TimeSpan.Zero)
            {
                try
                {
                    if (await look() is { } answer) return answer;
                }
                // Npgsql's EF execution strategy wraps a failed connection in an InvalidOperationException ("likely due to a
                // transient failure"); the driver's own DbException is inside.
                catch (Exception e) when ((e is DbException || e.InnerException is DbException) && !cancellationToken.IsCancellationRequested)
                {
                    return null;
                }
            }
            var left = limit - waited.Elapsed;
            if (left <= TimeSpan.Zero) return null;
            await _heard.WaitAsync(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    public void Dispose()
    {
        _subscription.Dispose();
        _heard.Dispose();
    }
}
