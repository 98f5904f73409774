using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.IntegrationTests.OfficialClients;

/// <summary>
/// Runs the official clients the fakes are proven against: <c>kubectl</c> (the Debian package, on PATH) and the Node scripts in
/// <c>tests/OfficialClients</c> (the AWS SDK for JavaScript v3 and <c>@smithy/signature-v4</c>, installed by <c>npm ci</c>;
/// <c>.ci/run</c> does that). The tests install nothing: a missing client fails the test with what to run.
/// </summary>
public static class OfficialClient
{
    public static string NodeProject
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ControlPlane.sln")))
                directory = directory.Parent;
            Assert.True(directory is not null, "repository root (ControlPlane.sln) not found above " + AppContext.BaseDirectory);
            var project = Path.Combine(directory.FullName, "tests", "OfficialClients");
            Assert.True(Directory.Exists(Path.Combine(project, "node_modules", "@aws-sdk", "client-elastic-load-balancing-v2")),
                $"The official AWS SDK is not installed: run `npm ci --prefix {project}` (.ci/run does it when node_modules is missing).");
            return project;
        }
    }

    /// <summary>Runs <c>node {script}</c> with <paramref name="input"/> as JSON on stdin; one JSON object per output line.</summary>
    public static async Task<IReadOnlyList<JsonNode>> NodeAsync(string script, object input, CancellationToken cancellationToken)
    {
        var project = NodeProject;
        var (code, output, error) = await RunAsync("node", [Path.Combine(project, script)], project, JsonSerializer.Serialize(input), null, cancellationToken);
        Assert.True(code == 0, $"node {script} exited with {code}: {error}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
    }

    /// <summary>Runs a program with a clean environment plus <paramref name="environment"/>; returns its exit code and output.</summary>
    public static async Task<(int Code, string Output, string Error)> RunAsync(string program, IEnumerable<string> arguments, string? workingDirectory,
        string? stdin, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        // Nothing of the machine's own configuration (a real kubeconfig, AWS profiles) may reach the clients.
        start.Environment.Clear();
        start.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        start.Environment["HOME"] = Path.GetTempPath();
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw; }
        return (process.ExitCode, await output, await error);
    }
}
