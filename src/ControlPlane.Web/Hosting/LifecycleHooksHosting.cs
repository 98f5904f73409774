using ControlPlane.Core.Hooks;

namespace ControlPlane.Web.Hosting;

public static class LifecycleHooksHosting
{
    public const string SchemaDatabasesSection = "ControlPlane:SchemaDatabases";

    /// <summary>
    /// Hook runner, hook steps and the named schema databases (<c>ControlPlane:SchemaDatabases:&lt;name&gt;</c>). ControlPlane's own
    /// roles and database are refused as schema databases at start.
    /// </summary>
    public static IServiceCollection AddLifecycleHooks(this IServiceCollection services, IConfiguration configuration, ResolvedDatabase database)
    {
        var configured = configuration.GetSection(SchemaDatabasesSection).GetChildren().Select(c => KeyValuePair.Create(c.Key, c.Value));
        services.AddSingleton(new SchemaDatabases(configured, [database.DataSource.ConnectionString, database.MigrationsDataSource?.ConnectionString]));
        // No redirects: a hook's URL is what the Admin registered, not where it points on.
        services.AddHttpClient(HookRunner.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromSeconds(30) });
        services.AddSingleton<KubernetesJobHook>();
        services.AddSingleton<HookProcessRecords>();
        services.AddSingleton<HookRunner>();
        services.AddScoped<LifecycleSteps>();
        return services;
    }
}
