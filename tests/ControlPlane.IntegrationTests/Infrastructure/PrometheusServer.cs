using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>
/// A real Prometheus (Debian's <c>prometheus</c>; <c>.ci/run</c> installs it) on a free loopback port with a temporary
/// configuration and storage, scraping the given targets every second. Stopped and deleted on dispose.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _output = new();

    private PrometheusServer(Process process, string directory, Uri url)
    {
        _process = process;
        _directory = directory;
        Url = url;
    }

    public Uri Url { get; }

    public static string Binary =>
        new[] { "/usr/bin/prometheus", "/usr/local/bin/prometheus" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("prometheus is not installed (apt-get install -y --no-install-recommends prometheus; .ci/run does it)");

    /// <param name="targets">host:port (and optional metrics path) of each scrape target, one job each.</param>
    /// <param name="bearerToken">Sent as <c>Authorization: Bearer</c> to every target when given.</param>
    public static async Task<PrometheusServer> StartAsync(IEnumerable<(string Job, Uri Target)> targets, CancellationToken cancellationToken, string? bearerToken = null)
    {
        var directory = Directory.CreateTempSubdirectory("cp-prom-").FullName;
        var config = new StringBuilder("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
        foreach (var (job, target) in targets)
        {
            config.Append($"  - job_name: {job}\n    metrics_path: {target.AbsolutePath}\n");
            if (target.Query.Length > 1) config.Append($"    params: {{{string.Join(", ", target.Query.TrimStart('?').Split('&').Select(p => p.Split('=', 2)).Select(p => $"{p[0]}: [{p[1]}]"))}}}\n");
            if (bearerToken is not null) config.Append($"    authorization:\n      credentials: '{bearerToken}'\n");
            config.Append($"    static_configs:\n      - targets: ['{target.Authority}']\n");
        }
        await File.WriteAllTextAsync(Path.Combine(directory, "prometheus.yml"), config.ToString(), cancellationToken);
        var port = Core.Deployers.LoopbackPorts.PickForLater();
        var start = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     $"--config.file={Path.Combine(directory, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(directory, "data")}",
                     $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
                 })
            start.ArgumentList.Add(a);
        // Prometheus needs none of the test run's environment (connection strings, tokens).
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/bin:/bin";
        var process = Process.Start(start)!;
        var server = new PrometheusServer(process, directory, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) => { lock (server._output) server._output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (server._output) server._output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient();
        for (var i = 0; i < 300; i++)
        {
            if (process.HasExited) break;
            try
            {
                if ((await http.GetAsync(new Uri(server.Url, "/-/ready"), cancellationToken)).StatusCode == HttpStatusCode.OK) return server;
            }
            catch (HttpRequestException) { }
            await Task.Delay(100, cancellationToken);
        }
        var output = server.Output;
        await server.DisposeAsync();
        throw new InvalidOperationException($"Prometheus did not become ready: {output}");
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Waits until the instant query returns at least one series (scrapes are every second).</summary>
    public async Task<JsonElement> WaitForSeriesAsync(string query, CancellationToken cancellationToken, int seconds = 30)
    {
        using var http = new HttpClient();
        JsonElement last = default;
        for (var i = 0; i < seconds * 4; i++)
        {
            var body = await http.GetStringAsync(new Uri(Url, $"/api/v1/query?query={Uri.EscapeDataString(query)}"), cancellationToken);
            last = JsonDocument.Parse(body).RootElement.Clone();
            if (last.GetProperty("data").GetProperty("result").GetArrayLength() > 0) return last;
            await Task.Delay(250, cancellationToken);
        }
        throw new TimeoutException($"Prometheus has no series for {query} after {seconds} s: {last}\n{Output}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A tiny real Kestrel serving Prometheus text format whose samples a test sets.</summary>
public sealed class MetricsTarget : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile string _text = "";

    private MetricsTarget(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }
    public string Text { set => _text = value; }

    public static async Task<MetricsTarget> StartAsync(CancellationToken cancellationToken)
    {
        var app = LoopbackServer.Create();
        MetricsTarget? target = null;
        app.Run(context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4";
            return context.Response.WriteAsync(target!._text, context.RequestAborted);
        });
        var url = await LoopbackServer.StartAsync(app, cancellationToken);
        target = new MetricsTarget(app, new Uri(url, "metrics"));
        return target;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
