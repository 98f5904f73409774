using ControlPlane.Core.Audit;
using ControlPlane.Core.Deployments;

namespace ControlPlane.UnitTests.Audit;

public sealed class AuditHashTests
{
    private static readonly DateTimeOffset At = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    private static AuditEvent AnEvent(string actor = "alice", string? reason = "ship it") => new()
    {
        Sequence = 42,
        OccurredAt = At,
        Actor = actor,
        ActorKind = ActorKind.User,
        SourceIp = "10.0.0.7",
        Action = "deployment.approved",
        Application = "shop",
        DeploymentId = Guid.Parse("0195a0c4-0000-7000-8000-000000000001"),
        BeforeState = "AwaitingApproval",
        AfterState = "ReadyToSwitch",
        Reason = reason,
        Details = """{"approvals":1}""",
        PreviousHash = AuditHash.Genesis,
    };

    [Fact]
    public void TruncateToMicroseconds_drops_the_last_tick_digit_and_converts_to_utc()
    {
        var at = new DateTimeOffset(2026, 3, 2, 10, 0, 0, TimeSpan.FromHours(1)).AddTicks(1_234_567);

        var truncated = AuditHash.TruncateToMicroseconds(at);

        Assert.Equal(TimeSpan.Zero, truncated.Offset);
        Assert.Equal(At.AddTicks(1_234_560), truncated);
        Assert.Equal(At.AddTicks(1_234_560).Ticks, truncated.UtcTicks);
    }

    [Fact]
    public void AuditEvent_Create_truncates_the_time_so_the_hash_matches_what_PostgreSQL_stores()
    {
        var e = AuditEvent.Create(new Actor("alice", ActorKind.User), "x", At.AddTicks(19));

        Assert.Equal(At.AddTicks(10), e.OccurredAt);
    }

    [Fact]
    public void Compute_is_deterministic_lower_case_sha256_hex()
    {
        var hash = AuditHash.Compute(AnEvent());

        Assert.Equal(hash, AuditHash.Compute(AnEvent()));
        Assert.Matches("^[0-9a-f]{64}$", hash);
        Assert.NotEqual(AuditHash.Genesis, hash);
    }

    [Theory]
    [InlineData("sequence")]
    [InlineData("occurredAt")]
    [InlineData("actor")]
    [InlineData("actorKind")]
    [InlineData("sourceIp")]
    [InlineData("action")]
    [InlineData("application")]
    [InlineData("deploymentId")]
    [InlineData("beforeState")]
    [InlineData("afterState")]
    [InlineData("reason")]
    [InlineData("details")]
    [InlineData("previousHash")]
    public void Compute_changes_when_any_covered_field_changes(string field)
    {
        var e = AnEvent();
        Action change = field switch
        {
            "sequence" => () => e.Sequence = 43,
            "occurredAt" => () => e.OccurredAt = At.AddTicks(10),
            "actor" => () => e.Actor = "mallory",
            "actorKind" => () => e.ActorKind = ActorKind.Token,
            "sourceIp" => () => e.SourceIp = "10.0.0.8",
            "action" => () => e.Action = "deployment.aborted",
            "application" => () => e.Application = "shop2",
            "deploymentId" => () => e.DeploymentId = null,
            "beforeState" => () => e.BeforeState = "Verifying",
            "afterState" => () => e.AfterState = "Aborted",
            "reason" => () => e.Reason = "ship it!",
            "details" => () => e.Details = """{"approvals":2}""",
            "previousHash" => () => e.PreviousHash = new string('1', 64),
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        var before = AuditHash.Compute(e);

        change();

        Assert.NotEqual(before, AuditHash.Compute(e));
    }

    [Fact]
    public void Compute_ignores_the_stored_hash_itself()
    {
        var e = AnEvent();
        var before = AuditHash.Compute(e);

        e.Hash = before;

        Assert.Equal(before, AuditHash.Compute(e));
    }

    [Fact]
    public void Compute_does_not_let_text_shift_across_a_field_boundary()
    {
        Assert.NotEqual(AuditHash.Compute(AnEvent(actor: "ab", reason: "c")), AuditHash.Compute(AnEvent(actor: "a", reason: "bc")));

        var left = AnEvent();
        left.Action = "deployment.approvedshop";
        left.Application = "";
        var right = AnEvent();
        right.Action = "deployment.approved";
        right.Application = "shop";
        Assert.NotEqual(AuditHash.Compute(left), AuditHash.Compute(right));
    }

    [Fact]
    public void Compute_distinguishes_a_missing_reason_from_an_empty_one()
    {
        Assert.NotEqual(AuditHash.Compute(AnEvent(reason: null)), AuditHash.Compute(AnEvent(reason: "")));
    }

    [Fact]
    public void Compute_hashes_the_same_instant_equally_in_any_offset()
    {
        var utc = AnEvent();
        var local = AnEvent();
        local.OccurredAt = At.ToOffset(TimeSpan.FromHours(-5));

        Assert.Equal(AuditHash.Compute(utc), AuditHash.Compute(local));
    }
}
