namespace ControlPlane.Core.Deployments;

public enum StepState { Pending, Running, Succeeded, Failed, Skipped }

/// <summary>One stage of a deployment's timeline (deploy, verify, approval, switch, monitor).</summary>
public sealed class DeploymentStep
{
    private DeploymentStep() { }

    internal DeploymentStep(string name, int order)
    {
        Id = Guid.CreateVersion7();
        Name = name;
        Order = order;
    }

    public Guid Id { get; private set; }
    public Guid DeploymentId { get; private set; }
    public string Name { get; private set; } = "";
    public int Order { get; private set; }
    public StepState State { get; internal set; }
    public DateTimeOffset? StartedAt { get; internal set; }
    public DateTimeOffset? FinishedAt { get; internal set; }
    public string? Message { get; internal set; }

    /// <summary>A hook step's captured output (truncated), exit code or HTTP status, and how many times it was started.</summary>
    public string? Output { get; internal set; }
    public int? ExitStatus { get; internal set; }
    public int Attempts { get; internal set; }

    internal void PlaceAt(int order) => Order = order;
}

public static class StepNames
{
    public const string Deploy = "deploy";
    public const string Verify = "verify";
    public const string Approval = "approval";
    public const string Switch = "switch";
    public const string Monitor = "monitor";

    public static readonly IReadOnlyList<string> All = [Deploy, Verify, Approval, Switch, Monitor];
}

/// <summary>One person's (or token's) approval of a deployment.</summary>
public sealed class Approval
{
    private Approval() { }

    internal Approval(string by, DateTimeOffset at, string? comment, DateTimeOffset? expiresAt = null)
    {
        Id = Guid.CreateVersion7();
        By = by;
        At = at;
        Comment = comment;
        ExpiresAt = expiresAt;
    }

    public Guid Id { get; private set; }
    public Guid DeploymentId { get; private set; }
    public string By { get; private set; } = "";
    public DateTimeOffset At { get; private set; }
    public string? Comment { get; private set; }

    /// <summary>When this approval stops counting (null = it does not expire).</summary>
    public DateTimeOffset? ExpiresAt { get; private set; }

    public bool IsValidAt(DateTimeOffset now) => ExpiresAt is not { } until || now < until;

    internal void Renew(DateTimeOffset at, DateTimeOffset? expiresAt, string? comment)
    {
        At = at;
        ExpiresAt = expiresAt;
        Comment = comment;
    }
}
