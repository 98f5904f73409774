using System.Text.Json.Serialization;

namespace ControlPlane.Core.Notifications;

/// <summary>
/// "Something about this application or deployment changed." Published through PostgreSQL NOTIFY in the same transaction
/// as the change, so every replica (and the worker) hears it exactly when the change becomes visible.
/// </summary>
public sealed record ChangeNotice(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("application")] string? Application,
    [property: JsonPropertyName("deploymentId")] Guid? DeploymentId)
{
    public const string Channel = "controlplane_changes";
    public const string ApplicationKind = "application";
    public const string DeploymentKind = "deployment";
    public const string AuditKind = "audit";
}
