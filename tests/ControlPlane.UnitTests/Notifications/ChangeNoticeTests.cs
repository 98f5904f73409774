using ControlPlane.Core.Notifications;

namespace ControlPlane.UnitTests.Notifications;

public sealed class ChangeNoticeTests
{
    private static ChangeNotice Notice(string kind, string? app) => new(kind, app, null);

    [Fact]
    public void Audit_notices_refresh_no_application_view() =>
        Assert.False(Notice(ChangeNotice.AuditKind, null).Concerns(null) || Notice(ChangeNotice.AuditKind, null).Concerns("shop"));

    [Fact]
    public void A_view_of_one_application_ignores_the_others()
    {
        Assert.True(Notice(ChangeNotice.DeploymentKind, "shop").Concerns("shop"));
        Assert.False(Notice(ChangeNotice.DeploymentKind, "billing").Concerns("shop"));
        Assert.True(Notice(ChangeNotice.ApplicationKind, "billing").Concerns(null)); // the overview shows every application
    }

    [Fact]
    public void The_listeners_reconnect_notice_refreshes_every_view() =>
        Assert.True(Notice(ChangeNotice.ApplicationKind, null).Concerns("shop"));
}
