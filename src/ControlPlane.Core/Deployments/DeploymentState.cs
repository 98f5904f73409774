namespace ControlPlane.Core.Deployments;

/// <summary>The release flow of PRODUCT.md §3. Persisted and serialized by name.</summary>
public enum DeploymentState
{
    Queued,
    Deploying,
    Verifying,
    AwaitingApproval,
    ReadyToSwitch,
    Switching,
    Monitoring,
    Succeeded,
    Failed,
    Aborted,
    RolledBack,
}

public static class DeploymentStates
{
    /// <summary>States in which a deployment holds its application (at most one per application, enforced by a unique index).</summary>
    public static readonly IReadOnlyList<DeploymentState> InFlight =
    [
        DeploymentState.Queued, DeploymentState.Deploying, DeploymentState.Verifying, DeploymentState.AwaitingApproval,
        DeploymentState.ReadyToSwitch, DeploymentState.Switching, DeploymentState.Monitoring,
    ];

    public static bool IsInFlight(this DeploymentState state) => InFlight.Contains(state);

    public static bool IsTerminal(this DeploymentState state) => !state.IsInFlight();

    /// <summary>Before the router moved: the live slot was never touched, so an abort or failure only cleans up the standby.</summary>
    public static bool IsBeforeSwitch(this DeploymentState state) =>
        state is DeploymentState.Queued or DeploymentState.Deploying or DeploymentState.Verifying
            or DeploymentState.AwaitingApproval or DeploymentState.ReadyToSwitch;
}
