using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ControlPlane.Core.Deployments;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Core.Routing;

/// <summary>
/// The <c>nginx</c> router: manages one application's upstream include file inside an nginx that ControlPlane does not run.
/// <list type="bullet">
/// <item><c>reload</c>: the file holds one upstream pointing at the live slot; a switch rewrites it atomically, runs
/// <c>nginx -t</c> and a graceful <c>nginx -s reload</c>, and restores the previous file on any failure.</item>
/// <item><c>lua</c>: the file holds both slots' upstreams and the default slot; a switch sets a Lua shared dict through a
/// loopback location (no reload, so no client connection is dropped) and rewrites the default, which nginx uses after a
/// restart empties the dict.</item>
/// </list>
/// The file starts with a marker naming the slot it points at. See docs/nginx.md for the nginx side.
/// </summary>
public sealed class NginxRouter : ITrafficRouter, ITrafficMeasuringRouter, IDisposable
{
    public const string KindName = "nginx";

    private const string SlotMarker = "# controlplane-live-slot: ";
    private const string UpstreamsHeader = "X-ControlPlane-Upstreams";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan ReloadDeadline = TimeSpan.FromSeconds(10);

    private readonly DataPlaneProbe probe;
    private readonly ILogger logger;
    // Per upstream file: attach, switch and the flow's revert of one application never interleave their write-test-reload.
    private readonly ConcurrentDictionary<string, SemaphoreSlim> fileLocks = new(StringComparer.Ordinal);
    private readonly HttpClient luaClient = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(10),
    })
    { Timeout = TimeSpan.FromSeconds(5) };

    /// <param name="probe">Used by <see cref="VerifyDataPlaneAsync"/> against the configured public URL.</param>
    public NginxRouter(DataPlaneProbe probe, ILogger<NginxRouter>? logger = null)
    {
        this.probe = probe;
        this.logger = logger ?? NullLogger<NginxRouter>.Instance;
    }

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => NginxRouterSettings.Validate(settings);

    public string DescribeSwitch(RouterBinding binding, Slot from, Slot to)
    {
        var s = NginxRouterSettings.Parse(binding.Settings);
        return s.Mode == NginxSwitchMode.Lua
            ? $"nginx upstream {s.UpstreamName}: the shared dict flips from {s.UpstreamName}_{from.Name()} to {s.UpstreamName}_{to.Name()} ({binding.EndpointOf(to)}) without a reload; the default in {s.UpstreamFile} follows."
            : $"nginx upstream {s.UpstreamName} in {s.UpstreamFile}: {binding.EndpointOf(from)} is replaced by {binding.EndpointOf(to)}, checked with nginx -t, then a graceful reload.";
    }

    /// <summary>Makes sure the upstream file exists and points at <paramref name="liveSlot"/>; never starts or restarts nginx.</summary>
    public async Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken)
    {
        var settings = NginxRouterSettings.Parse(binding.Settings);
        await ApplyAsync(binding, settings, liveSlot, attaching: true, cancellationToken);
        return settings.PublicUrl;
    }

    public async Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken)
    {
        var settings = NginxRouterSettings.Parse(binding.Settings);
        if (settings.Mode == NginxSwitchMode.Reload)
            return MarkedSlot(await ReadFileAsync(settings.UpstreamFile, cancellationToken));

        try
        {
            // The dict, not the file, is what the data plane uses.
            return (await ReadNginxStateAsync(binding, settings, cancellationToken)).Slot;
        }
        catch (RouterException ex)
        {
            logger.LogWarning("Cannot tell which slot nginx serves for {Application}: {Reason}", binding.Application, ex.Message);
            return null;
        }
    }

    public Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken) =>
        ApplyAsync(binding, NginxRouterSettings.Parse(binding.Settings), target, attaching: false, cancellationToken);

    public Task<DataPlaneVerification> VerifyDataPlaneAsync(
        RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        NginxRouterSettings settings;
        try
        {
            settings = NginxRouterSettings.Parse(binding.Settings);
        }
        catch (RouterException ex)
        {
            return Task.FromResult(DataPlaneVerification.Fail(ex.Message));
        }
        return probe.VerifyAsync(settings.PublicUrl, binding.VerifyPath, expectedSlot, expectedVersion, cancellationToken);
    }

    /// <summary>
    /// Leaves nginx and the file alone: nginx's configuration includes the file, so deleting it would break nginx's next
    /// reload. Removing the application from nginx is the operator's edit.
    /// </summary>
    public Task DetachAsync(string application, CancellationToken cancellationToken)
    {
        logger.LogInformation("nginx router for {Application} detached; its upstream file and nginx configuration are left as they are", application);
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        luaClient.Dispose();
        foreach (var gate in fileLocks.Values)
            gate.Dispose();
    }

    private async Task ApplyAsync(RouterBinding binding, NginxRouterSettings settings, Slot target, bool attaching, CancellationToken cancellationToken)
    {
        var gate = fileLocks.GetOrAdd(settings.UpstreamFile, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            var previous = await ReadFileAsync(settings.UpstreamFile, cancellationToken);
            var desired = Render(binding, settings, target);
            if (settings.Mode == NginxSwitchMode.Reload)
                await ApplyByReloadAsync(binding, settings, target, previous, desired, attaching, cancellationToken);
            else
                await ApplyByLuaAsync(binding, settings, target, previous, desired, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task ApplyByReloadAsync(
        RouterBinding binding, NginxRouterSettings settings, Slot target, string? previous, string desired, bool attaching,
        CancellationToken cancellationToken)
    {
        if (previous == desired)
        {
            logger.LogDebug("nginx upstream {Upstream} of {Application} already points at {Slot}", settings.UpstreamName, binding.Application, target.Name());
            return;
        }

        await WriteAtomicallyAsync(settings.UpstreamFile, desired, cancellationToken);
        var tested = false;
        try
        {
            await RunCheckedAsync(settings, ["-t"], $"nginx -t rejected the upstream for {binding.Application} ({target.Name()})", cancellationToken);
            tested = true;
            await RunCheckedAsync(settings, ["-s", "reload"], $"nginx -s reload failed for {binding.Application} ({target.Name()})", cancellationToken);
        }
        catch (RouterException ex) when (attaching && tested)
        {
            // The file is valid and names the recorded live slot: keeping it is what makes nginx serve that slot once it runs.
            throw new RouterException($"{ex.Message}. The upstream file {settings.UpstreamFile} points at {target.Name()} and passed nginx -t; " +
                                      "nginx serves it after its next start or reload.", ex);
        }
        catch (Exception ex)
        {
            var restored = await RestoreAsync(settings.UpstreamFile, previous, reload: null);
            logger.LogWarning("Not switching {Application} to {Slot} through nginx: {Reason}", binding.Application, target.Name(), ex.Message);
            if (ex is RouterException)
                throw new RouterException($"{ex.Message}. Traffic stays on the previous upstream;{restored}", ex);
            throw;
        }

        logger.LogInformation("nginx upstream {Upstream} of {Application} now points at {Slot} ({Endpoint}); nginx reloaded",
            settings.UpstreamName, binding.Application, target.Name(), binding.EndpointOf(target));
    }

    private async Task ApplyByLuaAsync(
        RouterBinding binding, NginxRouterSettings settings, Slot target, string? previous, string desired, CancellationToken cancellationToken)
    {
        // Asked first: when nginx does not answer, nothing has been changed yet.
        var state = await ReadNginxStateAsync(binding, settings, cancellationToken);
        var upstreams = LuaUpstreams(binding, settings).Version;
        if (previous == desired && state.Slot == target && state.Upstreams == upstreams)
        {
            logger.LogDebug("nginx already sends {Application} to {Slot}", binding.Application, target.Name());
            return;
        }

        // Upstream servers only reach nginx through a reload. nginx itself says which upstreams it runs, so a file written
        // before a crash but never loaded is caught too; a plain switch changes only the slot and needs no reload.
        var upstreamsChanged = state.Upstreams != upstreams;
        var served = state.Slot;
        var wrote = false;
        var reloaded = false;
        try
        {
            if (previous != desired)
            {
                await WriteAtomicallyAsync(settings.UpstreamFile, desired, cancellationToken);
                wrote = true;
            }
            if (upstreamsChanged)
            {
                logger.LogInformation("nginx upstreams of {Application} are new or their servers changed: testing and reloading nginx once",
                    binding.Application);
                await RunCheckedAsync(settings, ["-t"], $"nginx -t rejected the upstreams for {binding.Application}", cancellationToken);
                await RunCheckedAsync(settings, ["-s", "reload"], $"nginx -s reload failed for {binding.Application}", cancellationToken);
                reloaded = true;
                await WaitForUpstreamsAsync(binding, settings, upstreams, cancellationToken);
            }
            if (served != target)
                await SetDictAsync(binding, settings, target, cancellationToken);
        }
        catch (Exception ex) when (wrote)
        {
            var restored = await RestoreAsync(settings.UpstreamFile, previous, reloaded ? settings : null);
            logger.LogWarning("Not switching {Application} to {Slot} through nginx: {Reason}", binding.Application, target.Name(), ex.Message);
            if (ex is RouterException)
                throw new RouterException($"{ex.Message}. Traffic stays on {served?.Name() ?? "the previous slot"};{restored}", ex);
            throw;
        }

        logger.LogInformation("nginx sends {Application} to {Slot} ({Endpoint}) without a reload; default slot in {File} updated",
            binding.Application, target.Name(), binding.EndpointOf(target), settings.UpstreamFile);
    }

    /// <summary>Puts the previous file back (or removes a file that did not exist); says how that went, for the error message.</summary>
    private async Task<string> RestoreAsync(string path, string? previous, NginxRouterSettings? reload)
    {
        try
        {
            // Not cancellable: a half-done switch must not be left behind because the caller gave up.
            if (previous is null) File.Delete(path);
            else await WriteAtomicallyAsync(path, previous, CancellationToken.None);
            if (reload is not null)
                await RunCheckedAsync(reload, ["-s", "reload"], "nginx -s reload of the restored upstreams failed", CancellationToken.None);
            return previous is null ? $" the new upstream file {path} was removed." : $" the previous upstream file {path} was restored.";
        }
        catch (Exception ex) when (ex is RouterException or IOException or UnauthorizedAccessException)
        {
            logger.LogError(ex, "Restoring the nginx upstream file {File} failed", path);
            return $" restoring the previous upstream file {path} ALSO FAILED: {ex.Message} — check it by hand.";
        }
    }

    private static string Render(RouterBinding binding, NginxRouterSettings settings, Slot live)
    {
        var text = new StringBuilder()
            .Append("# Managed by ControlPlane for application ").Append(binding.Application)
            .Append(" (nginx router, mode ").Append(settings.Mode == NginxSwitchMode.Lua ? "lua" : "reload")
            .Append("). Rewritten on every switch: do not edit.\n")
            .Append(SlotMarker).Append(live.Name()).Append('\n');

        if (settings.Mode == NginxSwitchMode.Reload)
            return AppendUpstream(text, settings.UpstreamName, binding.EndpointOf(live), live).ToString();

        text.Append(LuaUpstreams(binding, settings).Text);
        // Read by set_by_lua_block when the shared dict is empty, i.e. after nginx restarted.
        return text.Append("map \"\" $").Append(settings.UpstreamName).Append("_default_slot {\n    default ").Append(live.Name()).Append(";\n}\n")
            .ToString();
    }

    /// <summary>
    /// Both slots' upstreams, and a variable naming their version (a hash) that the slot location reports, so the router can
    /// tell which upstreams nginx has loaded.
    /// </summary>
    private static (string Text, string Version) LuaUpstreams(RouterBinding binding, NginxRouterSettings settings)
    {
        var upstreams = new StringBuilder();
        AppendUpstream(upstreams, $"{settings.UpstreamName}_blue", binding.BlueEndpoint, Slot.Blue);
        AppendUpstream(upstreams, $"{settings.UpstreamName}_green", binding.GreenEndpoint, Slot.Green);
        var version = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(upstreams.ToString())))[..12];
        upstreams.Append("map \"\" $").Append(settings.UpstreamName).Append("_upstreams {\n    default ").Append(version).Append(";\n}\n");
        return (upstreams.ToString(), version);
    }

    private static StringBuilder AppendUpstream(StringBuilder text, string name, Uri endpoint, Slot slot)
    {
        if (endpoint.Scheme != Uri.UriSchemeHttp || endpoint.AbsolutePath != "/" || !string.IsNullOrEmpty(endpoint.Query))
            throw new RouterException($"The {slot.Name()} endpoint {endpoint} cannot be an nginx upstream server: only http://host:port/ is supported.");
        // keepalive only takes effect with "proxy_http_version 1.1; proxy_set_header Connection \"\";" in the location (docs/nginx.md).
        return text.Append("upstream ").Append(name).Append(" {\n    server ").Append(endpoint.Host).Append(':').Append(endpoint.Port)
            .Append(";\n    keepalive 16;\n}\n");
    }

    private static Slot? MarkedSlot(string? content)
    {
        if (content is null) return null;
        foreach (var line in content.Split('\n'))
            if (line.StartsWith(SlotMarker, StringComparison.Ordinal) && SlotExtensions.TryParse(line[SlotMarker.Length..].Trim(), out var slot))
                return slot;
        return null;
    }

    private static async Task<string?> ReadFileAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllTextAsync(path, cancellationToken);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RouterException($"Cannot read the nginx upstream file {path}: {ex.Message}", ex);
        }
    }

    /// <summary>Temp file in the same directory + rename, so nginx (and a concurrent reload) only ever sees a whole file.</summary>
    private static async Task WriteAtomicallyAsync(string path, string content, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
            throw new RouterException($"The directory of the nginx upstream file, {directory}, does not exist: create it and let ControlPlane's user write to it.");

        // Not *.conf, so an "include .../*.conf" never picks up a half-written temp file.
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            try { File.Delete(temp); } catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
            if (ex is OperationCanceledException) throw;
            throw new RouterException($"Cannot write the nginx upstream file {path}: {ex.Message}", ex);
        }
    }

    /// <summary>Runs nginx with the configured arguments plus <paramref name="command"/>; throws with nginx's own output when it fails.</summary>
    private async Task RunCheckedAsync(NginxRouterSettings settings, string[] command, string failure, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(settings.NginxBinary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var argument in settings.NginxArguments.Concat(command))
            start.ArgumentList.Add(argument);
        Deployers.ChildProcessEnvironment.Apply(start);
        var commandLine = string.Join(' ', command);

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            throw new RouterException($"{failure}: cannot run {settings.NginxBinary} ({ex.Message}); " +
                                      $"set router.settings.{NginxRouterSettings.NginxBinaryField} to the nginx executable");
        }

        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            if (cancellationToken.IsCancellationRequested) throw;
            throw new RouterException($"{failure}: {settings.NginxBinary} {commandLine} did not finish within {CommandTimeout.TotalSeconds:0} s");
        }

        // nginx writes its verdict ("[emerg] ... in FILE:LINE", "test failed") to stderr.
        var output = string.Join("; ", (await stderr + "\n" + await stdout)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (process.ExitCode != 0)
            throw new RouterException($"{failure} (exit code {process.ExitCode}): {(output.Length > 0 ? output : "no output")}");
        logger.LogDebug("{Binary} {Command}: {Output}", settings.NginxBinary, commandLine, output);
    }

    /// <summary>Which slot nginx serves and which upstreams version it has loaded (empty when none), from the slot location.</summary>
    private async Task<(Slot? Slot, string Upstreams)> ReadNginxStateAsync(RouterBinding binding, NginxRouterSettings settings, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, LuaUrl(settings));
        var (body, upstreams) = await SendLuaAsync(binding, settings, request, cancellationToken);
        return (SlotExtensions.TryParse(body, out var slot) ? slot : null, upstreams);
    }

    /// <summary>
    /// <c>nginx -s reload</c> only signals the master; until it has started workers on the new configuration, old workers
    /// would route a switched request to an upstream they do not know. Each poll is a new connection, so it reaches whichever
    /// worker accepts now.
    /// </summary>
    private async Task WaitForUpstreamsAsync(RouterBinding binding, NginxRouterSettings settings, string upstreams, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        var seen = "";
        while (deadline.Elapsed < ReloadDeadline)
        {
            seen = (await ReadNginxStateAsync(binding, settings, cancellationToken)).Upstreams;
            if (seen == upstreams) return;
            await Task.Delay(50, cancellationToken);
        }
        throw new RouterException(seen.Length == 0
            ? $"nginx's slot location at {settings.LuaEndpoint} reports no upstreams version for {binding.Application} after the reload: " +
              $"either nginx does not include {settings.UpstreamFile}, or the location lacks the {UpstreamsHeader} line from docs/nginx.md"
            : $"nginx did not load the new upstreams of {binding.Application} within {ReloadDeadline.TotalSeconds:0} s after the reload " +
              $"(it reports upstreams version '{seen}', expected '{upstreams}'): check nginx's error log");
    }

    private async Task SetDictAsync(RouterBinding binding, NginxRouterSettings settings, Slot target, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, LuaUrl(settings))
        {
            Content = new StringContent(target.Name(), Encoding.ASCII, "text/plain"),
        };
        var (body, _) = await SendLuaAsync(binding, settings, request, cancellationToken);
        // The location answers with the slot it now serves: proof the dict holds the new value.
        if (body != target.Name())
            throw new RouterException($"nginx at {settings.LuaEndpoint} answered '{body}' after setting {binding.Application} to {target.Name()}: " +
                                      "is its location the one from docs/nginx.md?");
    }

    private async Task<(string Body, string Upstreams)> SendLuaAsync(
        RouterBinding binding, NginxRouterSettings settings, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // A new connection each time: a kept-alive one could stay with a worker that still runs the previous configuration.
        request.Headers.ConnectionClose = true;
        try
        {
            using var response = await luaClient.SendAsync(request, cancellationToken);
            var body = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
            if (!response.IsSuccessStatusCode)
                throw new RouterException($"nginx answered HTTP {(int)response.StatusCode} at {request.RequestUri} for {binding.Application}" +
                                          $"{(body.Length > 0 ? $": '{(body.Length > 200 ? body[..200] + "…" : body)}'" : "")}" +
                                          " (the location must allow ControlPlane's address; see docs/nginx.md)");
            return (body, response.Headers.TryGetValues(UpstreamsHeader, out var values) ? string.Join(",", values).Trim() : "");
        }
        catch (HttpRequestException ex)
        {
            throw new RouterException($"nginx does not answer at {settings.LuaEndpoint} for {binding.Application} ({ex.Message}): " +
                                      "is nginx running, with the ControlPlane location from docs/nginx.md?", ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new RouterException($"nginx did not answer at {settings.LuaEndpoint} for {binding.Application} within {luaClient.Timeout.TotalSeconds:0} s", ex);
        }
    }

    /// <summary>
    /// The per-slot traffic nginx's Lua counted (docs/nginx.md: <c>controlplane_traffic</c>), read from the loopback-only
    /// traffic location. Reload mode or no <c>trafficEndpoint</c>: a <see cref="RouterException"/> saying so, which makes a
    /// traffic check inconclusive (never a pass).
    /// </summary>
    public async Task<RouterTraffic?> ReadTrafficAsync(RouterBinding binding, CancellationToken cancellationToken)
    {
        var settings = NginxRouterSettings.Parse(binding.Settings);
        if (settings.Mode != NginxSwitchMode.Lua)
            throw new RouterException($"the nginx router of {binding.Application} is in reload mode, which does not count traffic per slot: " +
                                      "lua mode with trafficEndpoint does (docs/nginx.md)");
        if (settings.TrafficEndpoint is not { } endpoint)
            throw new RouterException($"the nginx router of {binding.Application} has no trafficEndpoint, so nginx's per-slot counts are not read " +
                                      "(docs/nginx.md, \"Measuring traffic\")");
        var builder = new UriBuilder(endpoint);
        var query = builder.Query.TrimStart('?');
        builder.Query = (query.Length > 0 ? query + "&" : "") + "upstream=" + settings.UpstreamName;
        using var request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
        try
        {
            using var response = await luaClient.SendAsync(request, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
                throw new RouterException($"nginx answered HTTP {(int)response.StatusCode} at {endpoint} for {binding.Application}: " +
                                          $"'{(body.Length > 200 ? body[..200] + "…" : body.Trim())}' (is it the traffic location from docs/nginx.md?)");
            var traffic = JsonSerializer.Deserialize<RouterTraffic>(body, TrafficJson);
            if (traffic is null || traffic.Blue is null || traffic.Green is null || traffic.BoundsMs is null ||
                traffic.Blue.Buckets?.Length != traffic.BoundsMs.Length + 1 || traffic.Green.Buckets?.Length != traffic.BoundsMs.Length + 1)
                throw new RouterException($"nginx's traffic location at {endpoint} answered something other than per-slot counts for {binding.Application}");
            return traffic;
        }
        catch (JsonException ex)
        {
            throw new RouterException($"nginx's traffic location at {endpoint} answered something other than JSON for {binding.Application}", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new RouterException($"nginx does not answer at {endpoint} for {binding.Application} ({ex.Message})", ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new RouterException($"nginx did not answer at {endpoint} for {binding.Application} within {luaClient.Timeout.TotalSeconds:0} s", ex);
        }
    }

    private static readonly JsonSerializerOptions TrafficJson = new(JsonSerializerDefaults.Web);

    private static Uri LuaUrl(NginxRouterSettings settings)
    {
        var builder = new UriBuilder(settings.LuaEndpoint!);
        var query = builder.Query.TrimStart('?');
        builder.Query = (query.Length > 0 ? query + "&" : "") + "upstream=" + settings.UpstreamName;
        return builder.Uri;
    }
}
