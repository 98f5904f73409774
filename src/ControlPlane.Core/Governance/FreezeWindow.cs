using System.Globalization;
using System.Text.Json;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Governance;

public enum FreezeKind { OneOff, Weekly }

/// <summary>One occurrence of a freeze: the window that blocks, and the absolute instants it covers.</summary>
public sealed record FreezeOccurrence(FreezeWindow Window, DateTimeOffset Start, DateTimeOffset End)
{
    /// <summary>The end in the window's own time zone, for messages ("until 2026-12-27 00:00 Europe/Berlin").</summary>
    public string EndText => FreezeWindow.Describe(End, Window.TimeZone);
}

/// <summary>
/// A period in which no new release may start and no forward switch may happen (rollbacks and aborts stay allowed).
/// Either a one-off range or a weekly schedule (days, a local start time and a duration) in a named IANA time zone.
/// <see cref="ApplicationId"/> null makes it global (every application).
/// </summary>
public sealed class FreezeWindow : IRecordsAuditEvents
{
    public const int MaxDurationMinutes = 7 * 24 * 60;

    private readonly List<AuditEvent> _pendingAuditEvents = [];

    private FreezeWindow() { }

    public Guid Id { get; private set; }
    public Guid? ApplicationId { get; private set; }
    public string? ApplicationName { get; private set; }
    public string Name { get; private set; } = "";
    public string? Reason { get; private set; }
    public FreezeKind Kind { get; private set; }
    public string TimeZone { get; private set; } = "UTC";

    /// <summary>One-off range (absolute instants).</summary>
    public DateTimeOffset? StartsAt { get; private set; }
    public DateTimeOffset? EndsAt { get; private set; }

    /// <summary>Weekly schedule: on these days, at this local time, for this long (elapsed time, so a DST change does not stretch it).</summary>
    public List<DayOfWeek> DaysOfWeek { get; private set; } = [];
    public TimeOnly? StartTime { get; private set; }
    public int? DurationMinutes { get; private set; }

    public string CreatedBy { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }

    public IReadOnlyList<AuditEvent> PendingAuditEvents => _pendingAuditEvents;
    public void ClearPendingAuditEvents() => _pendingAuditEvents.Clear();

    public TimeZoneInfo Zone => TimeZoneInfo.FindSystemTimeZoneById(TimeZone);

    public static FreezeWindow OneOff(Application? app, string name, string? reason, string timeZone, DateTimeOffset start, DateTimeOffset end,
        Actor by, DateTimeOffset now) =>
        Created(new FreezeWindow
        {
            Kind = FreezeKind.OneOff, StartsAt = start.ToUniversalTime(), EndsAt = end.ToUniversalTime(),
        }, app, name, reason, timeZone, by, now);

    public static FreezeWindow Weekly(Application? app, string name, string? reason, string timeZone, IEnumerable<DayOfWeek> days,
        TimeOnly startTime, int durationMinutes, Actor by, DateTimeOffset now) =>
        Created(new FreezeWindow
        {
            // Days Monday first, as people read a week.
            Kind = FreezeKind.Weekly, DaysOfWeek = [.. days.Distinct().OrderBy(d => ((int)d + 6) % 7)], StartTime = startTime, DurationMinutes = durationMinutes,
        }, app, name, reason, timeZone, by, now);

    private static FreezeWindow Created(FreezeWindow w, Application? app, string name, string? reason, string timeZone, Actor by, DateTimeOffset now)
    {
        w.Id = Guid.CreateVersion7(now);
        w.ApplicationId = app?.Id;
        w.ApplicationName = app?.Name;
        w.Name = name;
        w.Reason = reason;
        w.TimeZone = timeZone;
        w.CreatedBy = by.Name;
        w.CreatedAt = now;
        w._pendingAuditEvents.Add(AuditEvent.Create(by, "freeze.created", now, app?.Name, after: w.Summary, reason: reason,
            details: JsonSerializer.Serialize(new { id = w.Id, name, kind = w.Kind.ToString(), timeZone, scope = app is null ? "global" : "application" })));
        return w;
    }

    /// <summary>Records the deletion; the caller removes the row in the same save.</summary>
    public void Delete(Actor by, DateTimeOffset now) =>
        _pendingAuditEvents.Add(AuditEvent.Create(by, "freeze.deleted", now, ApplicationName, before: Summary,
            details: JsonSerializer.Serialize(new { id = Id, name = Name, kind = Kind.ToString(), timeZone = TimeZone })));

    /// <summary>The schedule in words, e.g. "Sat, Sun 22:00 for 10 h (Europe/Berlin)".</summary>
    public string Summary => Kind == FreezeKind.OneOff
        ? $"'{Name}' from {Describe(StartsAt!.Value, TimeZone)} to {Describe(EndsAt!.Value, TimeZone)}"
        : $"'{Name}' every {string.Join(", ", DaysOfWeek.Select(d => d.ToString()[..3]))} at {StartTime:HH\\:mm} for {DescribeDuration(DurationMinutes!.Value)} ({TimeZone})";

    /// <summary>The occurrence covering <paramref name="now"/> (the one ending last when several overlap), or null.</summary>
    public FreezeOccurrence? ActiveAt(DateTimeOffset now) =>
        Occurrences(now.AddMinutes(-MaxDurationMinutes - 24 * 60), now.AddDays(1))
            .Where(o => o.Start <= now && now < o.End)
            .OrderByDescending(o => o.End)
            .FirstOrDefault();

    /// <summary>The first occurrence starting after <paramref name="now"/>, looking at most 8 days ahead (one-off: any time ahead).</summary>
    public FreezeOccurrence? NextAfter(DateTimeOffset now) =>
        Kind == FreezeKind.OneOff
            ? StartsAt > now ? new(this, StartsAt!.Value, EndsAt!.Value) : null
            : Occurrences(now, now.AddDays(8)).Where(o => o.Start > now).OrderBy(o => o.Start).FirstOrDefault();

    /// <summary>Occurrences whose local start day lies between the local days of <paramref name="from"/> and <paramref name="to"/>.</summary>
    public IEnumerable<FreezeOccurrence> Occurrences(DateTimeOffset from, DateTimeOffset to)
    {
        if (Kind == FreezeKind.OneOff)
        {
            if (StartsAt < to && EndsAt > from) yield return new(this, StartsAt!.Value, EndsAt!.Value);
            yield break;
        }
        var zone = Zone;
        var day = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(from, zone).DateTime).AddDays(-1);
        var last = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(to, zone).DateTime).AddDays(1);
        for (; day <= last; day = day.AddDays(1))
        {
            if (!DaysOfWeek.Contains(day.DayOfWeek)) continue;
            var start = ToInstant(day.ToDateTime(StartTime!.Value), zone);
            yield return new(this, start, start.AddMinutes(DurationMinutes!.Value));
        }
    }

    /// <summary>
    /// A local wall-clock time to an instant. A time skipped by a DST change (e.g. 02:30 on a spring-forward night) starts
    /// when the clocks jump, i.e. it moves forward by the gap; a time that happens twice (fall back) takes the first one.
    /// </summary>
    public static DateTimeOffset ToInstant(DateTime local, TimeZoneInfo zone)
    {
        local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        if (zone.IsInvalidTime(local))
        {
            // Read the wall clock with the offset in force before the gap: 02:30 in a 02:00→03:00 gap becomes 03:30.
            var offsetBefore = zone.GetUtcOffset(local.AddHours(-6));
            return new DateTimeOffset(local, offsetBefore).ToOffset(zone.GetUtcOffset(new DateTimeOffset(local, offsetBefore)));
        }
        if (zone.IsAmbiguousTime(local))
        {
            var offsets = zone.GetAmbiguousTimeOffsets(local);
            var first = offsets.Max(); // the earlier instant has the larger (daylight) offset
            return new DateTimeOffset(local, first);
        }
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    public static string Describe(DateTimeOffset instant, string timeZone)
    {
        var zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        var local = TimeZoneInfo.ConvertTime(instant, zone);
        return local.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " " + timeZone;
    }

    public static string DescribeDuration(int minutes) =>
        minutes % 1440 == 0 ? $"{minutes / 1440} d" : minutes % 60 == 0 ? $"{minutes / 60} h" : minutes >= 60 ? $"{minutes / 60} h {minutes % 60} min" : $"{minutes} min";
}
