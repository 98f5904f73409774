using ControlPlane.Core.Deployments;
using ControlPlane.Core.Security;
using static ControlPlane.UnitTests.TestSupport.Builders;

namespace ControlPlane.UnitTests.Security;

public sealed class ApiTokenTests
{
    private static readonly Actor Admin = new("admin", ActorKind.User, "10.0.0.1");

    [Fact]
    public void Issue_returns_a_prefixed_url_safe_secret_and_stores_only_its_hash()
    {
        var (token, secret) = ApiToken.Issue("ci", Role.ReleaseManager, Admin, T0);

        Assert.StartsWith("cp_", secret, StringComparison.Ordinal);
        Assert.Matches("^cp_[A-Za-z0-9_-]{43}$", secret);
        Assert.Equal(ApiToken.Hash(secret), token.TokenHash);
        Assert.NotEqual(secret, token.TokenHash);
        Assert.Equal(("ci", Role.ReleaseManager, "admin", T0), (token.Name, token.Role, token.CreatedBy, token.CreatedAt));
    }

    [Fact]
    public void Issue_makes_a_different_secret_each_time()
    {
        var (_, first) = ApiToken.Issue("ci", Role.Viewer, Admin, T0);
        var (_, second) = ApiToken.Issue("ci", Role.Viewer, Admin, T0);

        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Hash_is_lower_case_sha256_of_the_utf8_secret()
    {
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ApiToken.Hash("abc"));
    }

    [Fact]
    public void The_audit_event_names_the_token_but_never_contains_the_secret()
    {
        var (token, secret) = ApiToken.Issue("ci", Role.ReleaseManager, Admin, T0, T0.AddDays(30));

        var e = Assert.Single(token.PendingAuditEvents);
        Assert.Equal(("token.created", "admin", "ReleaseManager"), (e.Action, e.Actor, e.AfterState));
        Assert.Contains("\"name\":\"ci\"", e.Details, StringComparison.Ordinal);
        var randomPart = secret["cp_".Length..];
        string?[] fields = [e.Actor, e.SourceIp, e.Action, e.Application, e.BeforeState, e.AfterState, e.Reason, e.Details];
        Assert.All(fields, f => Assert.DoesNotContain(randomPart, f ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public void A_token_without_expiry_stays_usable()
    {
        var (token, _) = ApiToken.Issue("ci", Role.Viewer, Admin, T0);

        Assert.True(token.IsUsable(T0.AddYears(5)));
    }

    [Fact]
    public void An_expired_token_is_not_usable_from_its_expiry_on()
    {
        var expires = T0.AddDays(1);
        var (token, _) = ApiToken.Issue("ci", Role.Viewer, Admin, T0, expires);

        Assert.True(token.IsUsable(expires.AddTicks(-1)));
        Assert.False(token.IsUsable(expires));
        Assert.False(token.IsUsable(expires.AddDays(1)));
    }

    [Fact]
    public void TouchLastUsed_writes_at_most_once_a_minute()
    {
        var (token, _) = ApiToken.Issue("ci", Role.Viewer, Admin, T0);

        Assert.True(token.TouchLastUsed(T0.AddSeconds(5)));
        Assert.False(token.TouchLastUsed(T0.AddSeconds(64)));
        Assert.Equal(T0.AddSeconds(5), token.LastUsedAt);

        Assert.True(token.TouchLastUsed(T0.AddSeconds(65)));
        Assert.Equal(T0.AddSeconds(65), token.LastUsedAt);
    }

    [Fact]
    public void An_owned_token_records_its_owner_and_its_audit_events_name_the_person_with_the_token_as_the_means()
    {
        var (token, _) = ApiToken.Issue("alice-ci", Role.ReleaseManager, Admin, T0, owner: "alice");
        Assert.Equal("alice", token.Owner);
        Assert.Contains("\"owner\":\"alice\"", Assert.Single(token.PendingAuditEvents).Details);

        var viaToken = ControlPlane.Core.Audit.AuditEvent.Create(new Actor("alice", ActorKind.Token, "10.0.0.2", Via: "alice-ci"), "deployment.approved", T0,
            details: "{\"approvals\":1}");
        Assert.Equal(("alice", ActorKind.Token), (viaToken.Actor, viaToken.ActorKind));
        Assert.Equal("{\"approvals\":1,\"viaToken\":\"alice-ci\"}", viaToken.Details);
        Assert.Equal("{\"viaToken\":\"alice-ci\"}",
            ControlPlane.Core.Audit.AuditEvent.Create(new Actor("alice", ActorKind.Token, Via: "alice-ci"), "x", T0).Details);
    }
}
