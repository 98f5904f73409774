using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>
/// ControlPlane in-process on a fresh, migrated PostgreSQL database of its own, with the demo seeded (real slot processes,
/// the embedded router on a free port) and a known bootstrap admin token. It runs as a production install should: migrations
/// as the database's owner role, everything else as a serving role that owns nothing.
/// </summary>
/// <param name="settings">More configuration for this host (applied last), as an operator would set it.</param>
public sealed class ControlPlaneAppFactory(RoleDatabase database, IReadOnlyDictionary<string, string>? settings = null) : WebApplicationFactory<Program>
{
    public const string AdminToken = "test-bootstrap-admin-token";
    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("cp-it-").FullName;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    public static async Task<ControlPlaneAppFactory> StartAsync(PostgresFixture postgres, IReadOnlyDictionary<string, string>? settings = null)
    {
        var factory = new ControlPlaneAppFactory(await postgres.CreateDatabaseWithRolesAsync("api"), settings);
        _ = factory.Services; // builds and starts the host: migrations, demo seeding, router attach
        return factory;
    }

    /// <summary>The superuser: what tests use to look behind ControlPlane's back (and to tamper like a DBA).</summary>
    public string ConnectionString => database.SuperUser;

    /// <summary>The role ControlPlane serves as.</summary>
    public RoleDatabase Database => database;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // What `dotnet run` and a deployment give: a host in Development once hid that 400s named no field in production.
        builder.UseEnvironment("Production");
        builder.UseSetting("ConnectionStrings:ControlPlane", database.Serving);
        builder.UseSetting("ConnectionStrings:ControlPlaneMigrations", database.Owner);
        builder.UseSetting("ControlPlane:DataDirectory", DataDirectory);
        builder.UseSetting("ControlPlane:Demo:Enabled", "true");
        builder.UseSetting("ControlPlane:Demo:RouterPort", "0");
        builder.UseSetting("ControlPlane:Bootstrap:AdminToken", AdminToken);
        // Slot and router processes outlive ControlPlane by default; a test host stops what it started.
        builder.UseSetting("ControlPlane:Runtime:StopOnShutdown", "true");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) builder.UseSetting(key, value);
    }

    public HttpClient ClientWithToken(string? token)
    {
        var client = CreateClient();
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public HttpClient Admin() => ClientWithToken(AdminToken);

    /// <summary>Creates an API token with the role through the API, as an admin would.</summary>
    public Task<HttpClient> ClientWithRoleAsync(string name, string role) => ClientWithTokenAsync(new { name, role });

    /// <summary>Creates an API token from this request body (<c>{name, role, owner?, expiresAt?}</c>) and a client using it.</summary>
    public async Task<HttpClient> ClientWithTokenAsync(object body)
    {
        using var admin = Admin();
        var response = await admin.PostAsJsonAsync("/api/v1/tokens", body);
        response.EnsureSuccessStatusCode();
        var created = await response.Content.ReadFromJsonAsync<JsonElement>();
        return ClientWithToken(created.GetProperty("token").GetString());
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { }
    }
}
