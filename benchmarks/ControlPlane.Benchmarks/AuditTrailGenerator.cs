using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Benchmarks;

/// <summary>
/// A deterministic, realistic audit trail: applications walk the real release flow (requested → deploying → verifying →
/// awaiting approval → approved → switching → monitoring → succeeded, with failures, aborts and rollbacks), interleaved
/// over a year. CI tokens request, people approve and abort, the system drives the rest — so filters hit skewed,
/// correlated data as they would in production.
/// </summary>
public sealed class AuditTrailGenerator(int seed = 42)
{
    public static readonly DateTimeOffset Start = new(2025, 11, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly TimeSpan Span = TimeSpan.FromDays(365);

    public static readonly string[] Applications = ["checkout", "catalog", "payments", "search", "accounts", "notifications", "ledger", "reporting"];
    private static readonly double[] ApplicationWeights = [30, 20, 14, 11, 9, 7, 5, 4];

    public static readonly Actor[] People =
    [
        .. new[] { "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil" }
            .Select((n, i) => new Actor(n, ActorKind.User, $"10.20.{i}.{10 + i * 3}")),
    ];

    private static readonly Actor[] Tokens =
        [new("ci-github", ActorKind.Token, "10.30.0.5"), new("ci-jenkins", ActorKind.Token, "10.30.0.6"), new("release-bot", ActorKind.Token, "10.30.0.7")];

    private readonly Random _random = new(seed);
    private readonly Dictionary<string, AppFlow> _flows = Applications.ToDictionary(a => a, _ => new AppFlow());
    private readonly Queue<AuditEvent> _pending = new();
    private DateTimeOffset _clock = Start;

    /// <summary>Events in chain order; the caller assigns sequence and hashes.</summary>
    public IEnumerable<AuditEvent> Generate(int count)
    {
        foreach (var app in Applications)
            _pending.Enqueue(AuditEvent.Create(People[0], "application.registered", Tick(count), app,
                details: JsonSerializer.Serialize(new { router = "nginx", deployer = "systemd" })));
        for (var produced = 0; produced < count; produced++)
        {
            while (_pending.Count == 0) Step(Tick(count - produced));
            yield return _pending.Dequeue();
        }
    }

    private DateTimeOffset Tick(int remainingEvents)
    {
        // Poisson arrivals, with the mean gap that spreads what is left over what is left of the year.
        var meanGap = (Start + Span - _clock).TotalMicroseconds / remainingEvents;
        _clock = _clock.AddMicroseconds(Math.Max(1, -Math.Log(1 - _random.NextDouble()) * meanGap));
        return _clock;
    }

    private void Step(DateTimeOffset now)
    {
        if (_random.NextDouble() < 0.0005)
        {
            _pending.Enqueue(AuditEvent.Create(Person(), "token.created", now, after: "Deployer",
                details: JsonSerializer.Serialize(new { name = $"ci-{_random.Next(1000)}" })));
            return;
        }
        var app = Pick(Applications, ApplicationWeights);
        var f = _flows[app];
        switch (f.State)
        {
            case null:
                f.Id = Guid.CreateVersion7(now);
                f.Version = $"{_random.Next(1, 5)}.{_random.Next(0, 40)}.{_random.Next(0, 20)}";
                f.Approvals = 0;
                f.RequiredApprovals = _random.NextDouble() < 0.3 ? 2 : _random.NextDouble() < 0.8 ? 1 : 0;
                Emit(f, app, _random.NextDouble() < 0.7 ? Pick(Tokens) : Person(), "deployment.requested", now, DeploymentState.Queued,
                    _random.NextDouble() < 0.3 ? "hotfix" : null,
                    JsonSerializer.Serialize(new { version = f.Version, fromVersion = "1.0.0", targetSlot = f.Target }));
                break;
            case DeploymentState.Queued:
                Emit(f, app, Actor.System, "deployment.deploying", now, DeploymentState.Deploying);
                break;
            case DeploymentState.Deploying when _random.NextDouble() < 0.03:
            case DeploymentState.Verifying when _random.NextDouble() < 0.04:
                Finish(f, app, Actor.System, "deployment.failed", now, DeploymentState.Failed, "health check /healthz returned 503 — traffic never moved.");
                break;
            case DeploymentState.Deploying:
                Emit(f, app, Actor.System, "deployment.verifying", now, DeploymentState.Verifying);
                break;
            case DeploymentState.Verifying:
                Emit(f, app, Actor.System, f.RequiredApprovals > 0 ? "deployment.awaiting-approval" : "deployment.ready-to-switch", now,
                    f.RequiredApprovals > 0 ? DeploymentState.AwaitingApproval : DeploymentState.ReadyToSwitch);
                break;
            case DeploymentState.AwaitingApproval when _random.NextDouble() < 0.05:
                Finish(f, app, Person(), "deployment.aborted", now, DeploymentState.Aborted, "not during the freeze");
                break;
            case DeploymentState.AwaitingApproval:
                f.Approvals++;
                var approved = f.Approvals >= f.RequiredApprovals;
                Emit(f, app, Person(), "deployment.approved", now, DeploymentState.AwaitingApproval, "looks good",
                    JsonSerializer.Serialize(new { approvals = f.Approvals, required = f.RequiredApprovals }));
                if (approved) Emit(f, app, Actor.System, "deployment.ready-to-switch", now.AddMicroseconds(1), DeploymentState.ReadyToSwitch);
                break;
            case DeploymentState.ReadyToSwitch:
                Emit(f, app, Actor.System, "deployment.switching", now, DeploymentState.Switching);
                break;
            case DeploymentState.Switching:
                Emit(f, app, Actor.System, "deployment.monitoring", now, DeploymentState.Monitoring);
                break;
            case DeploymentState.Monitoring when _random.NextDouble() < 0.05:
                Finish(f, app, Actor.System, "deployment.auto-rolled-back", now, DeploymentState.RolledBack, "error rate 4.1% above 2% for 60 s");
                break;
            case DeploymentState.Monitoring when _random.NextDouble() < 0.03:
                Finish(f, app, Person(), "deployment.rolled-back", now, DeploymentState.RolledBack, "customer reports of failed logins");
                break;
            case DeploymentState.Monitoring:
                Finish(f, app, Actor.System, "deployment.succeeded", now, DeploymentState.Succeeded, null);
                _pending.Enqueue(AuditEvent.Create(Actor.System, "slot.stopped", now.AddMicroseconds(1), app,
                    details: JsonSerializer.Serialize(new { slot = f.Target == "green" ? "blue" : "green" })));
                f.Target = f.Target == "green" ? "blue" : "green";
                break;
            default:
                f.State = null;
                break;
        }
    }

    private void Emit(AppFlow f, string app, Actor by, string action, DateTimeOffset now, DeploymentState after,
        string? reason = null, string? details = null)
    {
        _pending.Enqueue(AuditEvent.Create(by, action, now, app, f.Id, f.State?.ToString(), after.ToString(), reason,
            details ?? JsonSerializer.Serialize(new { version = f.Version, targetSlot = f.Target })));
        f.State = after;
    }

    private void Finish(AppFlow f, string app, Actor by, string action, DateTimeOffset now, DeploymentState after, string? reason)
    {
        Emit(f, app, by, action, now, after, reason);
        f.State = null;
    }

    // People are not equally busy: a few on-call leads approve most releases.
    private Actor Person() => People[(int)(People.Length * Math.Pow(_random.NextDouble(), 1.8))];

    private T Pick<T>(T[] items) => items[_random.Next(items.Length)];

    private T Pick<T>(T[] items, double[] weights)
    {
        var r = _random.NextDouble() * weights.Sum();
        for (var i = 0; i < items.Length; i++)
            if ((r -= weights[i]) < 0) return items[i];
        return items[^1];
    }

    private sealed class AppFlow
    {
        public DeploymentState? State;
        public Guid Id;
        public string Version = "1.0.0";
        public string Target = "green";
        public int Approvals;
        public int RequiredApprovals;
    }
}
