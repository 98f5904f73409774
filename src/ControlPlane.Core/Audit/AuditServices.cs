using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Core.Audit;

public static class AuditServices
{
    /// <summary>The audit trail's services: queries, verification, the checkpoint key, file and publisher.</summary>
    public static IServiceCollection AddAuditTrail(this IServiceCollection services)
    {
        services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.Section)
            .Validate(o => o.CheckpointInterval > TimeSpan.Zero, "ControlPlane:Audit:CheckpointInterval must be positive.")
            .ValidateOnStart();
        services.AddSingleton(sp => AuditCheckpointKey.LoadOrCreate(
            sp.GetRequiredService<IOptions<AuditOptions>>().Value.KeyPath(sp.GetRequiredService<IOptions<ControlPlaneOptions>>().Value),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Audit")));
        services.AddSingleton(sp => new AuditCheckpointFile(
            sp.GetRequiredService<IOptions<AuditOptions>>().Value.FilePath(sp.GetRequiredService<IOptions<ControlPlaneOptions>>().Value)));
        services.AddSingleton<AuditCheckpointPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditCheckpointPublisher>());
        services.AddScoped<AuditQuery>();
        services.AddScoped<AuditTrailReader>();
        services.AddScoped<AuditVerifier>();
        services.AddSingleton<AuditChainStatus>();
        return services;
    }
}
