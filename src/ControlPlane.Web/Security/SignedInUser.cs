using System.Security.Claims;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;

namespace ControlPlane.Web.Security;

/// <summary>
/// The person using a dashboard circuit, as the session said when the page opened. What they may do is asked of
/// <see cref="Permissions"/>, nowhere else — and re-checked against the database at the moment of every action
/// (<see cref="ActingAuthority"/>), because a circuit outlives a demotion.
/// </summary>
public sealed record SignedInUser(string Name, Role? Role, string? SourceIp)
{
    public static readonly SignedInUser Anonymous = new("anonymous", null, null);

    /// <summary>The session principal the page was opened with (null for <see cref="Anonymous"/> and hand-built users).</summary>
    public ClaimsPrincipal? Principal { get; init; }

    public bool Can(Permission permission) => Role is { } r && Permissions.Allows(r, permission);

    /// <summary>The audit actor for what this person does through the dashboard.</summary>
    public Actor ToActor() => new(Name, ActorKind.User, string.IsNullOrEmpty(SourceIp) ? null : SourceIp);

    public static SignedInUser From(ClaimsPrincipal principal)
    {
        if (principal.Identity is not { IsAuthenticated: true, Name: { } name }) return Anonymous;
        var role = Enum.TryParse<Role>(principal.FindFirst(ClaimTypes.Role)?.Value, out var r) ? r : (Role?)null;
        return new(name, role, principal.FindFirst(DevSignIn.SourceIpClaim)?.Value) { Principal = principal };
    }
}
