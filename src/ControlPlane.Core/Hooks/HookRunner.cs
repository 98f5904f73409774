using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using ControlPlane.Core.Deployers;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Core.Hooks;

/// <summary>Who a hook runs for: given to http hooks as the JSON body and to commands as CONTROLPLANE_* variables.</summary>
public sealed record HookContext(Guid ReleaseId, string Application, string Version, string? FromVersion, string Slot, string Step, int Attempt,
    string? SchemaDatabase, KubernetesJobTarget? Kubernetes = null);

/// <summary>How a run ended. <see cref="ExitStatus"/> is the exit code (command) or HTTP status (http); null when none.</summary>
public sealed record HookResult(bool Succeeded, int? ExitStatus, string Output, string Message);

public static class HookEnvironment
{
    public const string Prefix = "CONTROLPLANE_";

    /// <summary>The only variables a command hook gets besides the minimal base and its own <c>env</c>.</summary>
    public static Dictionary<string, string> For(HookContext context, IReadOnlyDictionary<string, string>? own)
    {
        var env = new Dictionary<string, string>(own ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [Prefix + "RELEASE_ID"] = context.ReleaseId.ToString(),
            [Prefix + "APPLICATION"] = context.Application,
            [Prefix + "VERSION"] = context.Version,
            [Prefix + "FROM_VERSION"] = context.FromVersion ?? "",
            [Prefix + "SLOT"] = context.Slot,
            [Prefix + "HOOK"] = context.Step,
            [Prefix + "ATTEMPT"] = context.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return env;
    }
}

/// <summary>
/// Runs one hook to its end (success, failure or timeout) and never throws for the hook's own faults: whatever happened
/// comes back as a <see cref="HookResult"/> with the output captured (truncated to <see cref="MaxOutput"/> characters,
/// head and tail kept).
/// </summary>
public sealed class HookRunner(IHttpClientFactory httpClients, SchemaDatabases databases, KubernetesJobHook jobs, HookProcessRecords processes,
    ILogger<HookRunner> logger)
{
    public const string HttpClientName = "hooks";
    public const int MaxOutput = 8 * 1024;

    /// <param name="cancellationToken">ControlPlane stops: the hook is left as it is where it can be found again (a Job), else stopped.</param>
    /// <param name="abort">The release was aborted while the hook ran: its process group is killed, its request cancelled, its Job deleted,
    /// and the result says so.</param>
    public async Task<HookResult> RunAsync(LifecycleHook hook, HookContext context, CancellationToken cancellationToken, CancellationToken abort = default)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, abort);
        var token = either.Token;
        try
        {
            return hook.Kind switch
            {
                HookKinds.Http => await RunHttpAsync(hook, context, token),
                HookKinds.Command => await RunCommandAsync(hook, context, token, abort),
                HookKinds.Sql => await RunSqlAsync(hook, context, token),
                HookKinds.KubernetesJob => await jobs.RunAsync(hook, context, cancellationToken, abort),
                _ => new(false, null, "", $"hook kind '{hook.Kind}' cannot run here"),
            };
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new(false, null, "", hook.Kind switch
            {
                HookKinds.Http => $"stopped: the release was aborted while POST {hook.Url} ran; the request was cancelled",
                HookKinds.Sql => "stopped: the release was aborted while the SQL script ran; its transaction was rolled back",
                _ => "stopped: the release was aborted while the hook ran",
            });
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
        {
            logger.LogWarning(ex, "{Step} hook of {Application} {Version} failed to run", context.Step, context.Application, context.Version);
            return new(false, null, "", $"could not run: {ex.Message}");
        }
    }

    private async Task<HookResult> RunHttpAsync(LifecycleHook hook, HookContext context, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(hook.Timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, hook.Url)
        {
            Content = JsonContent.Create(new
            {
                releaseId = context.ReleaseId, application = context.Application, version = context.Version,
                fromVersion = context.FromVersion, slot = context.Slot, hook = context.Step, attempt = context.Attempt,
            }),
        };
        // The same key on every attempt of this step of this release: the receiver can make the call idempotent.
        request.Headers.Add("Idempotency-Key", $"{context.ReleaseId}:{context.Step}");
        var watch = Stopwatch.StartNew();
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var body = Truncate(await ReadLimitedAsync(response.Content, timeout.Token));
            var status = (int)response.StatusCode;
            var ok = hook.ExpectedStatus is { } expected ? status == expected : status is >= 200 and < 300;
            var want = hook.ExpectedStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "2xx";
            return new(ok, status, body, ok ? $"POST {hook.Url} → {status} in {watch.ElapsedMilliseconds} ms" : $"POST {hook.Url} answered {status}, expected {want}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new(false, null, "", $"POST {hook.Url} did not answer within {hook.Timeout.TotalSeconds:0} s (timed out)");
        }
        catch (HttpRequestException ex)
        {
            return new(false, null, "", $"POST {hook.Url} failed: {ex.Message}");
        }
    }

    private static async Task<string> ReadLimitedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[MaxOutput * 4];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0) break;
            read += n;
        }
        return Encoding.UTF8.GetString(buffer, 0, read);
    }

    private async Task<HookResult> RunCommandAsync(LifecycleHook hook, HookContext context, CancellationToken cancellationToken, CancellationToken abort)
    {
        var command = hook.Command!;
        // setsid makes the hook lead its own process group (it execs without forking), so a timeout kills what it started too.
        var startInfo = new ProcessStartInfo(DetachedProcess.SetsidPath ?? command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = hook.WorkingDirectory ?? Path.GetTempPath(),
        };
        foreach (var argument in DetachedProcess.SetsidPath is null ? command.Skip(1) : command)
            startInfo.ArgumentList.Add(argument);
        ChildProcessEnvironment.Apply(startInfo, HookEnvironment.For(context, hook.Env));

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException("Process.Start returned no process");
        // On disk before we wait on it: a ControlPlane that dies now leaves a record for the next one to end the group with.
        var record = processes.Write(context, process.Id, DetachedProcess.OwnSession);
        try
        {
            return await WaitForCommandAsync(process, command, hook, cancellationToken, abort);
        }
        finally
        {
            processes.Remove(record);
        }
    }

    private static async Task<HookResult> WaitForCommandAsync(Process process, List<string> command, LifecycleHook hook, CancellationToken cancellationToken,
        CancellationToken abort)
    {
        process.StandardInput.Close();
        var output = new OutputBuffer();
        var pumps = Task.WhenAll(PumpAsync(process.StandardOutput, output), PumpAsync(process.StandardError, output));
        var watch = Stopwatch.StartNew();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(hook.Timeout);
        var timedOut = false;
        var aborted = false;
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            timedOut = !cancellationToken.IsCancellationRequested;
            aborted = !timedOut && abort.IsCancellationRequested;
            KillGroup(process);
            await process.WaitForExitAsync(CancellationToken.None);
            if (!timedOut && !aborted) throw;
        }
        // Whatever the hook left running in its group would hold the pipes open (and outlive the step): it ends with the hook.
        KillGroup(process);
        await Task.WhenAny(pumps, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None));
        var text = output.ToString();
        var shown = string.Join(' ', command.Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        if (timedOut)
            return new(false, null, text, $"{shown} did not finish within {hook.Timeout.TotalSeconds:0} s (timed out; its process group was killed)");
        if (aborted)
            return new(false, process.ExitCode, text, $"stopped: the release was aborted while {shown} ran; its process group was killed after {watch.Elapsed.TotalSeconds:0.0} s");
        var code = process.ExitCode;
        return new(code == 0, code, text, code == 0
            ? $"{shown} exited 0 in {watch.Elapsed.TotalSeconds:0.0} s"
            : $"{shown} exited with {code} after {watch.Elapsed.TotalSeconds:0.0} s");
    }

    private static async Task PumpAsync(StreamReader reader, OutputBuffer output)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0) output.Append(buffer.AsSpan(0, n));
    }

    internal static void KillGroup(Process process)
    {
        if (DetachedProcess.OwnSession && (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            // The group (pid = pgid, setsid made it so): the hook and whatever it started. No such group → nothing to do.
            var kill = new ProcessStartInfo("kill") { UseShellExecute = false, RedirectStandardError = true };
            foreach (var a in (string[])["-KILL", "--", $"-{process.Id}"]) kill.ArgumentList.Add(a);
            ChildProcessEnvironment.Apply(kill);
            using var killer = Process.Start(kill);
            killer?.WaitForExit(5000);
            if (!process.HasExited) try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            return;
        }
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
    }

    private async Task<HookResult> RunSqlAsync(LifecycleHook hook, HookContext context, CancellationToken cancellationToken)
    {
        if (context.SchemaDatabase is null)
            return new(false, null, "", "the application names no hooks.schemaDatabase for SQL scripts to run against");
        var connectionString = new NpgsqlConnectionStringBuilder(databases.ConnectionStringOf(context.SchemaDatabase))
        {
            ApplicationName = $"controlplane-{context.Step}-{context.ReleaseId}",
            CommandTimeout = (int)hook.Timeout.TotalSeconds,
        }.ConnectionString;
        var notices = new OutputBuffer();
        await using var connection = new NpgsqlConnection(connectionString);
        connection.Notice += (_, e) => notices.Append($"{e.Notice.Severity}: {e.Notice.MessageText}\n");
        await connection.OpenAsync(cancellationToken);
        var statements = SqlScript.Split(hook.Script!).Count;
        var watch = Stopwatch.StartNew();
        // One transaction: a script that fails half-way leaves nothing behind (PostgreSQL DDL is transactional).
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            await using var command = new NpgsqlCommand(hook.Script, connection, tx);
            await command.ExecuteNonQueryAsync(cancellationToken);
            await tx.CommitAsync(cancellationToken);
        }
        catch (PostgresException ex)
        {
            var where = ex.Position > 0 ? $" at character {ex.Position}" : "";
            return new(false, null, notices.ToString(), $"SQL failed{where}: {ex.SqlState} {ex.MessageText} — rolled back, nothing of the script was applied");
        }
        catch (NpgsqlException ex) when (ex.InnerException is TimeoutException)
        {
            return new(false, null, notices.ToString(), $"SQL did not finish within {hook.Timeout.TotalSeconds:0} s (timed out) — rolled back");
        }
        return new(true, 0, notices.ToString(), $"{statements} statement(s) applied in one transaction to '{context.SchemaDatabase}' in {watch.ElapsedMilliseconds} ms");
    }

    public static string Truncate(string text)
    {
        if (text.Length <= MaxOutput) return text;
        var half = MaxOutput / 2;
        return $"{text[..half]}\n… {text.Length - MaxOutput} characters left out …\n{text[^half..]}";
    }

    /// <summary>Keeps the first and the last <see cref="MaxOutput"/>/2 characters of a stream of output.</summary>
    internal sealed class OutputBuffer
    {
        private readonly StringBuilder _head = new();
        private readonly StringBuilder _tail = new();
        private long _total;

        public void Append(ReadOnlySpan<char> text)
        {
            lock (_head)
            {
                _total += text.Length;
                var room = MaxOutput / 2 - _head.Length;
                if (room > 0)
                {
                    var take = Math.Min(room, text.Length);
                    _head.Append(text[..take]);
                    text = text[take..];
                }
                _tail.Append(text);
                if (_tail.Length > MaxOutput) _tail.Remove(0, _tail.Length - MaxOutput / 2);
            }
        }

        public void Append(string text) => Append(text.AsSpan());

        public override string ToString()
        {
            lock (_head)
            {
                var tail = _tail.Length > MaxOutput / 2 ? _tail.ToString(_tail.Length - MaxOutput / 2, MaxOutput / 2) : _tail.ToString();
                var omitted = _total - _head.Length - tail.Length;
                return omitted > 0 ? $"{_head}\n… {omitted} characters left out …\n{tail}" : _head.ToString() + tail;
            }
        }
    }
}
