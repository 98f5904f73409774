using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Core.Notifications.Webhooks;

public static class WebhookServices
{
    public static IServiceCollection AddWebhooks(this IServiceCollection services)
    {
        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section)
            .Configure<IConfiguration>((o, c) => o.PublicUrl ??= c["ControlPlane:PublicUrl"])
            .Validate(o => o.Timeout > TimeSpan.Zero && o.FirstRetryDelay > TimeSpan.Zero && o.MaxRetryDelay >= o.FirstRetryDelay && o.RetryFor > TimeSpan.Zero,
                "ControlPlane:Webhooks: Timeout, FirstRetryDelay and RetryFor must be positive and MaxRetryDelay at least FirstRetryDelay.")
            .Validate(o => o.PublicUrl is null || Uri.TryCreate(o.PublicUrl, UriKind.Absolute, out var u) && u.Scheme is "http" or "https",
                "ControlPlane:PublicUrl must be an absolute http(s) URL.")
            .ValidateOnStart();
        // No redirects: a receiver must not steer the POST (and its signature) to another host than the one allowed.
        services.AddHttpClient(WebhookDispatcher.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(2) });
        services.AddScoped<WebhookService>();
        services.AddScoped<WebhookDispatcher>();
        return services;
    }
}
