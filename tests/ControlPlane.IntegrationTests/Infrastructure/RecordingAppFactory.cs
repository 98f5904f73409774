using System.Net.Http.Headers;
using System.Net.Http.Json;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Routing;
using ControlPlane.UnitTests.TestSupport;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>
/// ControlPlane in-process on its own migrated database, with the real worker loop, and a recording router and deployer
/// (kind <c>recording</c>) that log every call — so tests assert on what the reconcile loop asked of the providers.
/// </summary>
public sealed class RecordingAppFactory : WebApplicationFactory<Program>
{
    public const string AdminToken = "recording-admin-token";
    private readonly string _connectionString;
    private readonly double _rollbackWaitSeconds;
    private readonly IReadOnlyDictionary<string, string?> _settings;

    private RecordingAppFactory(string connectionString, double rollbackWaitSeconds, IReadOnlyDictionary<string, string?>? settings = null,
        string? dataDirectory = null)
    {
        DataDirectory = dataDirectory ?? Directory.CreateTempSubdirectory("cp-rec-").FullName;
        _connectionString = connectionString;
        _rollbackWaitSeconds = rollbackWaitSeconds;
        _settings = settings ?? new Dictionary<string, string?>();
        Router = new RecordingRouter(Log, "recording");
        Deployer = new RecordingDeployer(Log, Router, "recording");
    }

    public CallLog Log { get; } = new();
    public RecordingRouter Router { get; }
    public RecordingDeployer Deployer { get; }
    public string DataDirectory { get; }

    /// <summary>Leave the data directory (audit key) behind on dispose, for a restart on the same state.</summary>
    public bool KeepDataDirectory { get; set; }

    public string ConnectionString => _connectionString;

    public static async Task<RecordingAppFactory> StartAsync(PostgresFixture postgres, double rollbackWaitSeconds = 10)
    {
        var factory = new RecordingAppFactory(await postgres.CreateDatabaseAsync("rec"), rollbackWaitSeconds);
        _ = factory.Services;
        return factory;
    }

    /// <summary>On a given database (e.g. again after a stop, as a restart would) and with further configuration.</summary>
    public static RecordingAppFactory Start(string connectionString, IReadOnlyDictionary<string, string?>? settings = null, string? dataDirectory = null)
    {
        var factory = new RecordingAppFactory(connectionString, 10, settings, dataDirectory);
        _ = factory.Services;
        return factory;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production"); // error answers as users get them
        builder.UseSetting("ConnectionStrings:ControlPlane", _connectionString);
        builder.UseSetting("ControlPlane:DataDirectory", DataDirectory);
        builder.UseSetting("ControlPlane:Demo:Enabled", "false");
        builder.UseSetting("ControlPlane:Bootstrap:AdminToken", AdminToken);
        builder.UseSetting("ControlPlane:RollbackWaitSeconds", _rollbackWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<ITrafficRouter>(Router);
            services.AddSingleton<ISlotDeployer>(Deployer);
        });
    }

    public HttpClient Admin()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }

    /// <summary>Registers an application on the recording providers (no checks) and waits until the runtime brought it up.</summary>
    public async Task RegisterAsync(HttpClient admin, string name, object policy)
    {
        var response = await admin.PostAsJsonAsync("/api/v1/applications", new
        {
            name,
            router = new { kind = "recording", settings = new { } },
            deployer = new { kind = "recording", settings = new { } },
            checks = Array.Empty<object>(),
            policy,
            initialVersion = "1.0.0",
        }, TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        await admin.PublicUrlAsync(name);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (!KeepDataDirectory) try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { }
    }
}
