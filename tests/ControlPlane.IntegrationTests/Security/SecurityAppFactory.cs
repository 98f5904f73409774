using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.IntegrationTests.Infrastructure;
using ControlPlane.Web.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// ControlPlane in-process (no demo) on a fresh database, with a configured initial admin password, a bootstrap token and
/// every log line captured, so tests can sign people in through the real sign-in form and search the logs for secrets.
/// </summary>
public sealed partial class SecurityAppFactory(string connectionString, IReadOnlyDictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    public const string AdminToken = "security-test-bootstrap-token";
    public const string InitialAdminPassword = "initial-admin-secret-password";
    public const string WhoAmIPath = "/_test/whoami";

    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("cp-sec-").FullName;
    public CapturingLoggerProvider Logs { get; } = new();

    public static async Task<SecurityAppFactory> StartAsync(PostgresFixture postgres, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var factory = new SecurityAppFactory(await postgres.CreateDatabaseAsync("sec"), settings);
        _ = factory.Services;
        return factory;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // Error answers and headers as production gives them (a Development host answers bad input differently).
        builder.UseEnvironment("Production");
        builder.UseSetting("ConnectionStrings:ControlPlane", connectionString);
        builder.UseSetting("ControlPlane:DataDirectory", DataDirectory);
        builder.UseSetting("ControlPlane:Demo:Enabled", "false");
        builder.UseSetting("ControlPlane:Bootstrap:AdminToken", AdminToken);
        // Slot and router processes outlive ControlPlane by default; a test host stops what it started.
        builder.UseSetting("ControlPlane:Runtime:StopOnShutdown", "true");
        builder.UseSetting("ControlPlane:Identity:InitialAdminPassword", InitialAdminPassword);
        builder.UseSetting("Logging:LogLevel:Default", "Debug");
        builder.UseSetting("Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command", "Information");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            builder.UseSetting(key, value);
        builder.ConfigureLogging(l => l.AddProvider(Logs));
        builder.ConfigureServices(s => s.AddTransient<Microsoft.AspNetCore.Hosting.IStartupFilter, WhoAmIFilter>());
    }

    /// <summary>
    /// Test-only: what the dashboard's pages would decide for the session cookie of this request — the principal goes
    /// through the same SignedInUser → Permissions path as every page and component.
    /// </summary>
    private sealed class WhoAmIFilter : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (context.Request.Path != WhoAmIPath) { await nextMiddleware(context); return; }
                var result = await context.AuthenticateAsync(AccountSignIn.CookieScheme);
                var user = SignedInUser.From(result.Principal ?? new());
                await context.Response.WriteAsJsonAsync(new
                {
                    user.Name,
                    Role = user.Role?.ToString(),
                    Allowed = Enum.GetValues<ControlPlane.Core.Security.Permission>().Where(user.Can).Select(p => p.ToString()).ToArray(),
                });
            });
            next(app);
        };
    }

    public HttpClient Api(string? token = AdminToken)
    {
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public async Task<(Guid Id, string Secret)> CreateTokenAsync(string name, string role)
    {
        using var admin = Api();
        var response = await admin.PostAsJsonAsync("/api/v1/tokens", new { name, role }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var json = await response.JsonAsync();
        return (json.GetProperty("id").GetGuid(), json.GetProperty("token").GetString()!);
    }

    public async Task CreateUserAsync(string userName, string role, string password)
    {
        using var admin = Api();
        var response = await admin.PostAsJsonAsync("/api/v1/users", new { userName, role, password }, TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create user → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
    }

    /// <summary>A browser-like client (cookies, no automatic redirects) that has posted the real sign-in form.</summary>
    public async Task<(HttpClient Client, HttpResponseMessage Response)> SignInAsync(string userName, string password, string returnUrl = "/")
    {
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var response = await PostSignInAsync(client, userName, password, returnUrl);
        return (client, response);
    }

    public static async Task<HttpResponseMessage> PostSignInAsync(HttpClient client, string userName, string password, string returnUrl = "/")
    {
        var page = await client.GetStringAsync("/signin", TestContext.Current.CancellationToken);
        var token = AntiforgeryField().Match(page).Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(token), "the sign-in page has no antiforgery token");
        return await client.PostAsync("/account/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["userName"] = userName, ["password"] = password, ["returnUrl"] = returnUrl, ["__RequestVerificationToken"] = token,
        }), TestContext.Current.CancellationToken);
    }

    /// <summary>All audit events with this action, newest first (through the API, as an auditor would read them).</summary>
    public async Task<List<JsonElement>> AuditAsync(string action)
    {
        using var admin = Api();
        var page = await admin.GetJsonAsync($"/api/v1/audit?action={action}&limit=200");
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Keeps every formatted log line (with its exception) so tests can search them.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose() { }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}
