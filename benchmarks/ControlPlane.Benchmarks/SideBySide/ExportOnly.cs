using System.Diagnostics;
using System.Globalization;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace ControlPlane.Benchmarks.SideBySide;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/ControlPlane.Benchmarks -- export [--events N] [--rounds R] [--before path/ControlPlane.Web.dll]</c>:
/// only the audit export row of the side-by-side run, repeated: this build's export and <c>psql \copy</c> in alternation on
/// one trail (and, with <c>--before</c>, another build's export against the same database), so each ratio is taken within
/// the same minute on a busy machine.
/// </summary>
public static class ExportOnly
{
    private const string Token = "bench-admin-token-0123456789abcdef";

    public static async Task<int> RunAsync(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var events = int.Parse(Arg("--events") ?? "1000000", CultureInfo.InvariantCulture);
        var rounds = int.Parse(Arg("--rounds") ?? "3", CultureInfo.InvariantCulture);
        var work = Directory.CreateTempSubdirectory("cp-export-").FullName;
        await using var postgres = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions("", Ephemeral: true), NullLogger.Instance);
        await using var dataSource = NpgsqlDataSource.Create(postgres.ConnectionString);
        await using (var db = new ControlPlaneDbContext(BenchmarkDatabase.Options(dataSource)))
            await db.Database.MigrateAsync();
        await AuditTrailLoader.LoadAsync(dataSource, new AuditTrailGenerator().Generate(events), CancellationToken.None);
        await using (var vacuum = dataSource.CreateCommand("VACUUM (ANALYZE) audit_events")) await vacuum.ExecuteNonQueryAsync();
        Console.WriteLine($"loaded {events:N0} events");

        var builds = new List<(string Name, string Dll)> { ("this build", Tools.Program("ControlPlane.Web")) };
        if (Arg("--before") is { } before) builds.Add(("before", before));
        var started = new List<(string Name, Process Web, HttpClient Http)>();
        try
        {
            foreach (var (name, dll) in builds)
            {
                var baseUrl = new Uri($"http://127.0.0.1:{Tools.FreePort()}/");
                var web = Tools.Start("dotnet", [dll], new Dictionary<string, string>
                {
                    ["ConnectionStrings__ControlPlane"] = postgres.ConnectionString,
                    ["ControlPlane__DataDirectory"] = Directory.CreateDirectory(Path.Combine(work, name.Replace(' ', '-'))).FullName,
                    ["ControlPlane__Demo__Enabled"] = "false",
                    ["ControlPlane__Bootstrap__AdminToken"] = Token,
                    ["ASPNETCORE_URLS"] = baseUrl.AbsoluteUri.TrimEnd('/'),
                    ["ASPNETCORE_ENVIRONMENT"] = "Production",
                    ["Logging__LogLevel__Default"] = "Warning",
                }, Path.Combine(work, name.Replace(' ', '-') + ".log"));
                var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromMinutes(10) };
                http.DefaultRequestHeaders.Authorization = new("Bearer", Token);
                started.Add((name, web, http));
                await Tools.WaitForHttpAsync(new Uri(baseUrl, "healthz"), TimeSpan.FromSeconds(120));
                (await http.GetAsync("api/v1/audit/export?format=csv&application=nothing-here")).EnsureSuccessStatusCode();
            }
            await Task.Delay(TimeSpan.FromSeconds(2));
            for (var round = 1; round <= rounds; round++)
                foreach (var (name, web, http) in started)
                {
                    var export = await ControlPlaneRows.ExportAsync(http, web.Id);
                    var copy = await ControlPlaneRows.PsqlCopyAsync(postgres);
                    Console.WriteLine(FormattableString.Invariant(
                        $"round {round} {name,-10}: export {export.Seconds:F2} s (first byte {export.FirstByteMs:F0} ms, {export.Bytes:N0} bytes, RSS +{(export.PeakRss - export.BaselineRss) / 1048576.0:F0} MB), psql \\copy {copy.Seconds:F2} s: {export.Seconds / copy.Seconds:F2}×  load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));
                }
        }
        finally
        {
            foreach (var (_, web, http) in started)
            {
                http.Dispose();
                await Tools.TerminateAsync(web, TimeSpan.FromSeconds(20));
            }
        }
        try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        return 0;
    }
}
