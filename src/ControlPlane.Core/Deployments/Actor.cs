namespace ControlPlane.Core.Deployments;

public enum ActorKind { User, Token, System }

/// <summary>
/// Who did something, and from where — recorded on every audit event. <see cref="Name"/> is the identity the two-person
/// rule counts: the person (for a session, or a token with an owner) or the machine identity (a token without owner, the
/// bootstrap token). <see cref="Via"/> is the means: the name of the API token used, when one was.
/// </summary>
public sealed record Actor(string Name, ActorKind Kind, string? SourceIp = null, string? Via = null)
{
    public static readonly Actor System = new("system", ActorKind.System);

    /// <summary>Whether two identity names are one person ("Alice" and "alice" are).</summary>
    public static bool SameIdentity(string a, string b) => string.Equals(a.Trim(), b.Trim(), StringComparison.OrdinalIgnoreCase);
}
