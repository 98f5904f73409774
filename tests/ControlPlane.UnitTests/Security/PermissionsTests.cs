using ControlPlane.Core.Security;

namespace ControlPlane.UnitTests.Security;

public sealed class PermissionsTests
{
    [Theory]
    [InlineData(Permission.StartRelease)]
    [InlineData(Permission.Approve)]
    [InlineData(Permission.Switch)]
    [InlineData(Permission.Abort)]
    [InlineData(Permission.Rollback)]
    [InlineData(Permission.RegisterApplication)]
    [InlineData(Permission.ManageTokens)]
    public void Auditor_cannot_change_anything(Permission permission) =>
        Assert.False(Permissions.Allows(Role.Auditor, permission));

    [Fact]
    public void Auditor_reads_the_audit_trail_and_applications()
    {
        Assert.True(Permissions.Allows(Role.Auditor, Permission.ReadAudit));
        Assert.True(Permissions.Allows(Role.Auditor, Permission.ViewApplications));
    }

    [Fact]
    public void OnCall_may_break_glass_but_not_release()
    {
        Assert.True(Permissions.Allows(Role.OnCall, Permission.Rollback));
        Assert.True(Permissions.Allows(Role.OnCall, Permission.Abort));
        Assert.False(Permissions.Allows(Role.OnCall, Permission.Approve));
        Assert.False(Permissions.Allows(Role.OnCall, Permission.Switch));
        Assert.False(Permissions.Allows(Role.OnCall, Permission.StartRelease));
    }

    [Fact]
    public void Viewer_may_only_view_applications()
    {
        var allowed = Enum.GetValues<Permission>().Where(p => Permissions.Allows(Role.Viewer, p));

        Assert.Equal([Permission.ViewApplications], allowed);
    }

    [Fact]
    public void ReleaseManager_runs_releases_but_does_not_administer()
    {
        Permission[] expected = [Permission.ViewApplications, Permission.StartRelease, Permission.Approve, Permission.Switch, Permission.Abort, Permission.Rollback];

        Assert.Equal(expected, Enum.GetValues<Permission>().Where(p => Permissions.Allows(Role.ReleaseManager, p)));
    }

    [Fact]
    public void Every_permission_is_granted_at_least_to_Admin()
    {
        Assert.All(Enum.GetValues<Permission>(), p => Assert.Contains(Role.Admin, Permissions.RolesFor(p)));
    }

    [Fact]
    public void PolicyName_is_prefixed_with_permission()
    {
        Assert.Equal("permission:Rollback", Permissions.PolicyName(Permission.Rollback));
    }

    [Theory]
    [InlineData(Role.Admin, Role.Admin, true)]
    [InlineData(Role.Admin, Role.Auditor, true)]
    [InlineData(Role.ReleaseManager, Role.OnCall, true)]
    [InlineData(Role.ReleaseManager, Role.Viewer, true)]
    [InlineData(Role.ReleaseManager, Role.Admin, false)]
    [InlineData(Role.ReleaseManager, Role.Auditor, false)] // reads the audit trail, which a ReleaseManager may not
    [InlineData(Role.OnCall, Role.Auditor, false)]
    [InlineData(Role.Auditor, Role.OnCall, false)]
    [InlineData(Role.Viewer, Role.ReleaseManager, false)]
    public void A_role_covers_another_only_when_it_holds_every_one_of_its_permissions(Role holder, Role role, bool covers)
    {
        Assert.Equal(covers, Permissions.Covers(holder, role));
    }
}
