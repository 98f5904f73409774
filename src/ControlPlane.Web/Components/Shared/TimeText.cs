using System.Globalization;

namespace ControlPlane.Web.Components.Shared;

/// <summary>Times as the dashboard shows them: always with their zone (UTC), and "4 min ago" where recency matters.</summary>
public static class TimeText
{
    public static string Utc(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    public static string Ago(DateTimeOffset t, DateTimeOffset now)
    {
        var span = now - t;
        if (span < TimeSpan.FromMinutes(1)) return "just now";
        if (span < TimeSpan.FromHours(1)) return $"{(int)span.TotalMinutes} min ago";
        if (span < TimeSpan.FromDays(1)) return $"{(int)span.TotalHours} h ago";
        return $"{(int)span.TotalDays} d ago";
    }
}
