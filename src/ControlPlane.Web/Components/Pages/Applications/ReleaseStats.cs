using ControlPlane.Core.Deployments;

namespace ControlPlane.Web.Components.Pages.Applications;

/// <summary>DORA-style numbers computed from an application's deployments.</summary>
public sealed record ReleaseStats(int Releases, int Switched, int Failures, double FailureRate, TimeSpan? MeanTimeToRestore)
{
    /// <summary>Production was affected: failed once the switch had started, or rolled back.</summary>
    public static bool IsFailure(Deployment d) =>
        d.State == DeploymentState.RolledBack ||
        (d.State == DeploymentState.Failed && d.Steps.Any(s => s.Name == StepNames.Switch && s.StartedAt is not null));

    public static ReleaseStats Of(IReadOnlyCollection<Deployment> deployments)
    {
        var switched = deployments.Count(d => d.Steps.Any(s => s.Name == StepNames.Switch && s.StartedAt is not null));
        var failures = deployments.Count(IsFailure);
        // Time to restore: from the switch (traffic on the bad version) to the rollback that ended it.
        var restores = deployments
            .Where(d => d.State == DeploymentState.RolledBack && d.FinishedAt is not null)
            .Select(d => (Switch: d.Steps.FirstOrDefault(s => s.Name == StepNames.Switch)?.FinishedAt, End: d.FinishedAt!.Value))
            .Where(x => x.Switch is not null)
            .Select(x => x.End - x.Switch!.Value)
            .ToList();
        return new(deployments.Count, switched, failures, switched == 0 ? 0 : (double)failures / switched,
            restores.Count == 0 ? null : TimeSpan.FromTicks((long)restores.Average(t => t.Ticks)));
    }
}
