using System.Security.Claims;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using ControlPlane.Web.Security;

namespace ControlPlane.UnitTests.Components;

public sealed class SignedInUserTests
{
    [Fact]
    public void What_a_signed_in_person_may_do_is_exactly_the_permissions_table()
    {
        foreach (var role in Enum.GetValues<Role>())
        foreach (var permission in Enum.GetValues<Permission>())
            Assert.Equal(Permissions.Allows(role, permission), new SignedInUser("x", role, null).Can(permission));
    }

    [Fact]
    public void The_cookie_claims_become_the_audit_actor_with_the_sign_in_ip()
    {
        var principal = new ClaimsPrincipal(new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, "oscar"), new Claim(ClaimTypes.Role, "OnCall"), new Claim(DevSignIn.SourceIpClaim, "10.1.2.3")],
            DevSignIn.CookieScheme));
        var user = SignedInUser.From(principal);
        Assert.Equal(Role.OnCall, user.Role);
        Assert.Equal(new Actor("oscar", ActorKind.User, "10.1.2.3"), user.ToActor());
    }

    [Fact]
    public void Nobody_signed_in_may_do_nothing()
    {
        var user = SignedInUser.From(new ClaimsPrincipal(new ClaimsIdentity()));
        Assert.All(Enum.GetValues<Permission>(), p => Assert.False(user.Can(p)));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("   ")]
    [InlineData("bad\nname")]
    public void The_sign_in_refuses_an_unusable_name(string? name) => Assert.NotNull(DevSignIn.NameError(name));

    [Fact]
    public void The_sign_in_accepts_a_plain_name() => Assert.Null(DevSignIn.NameError("Rita Release"));
}
