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

    /// <summary>
    /// Whether a view of <paramref name="application"/> (null: of all applications) should refresh. Audit notices ride along
    /// with every save and never change what these views show; a notice without an application (the listener's reconnect)
    /// concerns everyone.
    /// </summary>
    public bool Concerns(string? application) =>
        Kind != AuditKind && (application is null || Application is null || Application == application);
}
