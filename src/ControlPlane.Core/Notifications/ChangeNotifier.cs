namespace ControlPlane.Core.Notifications;

/// <summary>
/// In-process fan-out of <see cref="ChangeNotice"/>s heard from PostgreSQL. Blazor components, the SignalR hub and the
/// deployment worker subscribe here; nothing subscribes to PostgreSQL directly.
/// </summary>
public sealed class ChangeNotifier
{
    private readonly Lock _gate = new();
    private ImmutableHandlers _handlers = new([]);

    public IDisposable Subscribe(Action<ChangeNotice> handler)
    {
        lock (_gate) _handlers = new([.. _handlers.Items, handler]);
        return new Subscription(this, handler);
    }

    public void Publish(ChangeNotice notice)
    {
        foreach (var handler in _handlers.Items)
        {
            // One broken subscriber (a closed circuit) must not stop the others from hearing it.
            try { handler(notice); } catch { /* subscriber's own problem */ }
        }
    }

    private void Unsubscribe(Action<ChangeNotice> handler)
    {
        lock (_gate) _handlers = new([.. _handlers.Items.Where(h => h != handler)]);
    }

    private sealed record ImmutableHandlers(Action<ChangeNotice>[] Items);

    private sealed class Subscription(ChangeNotifier owner, Action<ChangeNotice> handler) : IDisposable
    {
        public void Dispose() => owner.Unsubscribe(handler);
    }
}
