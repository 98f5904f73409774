using System.Net.Http.Json;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>Registers a copy of the demo (real slot processes, embedded router) with a policy chosen by the test.</summary>
public static class TestApplications
{
    /// <param name="routerPort">The embedded router's listenPort; a fresh free port when null (0 lets the router pick one, kept from then on).</param>
    /// <param name="checks">The application's checks; one HTTP check of <c>/</c> when null.</param>
    public static async Task<string> RegisterDemoCopyAsync(HttpClient admin, string name, object policy, int? routerPort = null, object? checks = null,
        object? hooks = null)
    {
        var dll = Core.Deployers.DemoAppLocator.Find() ?? throw new InvalidOperationException("The demo app is not built.");
        var response = await admin.PostAsJsonAsync("/api/v1/applications", new
        {
            name,
            router = new { kind = "embedded", settings = new { listenAddress = "127.0.0.1", listenPort = routerPort ?? Core.Deployers.LoopbackPorts.PickForLater() } },
            deployer = new
            {
                kind = "process",
                settings = new
                {
                    command = Core.Deployers.DemoAppLocator.DotnetHost(),
                    arguments = new[] { dll, "--urls", "http://127.0.0.1:{port}", "--version", "{version}", "--slot", "{slot}", "--app", "{app}" },
                    bluePort = Core.Deployers.LoopbackPorts.PickForLater(),
                    greenPort = Core.Deployers.LoopbackPorts.PickForLater(),
                    healthPath = "/healthz",
                    startTimeoutSeconds = 30,
                },
            },
            checks = checks ?? new[] { new { name = "home", path = "/" } },
            policy,
            initialVersion = "1.0.0",
            hooks,
        }, TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var publicUrl = await admin.PublicUrlAsync(name);
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        return publicUrl;
    }
}
