using System.Globalization;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Core.Governance;

/// <summary>Which freeze, if any, blocks an application right now.</summary>
public static class FreezeCalendar
{
    /// <summary>The application's own windows and the global ones.</summary>
    public static Task<List<FreezeWindow>> FreezeWindowsOfAsync(this ControlPlaneDbContext db, Guid applicationId, CancellationToken cancellationToken) =>
        db.FreezeWindows.AsNoTracking().Where(w => w.ApplicationId == applicationId || w.ApplicationId == null)
            .OrderBy(w => w.CreatedAt).ToListAsync(cancellationToken);

    public static async Task<FreezeOccurrence?> ActiveFreezeAsync(this ControlPlaneDbContext db, Guid applicationId, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        ActiveAmong(await db.FreezeWindowsOfAsync(applicationId, cancellationToken), now);

    /// <summary>Of several active windows, the one ending last: it is what decides when releasing is possible again.</summary>
    public static FreezeOccurrence? ActiveAmong(IEnumerable<FreezeWindow> windows, DateTimeOffset now) =>
        windows.Select(w => w.ActiveAt(now)).OfType<FreezeOccurrence>().OrderByDescending(o => o.End).FirstOrDefault();

    public static string BlockedMessage(string application, FreezeOccurrence freeze, string what) =>
        $"{application} is frozen by '{freeze.Window.Name}' until {freeze.EndText} ({freeze.End.UtcDateTime:yyyy-MM-dd HH:mm} UTC)" +
        (freeze.Window.Reason is { } r ? $" — {r}" : "") +
        $". {what} blocked during a freeze; an Admin may override with a reason (freezeOverride), rollbacks and aborts stay allowed.";
}

/// <summary>What a person asks for when creating a freeze window (API or page); <see cref="Build"/> validates every field.</summary>
public sealed record FreezeWindowSpec(
    string? Name, string? Reason, string? Kind, string? TimeZone, string? Start, string? End, IReadOnlyList<string>? DaysOfWeek,
    string? StartTime, int? DurationMinutes)
{
    public FreezeWindow Build(Application? app, Actor by, DateTimeOffset now)
    {
        var errors = new List<SettingsError>();
        if (string.IsNullOrWhiteSpace(Name)) errors.Add(new("name", "is required"));
        else if (Name.Trim().Length > 100) errors.Add(new("name", "must be at most 100 characters"));
        if (Reason?.Length > 2000) errors.Add(new("reason", "must be at most 2000 characters"));
        TimeZoneInfo? zone = null;
        if (string.IsNullOrWhiteSpace(TimeZone)) errors.Add(new("timeZone", "is required (an IANA name such as Europe/Berlin, or UTC)"));
        else if (!TimeZoneInfo.TryFindSystemTimeZoneById(TimeZone, out zone))
            errors.Add(new("timeZone", $"'{TimeZone}' is not a known time zone (use an IANA name such as Europe/Berlin, or UTC)"));

        var kind = Kind?.Trim().ToLowerInvariant() switch
        {
            "oneoff" or "one-off" or "once" => FreezeKind.OneOff,
            "weekly" => FreezeKind.Weekly,
            _ => (FreezeKind?)null,
        };
        if (kind is null) errors.Add(new("kind", "must be 'oneOff' (start and end) or 'weekly' (daysOfWeek, startTime, durationMinutes)"));

        FreezeWindow? window = null;
        if (kind == FreezeKind.OneOff)
        {
            var start = ParseInstant(Start, "start", zone, errors);
            var end = ParseInstant(End, "end", zone, errors);
            if (start is not null && end is not null && end <= start) errors.Add(new("end", "must be after start"));
            if (end is not null && end <= now) errors.Add(new("end", "must be in the future"));
            if (DaysOfWeek is not null || StartTime is not null || DurationMinutes is not null)
                errors.Add(new("kind", "a oneOff window takes start and end, not daysOfWeek, startTime or durationMinutes"));
            if (errors.Count == 0) window = FreezeWindow.OneOff(app, Name!.Trim(), Blank(Reason), TimeZone!, start!.Value, end!.Value, by, now);
        }
        else if (kind == FreezeKind.Weekly)
        {
            var days = new List<DayOfWeek>();
            if (DaysOfWeek is null || DaysOfWeek.Count == 0) errors.Add(new("daysOfWeek", "needs at least one day (Monday … Sunday)"));
            else
                for (var i = 0; i < DaysOfWeek.Count; i++)
                    if (ParseDay(DaysOfWeek[i]) is { } d) days.Add(d);
                    else errors.Add(new($"daysOfWeek[{i}]", $"'{DaysOfWeek[i]}' is not a day of the week (Monday … Sunday, or Mon … Sun)"));
            TimeOnly startTime = default;
            if (string.IsNullOrWhiteSpace(StartTime)) errors.Add(new("startTime", "is required (HH:mm, local time in timeZone)"));
            else if (!TimeOnly.TryParseExact(StartTime, ["HH:mm", "H:mm", "HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.None, out startTime))
                errors.Add(new("startTime", $"'{StartTime}' is not a time of day (HH:mm, e.g. 22:00)"));
            if (DurationMinutes is null) errors.Add(new("durationMinutes", "is required"));
            else if (DurationMinutes is < 1 or > FreezeWindow.MaxDurationMinutes)
                errors.Add(new("durationMinutes", $"must be between 1 and {FreezeWindow.MaxDurationMinutes} (1 minute to 7 days)"));
            if (Start is not null || End is not null) errors.Add(new("kind", "a weekly window takes daysOfWeek, startTime and durationMinutes, not start or end"));
            if (errors.Count == 0)
                window = FreezeWindow.Weekly(app, Name!.Trim(), Blank(Reason), TimeZone!, days, startTime, DurationMinutes!.Value, by, now);
        }
        if (errors.Count > 0 || window is null) throw new ValidationException(errors);
        return window;
    }

    /// <summary>With an offset (2026-12-24T00:00:00Z, …+01:00) an absolute instant; without one, a wall-clock time in the window's zone.</summary>
    private static DateTimeOffset? ParseInstant(string? text, string field, TimeZoneInfo? zone, List<SettingsError> errors)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            errors.Add(new(field, "is required (ISO 8601, e.g. 2026-12-24T00:00 in timeZone, or with an offset)"));
            return null;
        }
        var hasOffset = text.EndsWith('Z') || text.EndsWith('z') || System.Text.RegularExpressions.Regex.IsMatch(text, @"[+-]\d\d:?\d\d$");
        if (hasOffset && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var absolute)) return absolute;
        if (!hasOffset && DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
            return zone is null ? null : FreezeWindow.ToInstant(local, zone);
        errors.Add(new(field, $"'{text}' is not an ISO 8601 date and time"));
        return null;
    }

    private static DayOfWeek? ParseDay(string? text)
    {
        var t = text?.Trim();
        if (string.IsNullOrEmpty(t) || t.Length < 3) return null;
        foreach (var d in Enum.GetValues<DayOfWeek>())
            if (d.ToString().Equals(t, StringComparison.OrdinalIgnoreCase) || d.ToString()[..3].Equals(t, StringComparison.OrdinalIgnoreCase))
                return d;
        return null;
    }

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}

/// <summary>An Admin's decision to act despite a freeze; the reason is recorded as <c>freeze.overridden</c>.</summary>
public sealed record FreezeOverride(string? Reason, bool Authorized);
