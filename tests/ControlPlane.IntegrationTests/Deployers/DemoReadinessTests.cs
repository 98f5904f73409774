using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Core.Deployers;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;
using Xunit;

namespace ControlPlane.IntegrationTests.Deployers;

/// <summary>
/// The demo app's /healthz says ok only once its main routes can answer without a cold start: by then GET /orders's database
/// is open (a pooled session exists before any request reached /orders), and an unreachable database does not hold it back.
/// </summary>
public sealed class DemoReadinessTests(PostgresFixture postgres) : IAsyncDisposable
{
    private static readonly string DemoDll = DemoAppLocator.Find()
        ?? throw new InvalidOperationException("ControlPlane.DemoApp.dll was not found; build the solution first.");

    private readonly string _directory = Directory.CreateTempSubdirectory("cp-demo-readiness-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private Process? _demo;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Healthz_is_ok_only_once_the_orders_database_is_open()
    {
        var database = await postgres.CreateDatabaseWithRolesAsync("demoready");
        // Not pooled: a session of ours left open would pass for the demo app's.
        await using (var owner = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database.Owner) { Pooling = false }.ConnectionString))
        {
            await owner.OpenAsync(Ct);
            await using var create = new NpgsqlCommand("CREATE TABLE orders (id bigserial PRIMARY KEY, customer_name text NOT NULL); INSERT INTO orders (customer_name) VALUES ('Ada')", owner);
            await create.ExecuteNonQueryAsync(Ct);
        }
        var url = StartDemo(database.Owner);

        await WaitForHealthyAsync(url);

        // No request has reached /orders yet: only the warm-up can have opened this session.
        var ownerRole = new NpgsqlConnectionStringBuilder(database.Owner).Username;
        await using (var admin = new NpgsqlConnection(database.SuperUser))
        {
            await admin.OpenAsync(Ct);
            await using var sessions = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = @role", admin);
            sessions.Parameters.AddWithValue("role", ownerRole!);
            Assert.True((long)(await sessions.ExecuteScalarAsync(Ct))! >= 1, "the demo app said healthy before it had opened its orders database");
        }
        using var orders = await _http.GetAsync(new Uri(url, "orders"), Ct);
        Assert.Equal(HttpStatusCode.OK, orders.StatusCode);
        Assert.Contains("Ada", await orders.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task An_unreachable_orders_database_does_not_hold_readiness_back()
    {
        var url = StartDemo($"Host=127.0.0.1;Port={FreePort()};Username=nobody;Password=x;Database=none;Timeout=2");

        await WaitForHealthyAsync(url);

        using var orders = await _http.GetAsync(new Uri(url, "orders"), Ct);
        Assert.Equal(HttpStatusCode.InternalServerError, orders.StatusCode);
    }

    private Uri StartDemo(string connectionString)
    {
        var file = Path.Combine(_directory, "orders.connection");
        File.WriteAllText(file, connectionString);
        var url = new Uri($"http://127.0.0.1:{FreePort()}/");
        var start = new ProcessStartInfo(DemoAppLocator.DotnetHost()) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { DemoDll, "--urls", url.AbsoluteUri.TrimEnd('/'), "--version", "1.0.0", "--slot", "blue", "--app", "demo-shop" })
            start.ArgumentList.Add(argument);
        start.Environment["DEMO_ORDERS_DB_FILE"] = file;
        _demo = Process.Start(start)!;
        _demo.OutputDataReceived += (_, _) => { };
        _demo.ErrorDataReceived += (_, _) => { };
        _demo.BeginOutputReadLine();
        _demo.BeginErrorReadLine();
        return url;
    }

    private async Task WaitForHealthyAsync(Uri url)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.False(_demo!.HasExited, "the demo app exited");
            try
            {
                using var health = await _http.GetAsync(new Uri(url, "healthz"), Ct);
                if (health.StatusCode == HttpStatusCode.OK)
                {
                    Assert.Equal("ok", JsonDocument.Parse(await health.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("status").GetString());
                    return;
                }
                Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            }
            catch (HttpRequestException) { }
            await Task.Delay(20, Ct);
        }
        Assert.Fail("the demo app never said healthy");
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_demo is { HasExited: false })
        {
            _demo.Kill(entireProcessTree: true);
            await _demo.WaitForExitAsync(CancellationToken.None);
        }
        _demo?.Dispose();
        _http.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
