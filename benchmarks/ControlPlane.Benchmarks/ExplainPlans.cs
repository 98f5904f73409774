using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Prints the plan PostgreSQL actually executed for each explorer page: auto_explain at NOTICE level on a dedicated
/// connection, so the statement is the one EF generates from <see cref="AuditQuery"/>, with its real parameters.
/// </summary>
public static class ExplainPlans
{
    public static async Task PrintAsync(NpgsqlDataSource dataSource)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        var plans = new List<string>();
        connection.Notice += (_, e) => plans.Add(e.Notice.MessageText);
        await using (var command = new NpgsqlCommand(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; " +
            "SET auto_explain.log_buffers = on; SET auto_explain.log_level = notice;", connection))
            await command.ExecuteNonQueryAsync();

        var options = new DbContextOptionsBuilder<ControlPlaneDbContext>().UseNpgsql(connection).Options;
        foreach (var (name, (filter, before)) in AuditExplorerBenchmarks.Cases)
        {
            plans.Clear();
            await using var db = new ControlPlaneDbContext(options);
            await new AuditQuery(db).PageAsync(filter, AuditExplorerBenchmarks.PageSize, before, CancellationToken.None);
            Console.WriteLine($"---- {name}");
            foreach (var plan in plans) Console.WriteLine(plan);
        }
    }
}
