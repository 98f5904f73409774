namespace ControlPlane.Core.Notifications.Webhooks;

/// <summary>The events a webhook can subscribe to, and which audit actions raise them.</summary>
public static class WebhookEvents
{
    public const string All = "*";
    public const string ApprovalNeeded = "approval.needed";
    public const string Switched = "deployment.switched";
    public const string RolledBack = "deployment.rolled-back";
    public const string Failed = "deployment.failed";
    public const string Succeeded = "deployment.succeeded";
    public const string Aborted = "deployment.aborted";
    public const string FreezeOverridden = "freeze.overridden";
    public const string SlotUnhealthy = "slot.unhealthy";

    /// <summary>Sent by "send test" only; nobody subscribes to it.</summary>
    public const string Ping = "ping";

    public static readonly IReadOnlyList<string> Subscribable =
        [ApprovalNeeded, Switched, RolledBack, Failed, Succeeded, Aborted, FreezeOverridden, SlotUnhealthy];

    /// <summary>The webhook event an audit action raises, or null. The audit action names are the record of truth.</summary>
    public static string? ForAuditAction(string action) => action switch
    {
        "deployment.awaiting-approval" or "deployment.approval-expired" => ApprovalNeeded,
        // Monitoring starts once the flip is done and the data plane shows the new version.
        "deployment.monitoring" => Switched,
        "deployment.rolled-back" or "deployment.auto-rolled-back" => RolledBack,
        "deployment.failed" or "deployment.switch-failed" => Failed,
        "deployment.succeeded" => Succeeded,
        "deployment.aborted" => Aborted,
        "freeze.overridden" => FreezeOverridden,
        "slot.live-unhealthy" => SlotUnhealthy,
        _ => null,
    };
}
