using System.Net;
using ControlPlane.Core.Data;
using ControlPlane.IntegrationTests.Infrastructure;
using ControlPlane.IntegrationTests.Routing;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.IntegrationTests.Crash;

/// <summary>
/// An external database that goes away: ControlPlane keeps running and keeps the data plane serving, answers /healthz
/// with 503 and the reason, says so once in its log, and resumes (leadership, runtime, releases) when the database is back.
/// </summary>
public sealed class DatabaseLossTests
{
    [Fact(Timeout = 300_000)]
    public async Task ControlPlane_waits_for_a_lost_database_without_stopping_traffic_and_resumes()
    {
        var ct = TestContext.Current.CancellationToken;
        // A server of its own (not the shared fixture), standing in for an external PostgreSQL that is restarted.
        await using var database = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions(DataDirectory: "", Ephemeral: true), NullLogger.Instance, ct);
        await using var cp = new ControlPlaneProcess(database.ConnectionString);
        cp.Environment["Logging__LogLevel__ControlPlane.Web.Hosting.DatabaseSupervisor"] = "Information";
        await cp.StartAsync();
        const string app = "db-loss";
        string publicUrl;
        using (var admin = cp.Admin())
            publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 1, allowSelfApproval = true });

        var load = await KeepAliveLoad.StartAsync(new Uri(publicUrl), 2, ct, answer => answer.App == app);
        string healthWhileDown;
        try
        {
            var (code, output) = await ControlPlaneProcess.PgCtlAsync("stop", "-m", "fast", "-w", "-D", database.DataDirectory);
            Assert.True(code == 0, output);

            using var http = new HttpClient { BaseAddress = cp.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            using (var health = await http.GetAsync("/healthz", ct))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
                healthWhileDown = await health.Content.ReadAsStringAsync(ct);
            }
            Assert.Contains("PostgreSQL is not reachable", healthWhileDown);
            // Some seconds without a database: ControlPlane must not give up (it used to stop itself and every slot).
            for (var i = 0; i < 30; i++)
            {
                Assert.True(cp.Pid is { } pid && Directory.Exists($"/proc/{pid}"), $"ControlPlane exited without its database:\n{cp.Output}");
                await Task.Delay(200, ct);
            }

            Assert.True(await database.StartAgainAsync(ct));
            while (!(await http.GetAsync("/healthz", ct)).IsSuccessStatusCode)
                await Task.Delay(200, ct);
        }
        finally
        {
            await load.StopAsync();
        }

        // Everything resumes: the supervisor and the leadership say so (bounded wait), and the worker picks a release up.
        for (var i = 0; i < 300 && !(cp.Output.Contains("PostgreSQL is reachable again") && cp.Output.Contains("runs the release runtime again")); i++)
            await Task.Delay(100, ct);
        Assert.Contains("runs the release runtime again", cp.Output);
        using var client = cp.Admin();
        var release = (await client.StartReleaseAsync(app, "2.0.0")).GetProperty("id").GetString()!;
        await client.WaitForStateAsync(release, "AwaitingApproval", seconds: 90);

        TestContext.Current.TestOutputHelper?.WriteLine($"{load}; /healthz while down: {healthWhileDown}");
        Assert.Equal(0, load.Failures);
        Assert.True(load.Total > 0);
        // Reported once per change, not once per attempt.
        Assert.True(Occurrences(cp.Output, "PostgreSQL is not reachable:") == 1, cp.Output);
        Assert.True(Occurrences(cp.Output, "PostgreSQL is reachable again") == 1, cp.Output);
    }

    private static int Occurrences(string text, string what)
    {
        var count = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
