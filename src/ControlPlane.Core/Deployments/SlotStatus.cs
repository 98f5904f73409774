namespace ControlPlane.Core.Deployments;

public enum SlotRunState { Stopped, Starting, Running, Failed }

/// <summary>What ControlPlane knows of one slot of an application.</summary>
public sealed class SlotStatus
{
    public string? Version { get; set; }
    public SlotRunState State { get; set; } = SlotRunState.Stopped;
    public bool Healthy { get; set; }
    public DateTimeOffset? ObservedAt { get; set; }
    public string? Message { get; set; }
}
