using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.E2ETests.Infrastructure;

/// <summary>
/// ControlPlane served by Kestrel on a real loopback port, so a real browser can reach it. The primary instance seeds the
/// demo (real slot processes, the embedded router on a free port); a <see cref="Replica"/> shares the database only.
/// </summary>
public sealed class DashboardServer : WebApplicationFactory<Program>
{
    public const string AdminToken = "e2e-bootstrap-admin-token";
    public const string InitialAdminPassword = "e2e-initial-admin-password";

    private readonly string _connectionString;
    private readonly bool _replica;
    private readonly IReadOnlyDictionary<string, string?> _settings;

    private DashboardServer(string connectionString, bool replica, IReadOnlyDictionary<string, string?>? settings = null)
    {
        _connectionString = connectionString;
        _replica = replica;
        _settings = settings ?? new Dictionary<string, string?>();
        UseKestrel(0);
    }

    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("cp-e2e-").FullName;
    public Uri BaseAddress { get; private set; } = default!;
    public string ConnectionString => _connectionString;

    public static DashboardServer Start(string connectionString, IReadOnlyDictionary<string, string?>? settings = null) =>
        Started(new DashboardServer(connectionString, replica: false, settings));

    /// <summary>
    /// A second, complete ControlPlane on the same database. The primary holds the runtime leadership (slot processes,
    /// the embedded router, the deployment worker), so this one serves the dashboard and the API and stands by.
    /// </summary>
    public static DashboardServer Replica(string connectionString) => Started(new DashboardServer(connectionString, replica: true));

    private static DashboardServer Started(DashboardServer server)
    {
        server.StartServer();
        var addresses = server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        server.BaseAddress = new Uri(addresses.First());
        return server;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // Production, as users and containers run it: Development would hide missing static assets and detailed-error leaks.
        builder.UseEnvironment("Production");
        builder.UseSetting("urls", "http://127.0.0.1:0");
        builder.UseSetting("ConnectionStrings:ControlPlane", _connectionString);
        builder.UseSetting("ControlPlane:DataDirectory", DataDirectory);
        builder.UseSetting("ControlPlane:Demo:Enabled", _replica ? "false" : "true");
        builder.UseSetting("ControlPlane:Demo:RouterPort", "0");
        builder.UseSetting("ControlPlane:Identity:InitialAdminPassword", InitialAdminPassword);
        builder.UseSetting("ControlPlane:Bootstrap:AdminToken", AdminToken);
        // Slot and router processes outlive ControlPlane by default; a test host stops what it started.
        builder.UseSetting("ControlPlane:Runtime:StopOnShutdown", "true");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
    }

    public HttpClient Api(string? token = AdminToken)
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>An API client acting as a named token with a role, created through the API as an admin would.</summary>
    public async Task<HttpClient> ApiAsAsync(string name, string role)
    {
        using var admin = Api();
        var response = await admin.PostAsJsonAsync("/api/v1/tokens", new { name, role }, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        var created = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        return Api(created.GetProperty("token").GetString());
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
