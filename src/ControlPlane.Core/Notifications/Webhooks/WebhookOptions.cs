namespace ControlPlane.Core.Notifications.Webhooks;

/// <summary>Bound from <c>ControlPlane:Webhooks</c>; <see cref="PublicUrl"/> also from <c>ControlPlane:PublicUrl</c>.</summary>
public sealed class WebhookOptions
{
    public const string Section = "ControlPlane:Webhooks";

    /// <summary>
    /// When not empty, webhooks may only target these hosts (exact names, or <c>*.example.com</c> for its subdomains),
    /// checked when a webhook is created and again before every send. Empty: any host (webhooks are Admin-only).
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>The dashboard's address as people reach it, for links to the release page in messages.</summary>
    public string? PublicUrl { get; set; }

    /// <summary>How long one POST may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The wait before the first retry; it doubles after every failed attempt up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long after the event a delivery is still retried; then it is marked failed (a person can redeliver).</summary>
    public TimeSpan RetryFor { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Whether this replica sends deliveries (every replica may: claims use row locks and a lease).</summary>
    public bool DeliveryEnabled { get; set; } = true;

    public bool AllowsHost(string host) =>
        AllowedHosts.Count == 0 || AllowedHosts.Any(pattern =>
            pattern.StartsWith("*.", StringComparison.Ordinal)
                ? host.EndsWith(pattern[1..], StringComparison.OrdinalIgnoreCase)
                : string.Equals(host, pattern, StringComparison.OrdinalIgnoreCase));

    /// <summary>Exponential backoff: FirstRetryDelay × 2^(attempts−1), at most MaxRetryDelay.</summary>
    public TimeSpan RetryDelay(int attempts) =>
        TimeSpan.FromTicks((long)Math.Min(MaxRetryDelay.Ticks, FirstRetryDelay.Ticks * Math.Pow(2, Math.Max(0, attempts - 1))));
}
