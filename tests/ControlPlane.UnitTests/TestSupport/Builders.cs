using ControlPlane.Core.Checks;
using ControlPlane.Core.Deployments;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.UnitTests.TestSupport;

public static class People
{
    public static readonly Actor Requester = new("rita", ActorKind.User, "10.0.0.7");
    public static readonly Actor Alice = new("alice", ActorKind.User);
    public static readonly Actor Bob = new("bob", ActorKind.User);
    public static readonly Actor Carol = new("carol", ActorKind.User);
    public static readonly Actor OnCall = new("oscar", ActorKind.User);
}

public static class Builders
{
    public static readonly DateTimeOffset T0 = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    public static ApplicationBuilder AnApplication() => new();
    public static DeploymentBuilder ADeployment() => new();
}

public sealed class ApplicationBuilder
{
    private string _name = "shop";
    private ReleasePolicy _policy = new();
    private string _version = "1.0.0";
    private Slot _live = Slot.Blue;
    private DateTimeOffset _at = Builders.T0;

    public ApplicationBuilder Named(string name) { _name = name; return this; }
    public ApplicationBuilder WithPolicy(Func<ReleasePolicy, ReleasePolicy> change) { _policy = change(_policy); return this; }
    public ApplicationBuilder Running(string version, Slot on) { _version = version; _live = on; return this; }
    public ApplicationBuilder RegisteredAt(DateTimeOffset at) { _at = at; return this; }

    public Application Build() =>
        Application.Register(_name, "embedded", "{}", "process", "{}", [new HttpCheck { Name = "health", Path = "/healthz" }],
            _policy, _version, _live, "/", People.Requester, _at);
}

/// <summary>
/// Reaches a state only through the real transitions (never by setting State). Each transition happens one minute
/// after the previous one on <see cref="Clock"/>. Audit events of the way there are cleared, so a test sees only its own.
/// </summary>
public sealed class DeploymentBuilder
{
    public static readonly TimeSpan MonitoringWindow = TimeSpan.FromSeconds(60);

    private readonly ApplicationBuilder _app = new();
    private DeploymentState _state = DeploymentState.Queued;
    private Actor _requester = People.Requester;
    private bool _keepAudit;

    public FakeTimeProvider Clock { get; } = new(Builders.T0);

    public DeploymentBuilder InState(DeploymentState state) { _state = state; return this; }
    public DeploymentBuilder WithPolicy(Func<ReleasePolicy, ReleasePolicy> change) { _app.WithPolicy(change); return this; }
    public DeploymentBuilder RequestedBy(Actor by) { _requester = by; return this; }
    public DeploymentBuilder KeepingAuditTrail() { _keepAudit = true; return this; }

    public Deployment Build() => BuildWithApplication().Deployment;

    public (Application Application, Deployment Deployment) BuildWithApplication()
    {
        var app = _app.RegisteredAt(Clock.GetUtcNow()).Build();
        var d = Deployment.Request(app, "2.0.0", _requester, "weekly release", Clock.GetUtcNow());
        Walk(d, _state);
        if (!_keepAudit)
        {
            app.ClearPendingAuditEvents();
            d.ClearPendingAuditEvents();
        }
        return (app, d);
    }

    private DateTimeOffset Tick()
    {
        Clock.Advance(TimeSpan.FromMinutes(1));
        return Clock.GetUtcNow();
    }

    private void Walk(Deployment d, DeploymentState target)
    {
        switch (target)
        {
            case DeploymentState.Queued:
                return;
            case DeploymentState.Deploying:
                d.StartDeploying(Tick());
                return;
            case DeploymentState.Verifying:
                Walk(d, DeploymentState.Deploying);
                d.Deployed("slot green ready", Tick());
                return;
            case DeploymentState.AwaitingApproval:
                if (d.RequiredApprovals == 0)
                    throw new InvalidOperationException("AwaitingApproval needs a policy with RequiredApprovals > 0.");
                Walk(d, DeploymentState.Verifying);
                d.Verified("health: 200", Tick());
                return;
            case DeploymentState.ReadyToSwitch:
                Walk(d, DeploymentState.Verifying);
                d.Verified("health: 200", Tick());
                Actor[] approvers = [People.Alice, People.Bob, People.Carol];
                for (var i = 0; i < d.RequiredApprovals; i++) d.Approve(approvers[i], "looks good", Tick());
                return;
            case DeploymentState.Switching:
                Walk(d, DeploymentState.ReadyToSwitch);
                d.BeginSwitch(People.Alice, Tick());
                return;
            case DeploymentState.Monitoring:
                Walk(d, DeploymentState.Switching);
                d.Switched("router on green; data plane answers 2.0.0", Tick(), MonitoringWindow);
                return;
            case DeploymentState.Succeeded:
                Walk(d, DeploymentState.Monitoring);
                d.Succeed("no breach", Tick());
                return;
            case DeploymentState.Failed:
                Walk(d, DeploymentState.Verifying);
                d.Fail("Verification failed", Tick());
                return;
            case DeploymentState.Aborted:
                Walk(d, DeploymentState.Deploying);
                d.Abort(People.Alice, "wrong build", Tick());
                return;
            case DeploymentState.RolledBack:
                Walk(d, DeploymentState.Monitoring);
                d.RolledBack(Actor.System, "breach", automatic: true, Tick());
                return;
            default:
                throw new ArgumentOutOfRangeException(nameof(target), target, null);
        }
    }
}
