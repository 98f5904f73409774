using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Audit;

/// <summary>
/// One append-only audit record. <see cref="Sequence"/>, <see cref="PreviousHash"/> and <see cref="Hash"/> are assigned
/// when the event is saved (under a lock, in the same transaction as the change it describes); PostgreSQL refuses
/// UPDATE and DELETE on the table.
/// </summary>
public sealed class AuditEvent
{
    public long Sequence { get; set; }
    public DateTimeOffset OccurredAt { get; set; }
    public string Actor { get; set; } = "";
    public ActorKind ActorKind { get; set; }
    public string? SourceIp { get; set; }
    public string Action { get; set; } = "";
    public string? Application { get; set; }
    public Guid? DeploymentId { get; set; }
    public string? BeforeState { get; set; }
    public string? AfterState { get; set; }
    public string? Reason { get; set; }

    /// <summary>Free-form JSON text (kept as text, not jsonb, so the hashed bytes are exactly what is stored).</summary>
    public string? Details { get; set; }

    public string PreviousHash { get; set; } = "";
    public string Hash { get; set; } = "";

    public static AuditEvent Create(Actor actor, string action, DateTimeOffset at, string? application = null,
        Guid? deploymentId = null, string? before = null, string? after = null, string? reason = null, string? details = null) => new()
    {
        // PostgreSQL keeps microseconds; truncating here makes the hashed value equal to the stored one.
        OccurredAt = AuditHash.TruncateToMicroseconds(at),
        Actor = actor.Name,
        ActorKind = actor.Kind,
        SourceIp = actor.SourceIp,
        Action = action,
        Application = application,
        DeploymentId = deploymentId,
        BeforeState = before,
        AfterState = after,
        Reason = reason,
        Details = actor.Via is null ? details : WithVia(details, actor.Via),
    };

    /// <summary>
    /// The means (the API token's name) goes into the details, so the actor stays the person the two-person rule counts
    /// and the hashed record format is unchanged.
    /// </summary>
    private static string WithVia(string? details, string via)
    {
        var node = details is null ? new System.Text.Json.Nodes.JsonObject() : System.Text.Json.Nodes.JsonNode.Parse(details);
        if (node is not System.Text.Json.Nodes.JsonObject obj) return details!;
        obj["viaToken"] = via;
        return obj.ToJsonString();
    }
}

/// <summary>Implemented by aggregates whose transitions record audit events; the DbContext saves them with the change.</summary>
public interface IRecordsAuditEvents
{
    IReadOnlyList<AuditEvent> PendingAuditEvents { get; }
    void ClearPendingAuditEvents();
}
