using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Governance;
using ControlPlane.UnitTests.TestSupport;

namespace ControlPlane.UnitTests.Governance;

public sealed class FreezeWindowTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly Application Shop = Builders.AnApplication().Build();

    private static FreezeWindow Weekly(string zone, string start, int minutes, params string[] days) =>
        new FreezeWindowSpec("weekend", "no releases at the weekend", "weekly", zone, null, null, days, start, minutes).Build(Shop, People.Alice, Now);

    private static FreezeWindow OneOff(string zone, string start, string end) =>
        new FreezeWindowSpec("holidays", null, "oneOff", zone, start, end, null, null, null).Build(Shop, People.Alice, Now);

    private static DateTimeOffset Utc(int y, int m, int d, int h, int min = 0) => new(y, m, d, h, min, 0, TimeSpan.Zero);

    [Fact]
    public void A_one_off_range_is_active_from_its_start_until_just_before_its_end()
    {
        var w = OneOff("UTC", "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z");

        Assert.Null(w.ActiveAt(Utc(2026, 12, 23, 23, 59)));
        Assert.Equal((Utc(2026, 12, 24, 0), Utc(2026, 12, 27, 0)), (w.ActiveAt(Utc(2026, 12, 24, 0))!.Start, w.ActiveAt(Utc(2026, 12, 24, 0))!.End));
        Assert.NotNull(w.ActiveAt(Utc(2026, 12, 26, 23, 59)));
        Assert.Null(w.ActiveAt(Utc(2026, 12, 27, 0)));
        Assert.Equal(Utc(2026, 12, 24, 0), w.NextAfter(Now)!.Start);
    }

    [Fact]
    public void A_one_off_range_without_an_offset_is_read_in_the_windows_time_zone()
    {
        var w = OneOff("America/New_York", "2026-12-24T00:00", "2026-12-26T09:30");

        Assert.Equal(Utc(2026, 12, 24, 5), w.StartsAt);   // EST is UTC-5
        Assert.Equal(Utc(2026, 12, 26, 14, 30), w.EndsAt);
        Assert.Equal("2026-12-26 09:30 America/New_York", w.ActiveAt(Utc(2026, 12, 25, 0))!.EndText);
    }

    [Fact]
    public void A_weekly_window_crossing_midnight_blocks_the_early_hours_of_the_next_day()
    {
        // Fridays 22:00 for 10 h in Berlin (CET, UTC+1 in February): Friday 21:00Z to Saturday 07:00Z.
        var w = Weekly("Europe/Berlin", "22:00", 600, "Friday");

        Assert.Null(w.ActiveAt(Utc(2026, 2, 13, 20, 59)));
        var active = w.ActiveAt(Utc(2026, 2, 14, 6, 30)); // Saturday 07:30 Berlin
        Assert.NotNull(active);
        Assert.Equal((Utc(2026, 2, 13, 21), Utc(2026, 2, 14, 7)), (active.Start, active.End));
        Assert.Equal("2026-02-14 08:00 Europe/Berlin", active.EndText);
        Assert.Null(w.ActiveAt(Utc(2026, 2, 14, 7)));
        Assert.Null(w.ActiveAt(Utc(2026, 2, 19, 12))); // Thursday
    }

    [Fact]
    public void A_sunday_night_window_wraps_into_monday()
    {
        var w = Weekly("UTC", "23:00", 120, "Sun");

        Assert.NotNull(w.ActiveAt(Utc(2026, 3, 2, 0, 30))); // Monday 00:30
        Assert.Null(w.ActiveAt(Utc(2026, 3, 2, 1, 0)));
        Assert.Equal(Utc(2026, 3, 1, 23), w.NextAfter(Now)!.Start);
    }

    [Fact]
    public void Weekly_windows_follow_the_local_clock_across_a_DST_change()
    {
        // Daily at 09:00 in Berlin: 08:00Z before the spring change (29 March 2026), 07:00Z after it.
        var w = Weekly("Europe/Berlin", "09:00", 60, "Saturday", "Sunday", "Monday");

        Assert.Equal(Utc(2026, 3, 28, 8), w.ActiveAt(Utc(2026, 3, 28, 8, 30))!.Start);
        Assert.Equal(Utc(2026, 3, 29, 7), w.ActiveAt(Utc(2026, 3, 29, 7, 30))!.Start);
        Assert.Null(w.ActiveAt(Utc(2026, 3, 29, 8, 30)));
        Assert.Equal(Utc(2026, 3, 30, 7), w.NextAfter(Utc(2026, 3, 29, 12))!.Start);
    }

    [Fact]
    public void A_start_time_skipped_by_spring_forward_starts_when_the_clocks_jump()
    {
        // 29 March 2026, Berlin: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist; it is read as 03:30 CEST (01:30Z).
        var w = Weekly("Europe/Berlin", "02:30", 60, "Sunday");

        Assert.Null(w.ActiveAt(Utc(2026, 3, 29, 1, 15)));
        var active = w.ActiveAt(Utc(2026, 3, 29, 1, 45));
        Assert.NotNull(active);
        Assert.Equal((Utc(2026, 3, 29, 1, 30), Utc(2026, 3, 29, 2, 30)), (active.Start, active.End));
    }

    [Fact]
    public void A_start_time_repeated_by_fall_back_takes_its_first_occurrence_and_lasts_the_elapsed_duration()
    {
        // 25 October 2026, Berlin: 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET).
        var w = Weekly("Europe/Berlin", "02:30", 90, "Sunday");

        var active = w.ActiveAt(Utc(2026, 10, 25, 0, 45));
        Assert.NotNull(active);
        Assert.Equal((Utc(2026, 10, 25, 0, 30), Utc(2026, 10, 25, 2, 0)), (active.Start, active.End));
        Assert.Null(w.ActiveAt(Utc(2026, 10, 25, 2, 0)));
    }

    [Fact]
    public void Of_several_active_windows_the_one_ending_last_decides()
    {
        var shortOne = OneOff("UTC", "2026-03-01T00:00:00Z", "2026-03-01T13:00:00Z");
        var longOne = OneOff("UTC", "2026-03-01T11:00:00Z", "2026-03-02T00:00:00Z");

        var active = FreezeCalendar.ActiveAmong([shortOne, longOne], Now);

        Assert.Same(longOne, active!.Window);
        Assert.Contains("frozen by 'holidays' until 2026-03-02 00:00 UTC", FreezeCalendar.BlockedMessage("shop", active, "New releases are"));
    }

    [Fact]
    public void Creation_is_audited_with_the_schedule_in_words()
    {
        var w = Weekly("Europe/Berlin", "22:00", 600, "Sat", "sunday");

        var e = Assert.Single(w.PendingAuditEvents);
        Assert.Equal(("freeze.created", "alice", "shop"), (e.Action, e.Actor, e.Application));
        Assert.Equal("'weekend' every Sat, Sun at 22:00 for 10 h (Europe/Berlin)", e.AfterState);
    }

    public static TheoryData<FreezeWindowSpec, string, string> Invalid => new()
    {
        { new("x", null, "weekly", "Mars/Olympus", null, null, ["Monday"], "09:00", 60), "timeZone", "not a known time zone" },
        { new("x", null, "oneOff", "UTC", "2026-03-05T10:00:00Z", "2026-03-05T09:00:00Z", null, null, null), "end", "must be after start" },
        { new("x", null, "oneOff", "UTC", "2026-02-05T10:00:00Z", "2026-02-05T11:00:00Z", null, null, null), "end", "must be in the future" },
        { new("x", null, "oneOff", "UTC", "yesterday", "2026-03-05T09:00:00Z", null, null, null), "start", "not an ISO 8601" },
        { new("x", null, "weekly", "UTC", null, null, ["Monday"], "09:00", 0), "durationMinutes", "between 1 and 10080" },
        { new("x", null, "weekly", "UTC", null, null, ["Monday"], "09:00", 10081), "durationMinutes", "between 1 and 10080" },
        { new("x", null, "weekly", "UTC", null, null, ["Funday"], "09:00", 60), "daysOfWeek[0]", "not a day of the week" },
        { new("x", null, "weekly", "UTC", null, null, [], "09:00", 60), "daysOfWeek", "at least one day" },
        { new("x", null, "weekly", "UTC", null, null, ["Monday"], "25:00", 60), "startTime", "not a time of day" },
        { new("", null, "weekly", "UTC", null, null, ["Monday"], "09:00", 60), "name", "is required" },
        { new("x", null, "monthly", "UTC", null, null, null, null, null), "kind", "must be 'oneOff'" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_windows_are_refused_naming_the_field(FreezeWindowSpec spec, string field, string message)
    {
        var ex = Assert.Throws<ValidationException>(() => spec.Build(Shop, People.Alice, Now));

        Assert.Contains(ex.Errors, e => e.Field == field && e.Message.Contains(message, StringComparison.Ordinal));
    }
}
