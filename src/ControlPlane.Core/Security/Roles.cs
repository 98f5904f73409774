namespace ControlPlane.Core.Security;

public enum Role { Admin, ReleaseManager, OnCall, Auditor, Viewer }

/// <summary>Every mutating or privileged action, one name each; <see cref="Permissions"/> says which roles may do it.</summary>
public enum Permission
{
    ViewApplications,
    RegisterApplication,
    StartRelease,
    Approve,
    Switch,
    Abort,
    Rollback,
    ReadAudit,
    ManageTokens,
    ManageFreezeWindows,
    OverrideFreeze,
    ManageUsers,
    ManageWebhooks,
    OverrideSchemaGuard,
}

/// <summary>The role rules, in one place: API endpoints, pages and the hub all ask this table.</summary>
public static class Permissions
{
    private static readonly Dictionary<Permission, Role[]> Allowed = new()
    {
        [Permission.ViewApplications] = [Role.Admin, Role.ReleaseManager, Role.OnCall, Role.Auditor, Role.Viewer],
        [Permission.RegisterApplication] = [Role.Admin],
        [Permission.StartRelease] = [Role.Admin, Role.ReleaseManager],
        [Permission.Approve] = [Role.Admin, Role.ReleaseManager],
        [Permission.Switch] = [Role.Admin, Role.ReleaseManager],
        [Permission.Abort] = [Role.Admin, Role.ReleaseManager, Role.OnCall],
        [Permission.Rollback] = [Role.Admin, Role.ReleaseManager, Role.OnCall],
        [Permission.ReadAudit] = [Role.Admin, Role.Auditor],
        [Permission.ManageTokens] = [Role.Admin],
        [Permission.ManageFreezeWindows] = [Role.Admin],
        [Permission.OverrideFreeze] = [Role.Admin],
        [Permission.ManageUsers] = [Role.Admin],
        [Permission.ManageWebhooks] = [Role.Admin],
        [Permission.OverrideSchemaGuard] = [Role.Admin],
    };

    public static IReadOnlyList<Role> RolesFor(Permission permission) => Allowed[permission];

    public static bool Allows(Role role, Permission permission) => Allowed[permission].Contains(role);

    /// <summary>
    /// Whether everything <paramref name="role"/> may do, <paramref name="holder"/> may do too. Roles are not a ladder
    /// (an Auditor reads the audit trail, an OnCall may not), so "not above the owner's role" means "no permission the
    /// owner lacks".
    /// </summary>
    public static bool Covers(Role holder, Role role) =>
        Allowed.Values.All(roles => !roles.Contains(role) || roles.Contains(holder));

    /// <summary>The authorization policy name for a permission (ASP.NET Core policies are looked up by string).</summary>
    public static string PolicyName(Permission permission) => "permission:" + permission;
}
