using System.Net;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Replicas;

/// <summary>
/// Two ControlPlane processes on one database and one host: any replica accepts every command (the runtime leader carries
/// it out), and when the leader is killed the other one takes over a release in Monitoring and serves rollbacks.
/// </summary>
public sealed class ReplicaReconcileTests(PostgresFixture postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Commands_through_the_non_leader_work_and_the_survivor_of_a_killed_leader_finishes_the_release()
    {
        var database = await postgres.CreateDatabaseAsync("replicas");
        var shared = Directory.CreateTempSubdirectory("cp-replicas-").FullName;
        await using var leader = new ControlPlaneProcess(database, shared);
        await leader.StartAsync();
        await using var follower = new ControlPlaneProcess(database, shared);
        await follower.StartAsync();
        using var viaFollower = follower.Admin();

        // Registration through the non-leader: the leader hears it and brings the application up.
        var publicUrl = await TestApplications.RegisterDemoCopyAsync(viaFollower, "rep-a",
            new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 });

        // A rollback through the non-leader returns once the old version is served.
        var first = (await viaFollower.StartReleaseAsync("rep-a", "2.0.0")).GetProperty("id").GetString()!;
        await viaFollower.WaitForStateAsync(first, "Monitoring");
        Assert.Equal(("2.0.0", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var rollback = await viaFollower.PostJsonAsync("/api/v1/applications/rep-a/rollback", new { reason = "through the follower" });
        Assert.True(rollback.StatusCode == HttpStatusCode.OK, $"{(int)rollback.StatusCode} {await rollback.Content.ReadAsStringAsync(Ct)}");
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));

        // kill -9 of the leader while a release is monitored: the follower takes over and finishes it.
        var second = (await viaFollower.StartReleaseAsync("rep-a", "2.0.1")).GetProperty("id").GetString()!;
        await viaFollower.WaitForStateAsync(second, "Monitoring");
        await leader.KillHardAsync();

        var watched = await WaitForWatchedAsync(viaFollower, second, seconds: 3);
        Assert.Equal("Monitoring", watched.GetProperty("state").GetString());
        Assert.Equal(("2.0.1", "green"), await ApiCalls.PublicAnswerAsync(publicUrl));
        var survivorRollback = await viaFollower.PostJsonAsync("/api/v1/applications/rep-a/rollback", new { reason = "through the survivor" });
        Assert.True(survivorRollback.StatusCode == HttpStatusCode.OK, $"{(int)survivorRollback.StatusCode} {await survivorRollback.Content.ReadAsStringAsync(Ct)}\n{follower.Output}");
        Assert.Equal(("1.0.0", "blue"), await ApiCalls.PublicAnswerAsync(publicUrl));
        await viaFollower.WaitForStateAsync(second, "RolledBack");
        Assert.True((await viaFollower.GetJsonAsync("/api/v1/audit/verify")).GetProperty("valid").GetBoolean());
    }

    /// <summary>Waits until the deployment's monitoring has watched at least <paramref name="seconds"/> on the new leader.</summary>
    private static async Task<System.Text.Json.JsonElement> WaitForWatchedAsync(HttpClient client, string id, double seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        double? start = null;
        while (true)
        {
            var d = await client.GetJsonAsync($"/api/v1/deployments/{id}");
            var watched = d.GetProperty("monitoredSeconds").GetDouble();
            start ??= watched;
            if (watched >= start + seconds) return d;
            Assert.True(DateTime.UtcNow < deadline, $"monitoring did not resume after the leader died: {d}");
            await Task.Delay(200, Ct);
        }
    }
}
