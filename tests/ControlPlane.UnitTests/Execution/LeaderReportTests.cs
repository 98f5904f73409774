using System.Net;
using System.Net.Sockets;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Notifications;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.UnitTests.Execution;

/// <summary>
/// A switch or rollback request waits for the runtime leader after its intent is committed. If the database goes away during
/// that wait, the request answers "recorded" (null: the caller's 202) instead of failing a move the leader still makes.
/// </summary>
public sealed class LeaderReportTests
{
    [Fact]
    public async Task A_database_that_cannot_be_read_during_the_wait_ends_it_without_an_answer()
    {
        using var report = new LeaderReport(new ChangeNotifier());
        var looks = 0;
        // A real driver failure: PostgreSQL is not listening (as when it is restarted mid-wait).
        var answer = await report.WaitAsync<string>(TimeSpan.FromSeconds(30), async () =>
        {
            looks++;
            await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={ClosedPort()};Timeout=5");
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            return "moved";
        }, TestContext.Current.CancellationToken);
        Assert.Null(answer);
        Assert.Equal(1, looks);
    }

    [Fact]
    public async Task A_query_through_EF_that_cannot_reach_the_database_ends_the_wait_without_an_answer()
    {
        // The wait's real look: an EF query, whose execution strategy wraps the driver's failure in an InvalidOperationException.
        var options = new DbContextOptionsBuilder<ControlPlaneDbContext>()
            .UseNpgsql($"Host=127.0.0.1;Port={ClosedPort()};Timeout=5", o => o.UseQuerySplittingBehavior(QuerySplittingBehavior.SplitQuery)).Options;
        await using var db = new ControlPlaneDbContext(options);
        using var report = new LeaderReport(new ChangeNotifier());
        var id = Guid.NewGuid();
        var answer = await report.WaitAsync<string>(TimeSpan.FromSeconds(30), async () =>
        {
            var state = await db.Deployments.AsNoTracking().Where(x => x.Id == id).Select(x => x.State).SingleAsync(TestContext.Current.CancellationToken);
            return state.ToString();
        }, TestContext.Current.CancellationToken);
        Assert.Null(answer);
    }

    [Fact]
    public async Task A_refusal_still_reaches_the_caller()
    {
        using var report = new LeaderReport(new ChangeNotifier());
        var refused = await Assert.ThrowsAsync<DomainException>(() => report.WaitAsync<string>(TimeSpan.FromSeconds(30),
            () => throw DomainException.Conflict("no warm slot"), TestContext.Current.CancellationToken));
        Assert.Equal("no warm slot", refused.Message);
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
