namespace ControlPlane.Core.Deployments;

/// <summary>Per-application release rules (PRODUCT.md §2 "Policy").</summary>
public sealed record ReleasePolicy
{
    /// <summary>Approvals from distinct people before the switch; 0 skips the approval step.</summary>
    public int RequiredApprovals { get; init; } = 1;

    /// <summary>Whether the requester may approve their own release.</summary>
    public bool AllowSelfApproval { get; init; }

    /// <summary>Approve automatically after this many seconds in AwaitingApproval (null = never).</summary>
    public int? AutoPromoteAfterSeconds { get; init; }

    /// <summary>How long an approval counts; one that lapses before the switch must be given again (null = never expires).</summary>
    public int? ApprovalValidForSeconds { get; init; }

    /// <summary>Switch at once when approved, instead of waiting for the switch action.</summary>
    public bool SwitchOnApproval { get; init; }

    /// <summary>How long checks keep running against the new live slot before the release counts as succeeded.</summary>
    public int MonitoringWindowSeconds { get; init; } = 60;

    public int MonitoringIntervalSeconds { get; init; } = 5;

    /// <summary>How long the old slot stays warm after success, for instant rollback.</summary>
    public int HoldWindowSeconds { get; init; } = 900;

    /// <summary>
    /// Roll back automatically when the live slot of a succeeded release stops serving while the previous slot is still warm.
    /// Off by default: a person is shown the failure and offered the rollback.
    /// </summary>
    public bool RollbackWhenLiveSlotFails { get; init; }

    public IEnumerable<SettingsError> Validate(string prefix)
    {
        if (RequiredApprovals is < 0 or > 10)
            yield return new($"{prefix}.requiredApprovals", "must be between 0 and 10");
        if (AutoPromoteAfterSeconds is < 0 or > 604800)
            yield return new($"{prefix}.autoPromoteAfterSeconds", "must be between 0 and 604800 (one week)");
        if (ApprovalValidForSeconds is < 1 or > 2592000)
            yield return new($"{prefix}.approvalValidForSeconds", "must be between 1 and 2592000 (30 days), or null for approvals that never expire");
        if (MonitoringWindowSeconds is < 0 or > 86400)
            yield return new($"{prefix}.monitoringWindowSeconds", "must be between 0 and 86400");
        if (MonitoringIntervalSeconds is < 1 or > 3600)
            yield return new($"{prefix}.monitoringIntervalSeconds", "must be between 1 and 3600");
        if (HoldWindowSeconds is < 0 or > 604800)
            yield return new($"{prefix}.holdWindowSeconds", "must be between 0 and 604800 (one week)");
    }
}
