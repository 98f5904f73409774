using System.Diagnostics;
using System.Globalization;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace ControlPlane.Benchmarks.SideBySide;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/ControlPlane.Benchmarks -- release-flow [--releases N] [--web DIR] [--demo DLL] [--log-level Debug] [--state-poll-ms N] [--keep]</c>:
/// only the release flow of the side-by-side run (no data plane, no audit trail, no fan-out), on a PostgreSQL and a ControlPlane of
/// its own, and the demo process started by hand next to each release (before it, or after it in every other cycle) to subtract. <c>--web</c> points at another build's output directory of
/// ControlPlane.Web, <c>--demo</c> at another build's ControlPlane.DemoApp.dll, to compare two builds in alternation.
/// </summary>
public static class ReleaseFlowCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var releases = args.SkipWhile(a => a != "--releases").Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(10);
        // --log-level Debug: ControlPlane's own categories at that level, every line with a UTC timestamp (to follow a switch).
        var logLevel = args.SkipWhile(a => a != "--log-level").Skip(1).FirstOrDefault() ?? "Warning";
        var webDll = Tools.WebProgram(args);
        var demoDll = args.SkipWhile(a => a != "--demo").Skip(1).Select(Path.GetFullPath).FirstOrDefault() ?? Tools.Program("ControlPlane.DemoApp");
        if (args.SkipWhile(a => a != "--state-poll-ms").Skip(1).FirstOrDefault() is { } poll)
            ReleaseFlow.StatePoll = TimeSpan.FromMilliseconds(int.Parse(poll, CultureInfo.InvariantCulture));
        var work = Directory.CreateTempSubdirectory("cp-release-flow-").FullName;
        Console.WriteLine($"Release flow only: {releases} releases, ControlPlane {webDll}, demo {demoDll}");
        await using var postgres = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions("", Ephemeral: true), NullLogger.Instance);
        await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
        await using (var db = new ControlPlaneDbContext(BenchmarkDatabase.Options(dataSource)))
            await db.Database.MigrateAsync();
        var baseUrl = new Uri($"http://127.0.0.1:{Tools.FreePort()}/");
        var web = Tools.StartControlPlane(webDll, postgres.ConnectionString, baseUrl, work, logLevel);
        var succeeded = false;
        try
        {
            await Tools.WaitForHttpAsync(new Uri(baseUrl, "healthz"), TimeSpan.FromSeconds(120));
            using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromMinutes(2) };
            http.DefaultRequestHeaders.Authorization = new("Bearer", Tools.ControlPlaneToken);
            var warm = await ReleaseFlow.CyclesAsync(http, releases, Console.Out, work, demoDll, web.Id); // the warm-up release is not among them
            string P(Func<CycleTiming, double> f) => string.Create(CultureInfo.InvariantCulture,
                $"{Tools.PercentileOf(warm.Select(f).ToList(), 50):F1} / {Tools.PercentileOf(warm.Select(f).ToList(), 99):F1}");
            Console.WriteLine($"p50 / p99 over {warm.Count} warm cycles (ms):");
            Console.WriteLine($"  created -> AwaitingApproval {P(c => c.CreatedToAwaitingMs)}; deploy step {P(c => c.DeployStepMs)}");
            Console.WriteLine($"  the demo process alone, started as the deployer starts it next to each release (until /healthz answers 200): {P(c => c.AloneMs)}");
            Console.WriteLine($"  ControlPlane's CPU from creation to AwaitingApproval {P(c => c.CpuToAwaitingMs)}");
            Console.WriteLine($"  per release, minus that start: created -> AwaitingApproval {P(c => c.OverheadMs)}; deploy step {P(c => c.DeployOverheadMs)}");
            Console.WriteLine($"  switch call {P(c => c.SwitchCallMs)}; returned -> served {P(c => c.SwitchServedMs)}; call started -> served {P(c => c.SwitchCallMs + c.SwitchServedMs)}");
            Console.WriteLine($"  the probe's own request (nothing moving) {P(c => c.ProbeMs)}; straight to the live slot {P(c => c.DirectMs)}; both moves served at the first request after the answer in {warm.Count(c => c.ServedAtFirstTry)} of {warm.Count} cycles");
            Console.WriteLine($"  rollback call {P(c => c.RollbackCallMs)}; returned -> served {P(c => c.RollbackServedMs)}; call started -> served {P(c => c.RollbackCallMs + c.RollbackServedMs)}");
            succeeded = true;
            return 0;
        }
        catch (ReleaseFlow.CycleFailedException e)
        {
            Console.Error.WriteLine($"A release cycle went wrong: {e.Message}");
            return 1;
        }
        finally
        {
            await Tools.TerminateAsync(web, TimeSpan.FromSeconds(20));
            // Kept when something went wrong: ControlPlane's log, the router's and the slots' logs are what explains it.
            if (succeeded && !args.Contains("--keep")) try { Directory.Delete(work, recursive: true); } catch (IOException) { }
            else Console.Error.WriteLine($"{(succeeded ? "" : "Something went wrong. ")}Kept the work directory {work} (ControlPlane's log: {Path.Combine(work, "controlplane.log")}; " +
                                         $"the router's and the slots' under {Path.Combine(work, "controlplane")})");
        }
    }
}
