namespace ControlPlane.Core.Deployments;

public enum ActorKind { User, Token, System }

/// <summary>Who did something, and from where — recorded on every audit event.</summary>
public sealed record Actor(string Name, ActorKind Kind, string? SourceIp = null)
{
    public static readonly Actor System = new("system", ActorKind.System);
}
