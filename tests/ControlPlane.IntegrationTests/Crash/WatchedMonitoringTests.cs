using System.Globalization;
using System.Text.RegularExpressions;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Crash;

/// <summary>Monitoring time is time watched: while ControlPlane is down nothing watches, so that time does not count.</summary>
public sealed partial class WatchedMonitoringTests(PostgresFixture postgres)
{
    [GeneratedRegex(@"\((\d+) s while ControlPlane was not watching did not count\)")]
    private static partial Regex Unwatched();

    [GeneratedRegex(@"no breach during (\d+) s of monitoring")]
    private static partial Regex WatchedSeconds();

    [Fact]
    public async Task Time_while_ControlPlane_was_down_does_not_count_towards_the_monitoring_window_and_the_step_says_so()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("watched"));
        await cp.StartAsync();
        using (var admin = cp.Admin())
        {
            await TestApplications.RegisterDemoCopyAsync(admin, "watched",
                new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 8, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });
        }
        string id;
        using (var admin = cp.Admin())
        {
            id = (await admin.StartReleaseAsync("watched", "2.0.0")).GetProperty("id").GetString()!;
            await admin.WaitForStateAsync(id, "Monitoring");
        }
        await cp.KillHardAsync();
        // Down for longer than the whole window: a clock-based window would be over before the restart.
        await Task.Delay(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await cp.StartAsync();

        using var client = cp.Admin();
        var done = await client.WaitForStateAsync(id, "Succeeded");
        var outcome = done.GetProperty("outcome").GetString()!;
        // At least the 8 s window was watched (a check in flight at its end may add a second).
        var watched = WatchedSeconds().Match(outcome);
        Assert.True(watched.Success && int.Parse(watched.Groups[1].Value, CultureInfo.InvariantCulture) >= 8, outcome);
        var match = Unwatched().Match(outcome);
        Assert.True(match.Success, outcome);
        Assert.True(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) >= 7, outcome);
        Assert.True(done.GetProperty("monitoredSeconds").GetDouble() >= 8);
    }
}
