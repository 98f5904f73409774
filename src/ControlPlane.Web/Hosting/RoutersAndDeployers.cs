using ControlPlane.Core.Deployers;
using ControlPlane.Core.Kubernetes;
using ControlPlane.Core.Routing;
using ControlPlane.Core.Routing.Aws;

namespace ControlPlane.Web.Hosting;

/// <summary>
/// Every router kind (embedded, nginx, kubernetes, aws-alb) and deployer kind (process, kubernetes, external) ControlPlane
/// offers. Applications pick theirs by name at registration; the release flow only sees the interfaces.
/// </summary>
public static class RoutersAndDeployers
{
    public static IServiceCollection AddRoutersAndDeployers(this IServiceCollection services)
    {
        services.AddSingleton<DataPlaneProbe>(sp => new DataPlaneProbe(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<EmbeddedRouter>();
        services.AddSingleton<ITrafficRouter>(sp => sp.GetRequiredService<EmbeddedRouter>());
        services.AddSingleton<ITrafficRouter, NginxRouter>();
        // Kubernetes: Service selector router and Deployment-per-slot deployer (kubeconfig or in-cluster service account).
        services.AddSingleton<IKubernetesClientFactory>(_ => new KubernetesClientFactory());
        services.AddSingleton<ITrafficRouter>(sp => new KubernetesRouter(sp.GetRequiredService<IKubernetesClientFactory>(),
            sp.GetRequiredService<DataPlaneProbe>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<KubernetesRouter>>()));
        services.AddSingleton<ISlotDeployer>(sp => new KubernetesDeployer(sp.GetRequiredService<IKubernetesClientFactory>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<KubernetesDeployer>>()));
        services.AddSingleton<ProcessDeployer>();
        services.AddSingleton<ISlotDeployer>(sp => sp.GetRequiredService<ProcessDeployer>());
        // AWS Application Load Balancer router (thin ELBv2 Query client on AWSSDK.Core credentials) and the external deployer.
        services.AddHttpClient(ElbV2Client.HttpClientName);
        services.AddSingleton<IAwsCredentialsSource, AwsSdkCredentialsSource>();
        services.AddSingleton<AwsAlbRouter>();
        services.AddSingleton<ITrafficRouter>(sp => sp.GetRequiredService<AwsAlbRouter>());
        services.AddHttpClient(ExternalDeployer.HttpClientName);
        services.AddSingleton<ExternalDeployer>();
        services.AddSingleton<ISlotDeployer>(sp => sp.GetRequiredService<ExternalDeployer>());
        return services;
    }
}
