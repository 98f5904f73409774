using System.Diagnostics;
using System.IO.Compression;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Cli;

/// <summary>The built <c>controlplane</c> CLI run as a process against a real ControlPlane process, as a CI job runs it.</summary>
public sealed class CliTests(PostgresFixture postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Release_wait_exits_0_when_a_second_token_approves_and_3_with_the_reason_when_verification_fails()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("cli"));
        await cp.StartAsync();
        const string app = "cli-release";
        using (var admin = cp.Admin())
            await TestApplications.RegisterDemoCopyAsync(admin, app, new
            {
                requiredApprovals = 1, allowSelfApproval = false, switchOnApproval = true, monitoringWindowSeconds = 2, monitoringIntervalSeconds = 1,
            });
        var ci = await TokenAsync(cp, "ci-pipeline", "ReleaseManager");
        using var approver = await ClientAsync(cp, "approver", "ReleaseManager");

        var run = RunAsync(cp, ci, "release", app, "2.0.0", "--reason", "built by CI", "--wait", "--timeout", "120", "--json");
        var id = await WaitForApprovalAsync(approver, app);
        (await approver.PostAsJsonAsync($"/api/v1/deployments/{id}/approve", new { comment = "second person" }, Ct)).EnsureSuccessStatusCode();
        var (exit, stdout, stderr) = await run;
        Assert.True(exit == 0, $"exit {exit}\n{stdout}\n{stderr}");
        var result = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("Succeeded", result.GetProperty("state").GetString());
        Assert.Equal(id, result.GetProperty("id").GetString());
        Assert.Equal(0, result.GetProperty("exitCode").GetInt32());

        (exit, stdout, stderr) = await RunAsync(cp, ci, "release", app, "2.1.0-fail-verify", "--wait", "--timeout", "120");
        Assert.True(exit == 3, $"exit {exit}\n{stdout}\n{stderr}");
        Assert.Contains("Verifying → Failed", stdout);
        Assert.Contains("failed: Verification failed: check 'home'", stderr);

        // Waiting for an approval nobody gives: its own exit code, and the message says so.
        (exit, _, stderr) = await RunAsync(cp, ci, "release", app, "2.2.0", "--wait", "--timeout", "3");
        Assert.True(exit == 6, $"exit {exit}\n{stderr}");
        Assert.Contains("waiting for approval", stderr);

        // A refused request: the server's problem, field included, and exit 2.
        (exit, _, stderr) = await RunAsync(cp, ci, "release", app, "", "--json");
        Assert.Equal(2, exit);
        Assert.Contains("version", stderr);
    }

    [Fact]
    public async Task Evidence_of_a_rolled_back_release_verifies_offline_and_one_changed_byte_is_named()
    {
        await using var cp = new ControlPlaneProcess(await postgres.CreateDatabaseAsync("evidence"));
        await cp.StartAsync();
        const string app = "cli-evidence";
        string publicUrl;
        using (var admin = cp.Admin())
            publicUrl = await TestApplications.RegisterDemoCopyAsync(admin, app, new
            {
                requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 30, monitoringIntervalSeconds = 1,
            });
        var ci = await TokenAsync(cp, "ci-evidence", "ReleaseManager");
        var auditor = await TokenAsync(cp, "auditor", "Auditor");
        using var admin2 = cp.Admin();
        var id = (await admin2.StartReleaseAsync(app, "2.2.0-fail-monitor")).GetProperty("id").GetString()!;
        // Monitoring, or already RolledBack: the switch's own probe can break the version, and on a busy machine the monitor's
        // breach and the rollback can both come between two looks (seen once in CI). Either way the rollback is what follows.
        for (var state = ""; state is not ("Monitoring" or "RolledBack"); await Task.Delay(200, Ct))
        {
            state = (await admin2.GetJsonAsync($"/api/v1/deployments/{id}")).GetProperty("state").GetString()!;
            Assert.DoesNotContain(state, new[] { "Failed", "Aborted", "Succeeded" });
        }
        // switchOnApproval moves it on by itself. The demo's "-fail-monitor" version breaks once the switch's data-plane probe
        // (or real traffic through the router) has reached it; this request is real traffic.
        using (var http = new HttpClient()) await http.GetAsync(publicUrl, Ct);
        var (exit, stdout, stderr) = await RunAsync(cp, ci, "wait", id, "--timeout", "60");
        Assert.True(exit == 4, $"exit {exit}\n{stdout}\n{stderr}");

        var file = Path.Combine(cp.DataDirectory, "evidence.zip");
        (exit, _, stderr) = await RunAsync(cp, auditor, "evidence", id, "-o", file);
        Assert.True(exit == 0, stderr);
        (exit, _, stderr) = await RunAsync(cp, ci, "evidence", id, "-o", file + ".ci");
        Assert.Equal(2, exit); // a ReleaseManager may not export evidence
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(PublicKeyDer(cp)));

        (exit, stdout, stderr) = await RunAsync(cp, null, "evidence", "verify", file, "--key-fingerprint", fingerprint, "--json");
        Assert.True(exit == 0, $"{stdout}\n{stderr}");
        var verdict = JsonDocument.Parse(stdout).RootElement;
        Assert.True(verdict.GetProperty("valid").GetBoolean());
        Assert.True(verdict.GetProperty("keyPinned").GetBoolean());
        using (var zip = ZipFile.OpenRead(file))
        {
            var release = JsonDocument.Parse(zip.GetEntry("release.json")!.Open()).RootElement;
            Assert.Equal("RolledBack", release.GetProperty("state").GetString());
            var actions = new StreamReader(zip.GetEntry("audit-events.jsonl")!.Open()).ReadToEnd();
            Assert.Contains("deployment.auto-rolled-back", actions);
        }

        // Another key pinned: refused even though the bundle is internally consistent.
        (exit, stdout, _) = await RunAsync(cp, null, "evidence", "verify", file, "--key-fingerprint", new string('a', 64));
        Assert.Equal(7, exit);
        Assert.Contains("public-key.pem", stdout);

        // One byte changed in one file: verify fails and names that file.
        var tampered = file + ".tampered.zip";
        using (var source = ZipFile.OpenRead(file))
        using (var target = ZipFile.Open(tampered, ZipArchiveMode.Create))
            foreach (var entry in source.Entries)
            {
                using var input = new MemoryStream();
                await using (var s = entry.Open()) await s.CopyToAsync(input, Ct);
                var bytes = input.ToArray();
                if (entry.FullName == "checks.json") bytes[bytes.Length / 2] ^= 0x01;
                await using var output = target.CreateEntry(entry.FullName).Open();
                await output.WriteAsync(bytes, Ct);
            }
        (exit, stdout, _) = await RunAsync(cp, null, "evidence", "verify", tampered, "--key-fingerprint", fingerprint);
        Assert.Equal(7, exit);
        Assert.Contains("checks.json: SHA-256 does not match", stdout);
    }

    private static byte[] PublicKeyDer(ControlPlaneProcess cp)
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(Path.Combine(cp.DataDirectory, "audit", "checkpoint-key.pem.pub")));
        return key.ExportSubjectPublicKeyInfo();
    }

    private static async Task<string> TokenAsync(ControlPlaneProcess cp, string name, string role)
    {
        using var admin = cp.Admin();
        var response = await admin.PostAsJsonAsync("/api/v1/tokens", new { name, role }, Ct);
        response.EnsureSuccessStatusCode();
        return (await response.JsonAsync()).GetProperty("token").GetString()!;
    }

    private static async Task<HttpClient> ClientAsync(ControlPlaneProcess cp, string name, string role)
    {
        var client = new HttpClient { BaseAddress = cp.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new("Bearer", await TokenAsync(cp, name, role));
        return client;
    }

    private static async Task<string> WaitForApprovalAsync(HttpClient client, string app)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            var a = await client.GetJsonAsync($"/api/v1/applications/{app}");
            if (a.GetProperty("inFlight") is { ValueKind: JsonValueKind.Object } f && f.GetProperty("state").GetString() == "AwaitingApproval")
                return f.GetProperty("id").GetString()!;
            await Task.Delay(200, Ct);
        }
        Assert.Fail($"{app} did not reach AwaitingApproval");
        return "";
    }

    /// <summary>Runs <c>dotnet controlplane.dll args</c> with CONTROLPLANE_URL/TOKEN in its environment.</summary>
    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(ControlPlaneProcess cp, string? token, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(LocateCli());
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["CONTROLPLANE_URL"] = cp.BaseAddress.ToString();
        if (token is not null) start.Environment["CONTROLPLANE_TOKEN"] = token;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(180)); // bounds a hang; times nothing
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string LocateCli()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "ControlPlane.Cli", "bin", configuration, "net10.0", "controlplane.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("controlplane.dll was not found next to the sources; build the solution first.");
    }
}
