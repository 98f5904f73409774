using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// Processes ControlPlane starts get an explicit environment: what their settings name plus a minimal base, never
/// ControlPlane's configuration or secrets. Read from /proc/&lt;pid&gt;/environ of a real ControlPlane's real children.
/// </summary>
public sealed class ChildProcessEnvironmentTests(PostgresFixture postgres)
{
    [Fact]
    public async Task Slot_and_router_processes_receive_none_of_ControlPlanes_configuration_or_secrets()
    {
        var connectionString = await postgres.CreateDatabaseAsync("childenv");
        await using var cp = new ControlPlaneProcess(connectionString);
        cp.Environment["ControlPlane__Oidc__ClientSecret"] = "oidc-client-secret-for-the-environment-test";
        cp.Environment["ASPNETCORE_FORWARDEDHEADERS_ENABLED"] = "true";
        await cp.StartAsync();
        const string app = "child-env";
        using (var admin = cp.Admin())
            await TestApplications.RegisterDemoCopyAsync(admin, app, new { requiredApprovals = 0 });

        // The parent really holds them, so a child that inherited its environment would show them.
        var parent = EnvironmentOf(cp.Pid!.Value);
        Assert.Contains(parent, v => v.StartsWith("ControlPlane__Bootstrap__AdminToken=", StringComparison.Ordinal));
        Assert.Contains(parent, v => v.StartsWith("ConnectionStrings__ControlPlane=", StringComparison.Ordinal));

        var slots = ControlPlaneProcess.SlotProcesses(app);
        Assert.NotEmpty(slots);
        var routerRecord = Path.Combine(cp.DataDirectory, "routers", app, "router.json");
        using var record = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(routerRecord, TestContext.Current.CancellationToken));
        var children = slots.Select(s => (What: $"{s.Slot} slot", s.Pid)).Append(("router", record.RootElement.GetProperty("pid").GetInt32())).ToList();

        string[] secrets = [ControlPlaneProcess.AdminToken, ControlPlaneProcess.InitialAdminPassword, "oidc-client-secret-for-the-environment-test",
            new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Password!];
        foreach (var (what, pid) in children)
        {
            var environment = EnvironmentOf(pid);
            Assert.Contains(environment, v => v.StartsWith("PATH=", StringComparison.Ordinal));
            foreach (var variable in environment)
            {
                Assert.False(variable.StartsWith("ControlPlane__", StringComparison.OrdinalIgnoreCase), $"{what} (pid {pid}) has {variable}");
                Assert.False(variable.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase), $"{what} (pid {pid}) has {variable}");
                Assert.False(variable.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase), $"{what} (pid {pid}) has {variable}");
                Assert.False(variable.StartsWith("Logging__", StringComparison.OrdinalIgnoreCase), $"{what} (pid {pid}) has {variable}");
                foreach (var secret in secrets)
                    Assert.DoesNotContain(secret, variable, StringComparison.Ordinal);
            }
        }
    }

    private static string[] EnvironmentOf(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries);
}
