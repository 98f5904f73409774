using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.IntegrationTests.Routing;

/// <summary>
/// A real nginx (the machine's Debian package) with its own prefix, config, pid file and error log under a temp directory and
/// free loopback ports — never the system instance. Its config is the one docs/nginx.md tells users to write:
/// <list type="bullet">
/// <item><see cref="ReloadUrl"/>: <c>proxy_pass http://shop;</c> — the <c>reload</c> mode upstream (file <see cref="ReloadUpstreamFile"/>,
/// started as a hand-written block pointing at blue, as a user moves their existing upstream there).</item>
/// <item><see cref="LuaUrl"/>: <c>shoplua_blue</c>/<c>shoplua_green</c> chosen per request from the shared dict — the <c>lua</c> mode
/// (file <see cref="LuaUpstreamFile"/>, written by the router on attach).</item>
/// <item><see cref="SlotEndpoint"/>: the loopback-only location that reads and sets the dict.</item>
/// </list>
/// </summary>
public sealed class NginxTestServer : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/nginx";
    private const string ModulesDirectory = "/usr/lib/nginx/modules";
    private const string Install = "apt-get update && apt-get install -y nginx libnginx-mod-http-lua lua-resty-core";

    private NginxTestServer(string directory, int reloadPort, int luaPort, int controlPort)
    {
        Directory = directory;
        ReloadUrl = new Uri($"http://127.0.0.1:{reloadPort}/");
        LuaUrl = new Uri($"http://127.0.0.1:{luaPort}/");
        SlotEndpoint = new Uri($"http://127.0.0.1:{controlPort}/controlplane/slot");
        TrafficEndpoint = new Uri($"http://127.0.0.1:{controlPort}/controlplane/traffic");
    }

    public string Directory { get; }
    public string ConfigFile => Path.Combine(Directory, "nginx.conf");
    public string ErrorLog => Path.Combine(Directory, "error.log");
    public string UpstreamDirectory => Path.Combine(Directory, "controlplane");
    public string ReloadUpstreamFile => Path.Combine(UpstreamDirectory, "shop.conf");
    public string LuaUpstreamFile => Path.Combine(UpstreamDirectory, "shop-lua.conf");
    public Uri ReloadUrl { get; }
    public Uri LuaUrl { get; }
    public Uri SlotEndpoint { get; }

    /// <summary>The loopback-only location that reports the per-slot traffic the Lua counted.</summary>
    public Uri TrafficEndpoint { get; }

    /// <summary>What the router's <c>nginxArguments</c> must be to address this instance (and what it was started with).</summary>
    public string[] Arguments => ["-p", Directory + "/", "-c", ConfigFile, "-e", ErrorLog];

    /// <summary>How many graceful reloads the master has done (it logs each SIGHUP at notice level).</summary>
    public int ReloadCount => File.Exists(ErrorLog)
        ? File.ReadLines(ErrorLog).Count(line => line.Contains("signal 1 (SIGHUP) received", StringComparison.Ordinal))
        : 0;

    /// <summary>
    /// Waits (at most 10 s) until the master has logged at least <paramref name="count"/> reloads: <c>nginx -s reload</c> only
    /// signals it, so the count read right after a reload-mode attach may lag.
    /// </summary>
    public async Task WaitForReloadsAsync(int count, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 200 && ReloadCount < count; i++)
            await Task.Delay(50, cancellationToken);
        Assert.True(ReloadCount >= count, $"nginx logged {ReloadCount} reloads, expected {count}\n{ErrorLogTail()}");
    }

    /// <summary>Fails (never skips) with what to install when nginx or its Lua module is missing: CI installs them.</summary>
    /// <summary>
    /// Waits (at most 10 s) until only one generation of workers runs. After a reload the old workers keep accepting for a
    /// moment with the previous configuration, so load started at once could meet upstreams that configuration lacks.
    /// </summary>
    public async Task WaitForSettledWorkersAsync(CancellationToken cancellationToken)
    {
        var pidText = await File.ReadAllTextAsync(Path.Combine(Directory, "nginx.pid"), cancellationToken);
        var master = int.Parse(pidText.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < 200 && WorkersOf(master) > Workers; i++)
            await Task.Delay(50, cancellationToken);
        Assert.True(WorkersOf(master) <= Workers, $"nginx still runs {WorkersOf(master)} workers, expected {Workers}\n{ErrorLogTail()}");
    }

    private const int Workers = 2; // worker_processes in the config below

    private static int WorkersOf(int master) =>
        System.IO.Directory.EnumerateDirectories("/proc").Count(d => int.TryParse(Path.GetFileName(d), out _) && ParentOf(d) == master);

    private static int ParentOf(string procDirectory)
    {
        try
        {
            // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so read after the last ')'.
            var stat = File.ReadAllText(Path.Combine(procDirectory, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException) { return -1; }
    }

    public static void RequireInstalled()
    {
        string[] required = [Binary, Path.Combine(ModulesDirectory, "ndk_http_module.so"), Path.Combine(ModulesDirectory, "ngx_http_lua_module.so")];
        var missing = required.Where(path => !File.Exists(path)).ToList();
        if (missing.Count > 0)
            Assert.Fail($"nginx with the Lua module is required for these tests; missing {string.Join(", ", missing)}. Install it with: {Install}");
    }

    public static async Task<NginxTestServer> StartAsync(Uri initialReloadBackend, CancellationToken cancellationToken)
    {
        RequireInstalled();
        var directory = System.IO.Directory.CreateTempSubdirectory("cp-nginx-").FullName;
        var server = new NginxTestServer(directory, FreePort(), FreePort(), FreePort());
        // Workers run as nobody when the tests run as root: they must be able to reach the temp paths.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
        System.IO.Directory.CreateDirectory(server.UpstreamDirectory);
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "tmp"));
        // As a user does when moving their existing upstream block into the file ControlPlane will own.
        await File.WriteAllTextAsync(server.ReloadUpstreamFile,
            $"upstream shop {{\n    server {initialReloadBackend.Host}:{initialReloadBackend.Port};\n}}\n", cancellationToken);
        await File.WriteAllTextAsync(server.ConfigFile, server.Config(), cancellationToken);
        await server.StartAsync(cancellationToken);
        return server;
    }

    /// <summary>Starts the master (it daemonizes once its sockets are bound, so the ports answer when this returns).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var (exitCode, output) = await RunAsync([.. Arguments], cancellationToken);
        if (exitCode != 0)
            Assert.Fail($"nginx did not start (exit code {exitCode}): {output}\n{ErrorLogTail()}");
    }

    /// <summary>Fast shutdown, then waits until the master is gone so the ports are free and the shared dict is lost.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var pidFile = Path.Combine(Directory, "nginx.pid");
        if (!File.Exists(pidFile)) return;
        // nginx -t and a failed -s reload may leave an empty pid file behind: then there is no master to stop.
        if (!int.TryParse((await File.ReadAllTextAsync(pidFile, cancellationToken)).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var pid))
            return;
        await RunAsync([.. Arguments, "-s", "stop"], cancellationToken);
        for (var i = 0; i < 100 && IsRunning(pid); i++)
            await Task.Delay(50, cancellationToken);
        if (IsRunning(pid))
            Process.GetProcessById(pid).Kill(entireProcessTree: true);
    }

    public string ErrorLogTail() =>
        File.Exists(ErrorLog) ? "nginx error.log (tail):\n" + string.Join('\n', File.ReadLines(ErrorLog).TakeLast(15)) : "(no nginx error.log)";

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { } // a leftover temp directory is not worth failing a test over
    }

    private string Config() => $$"""
        # The test's own nginx: nothing here touches the system instance.
        load_module {{ModulesDirectory}}/ndk_http_module.so;
        load_module {{ModulesDirectory}}/ngx_http_lua_module.so;
        worker_processes 2;
        pid nginx.pid;
        error_log {{ErrorLog}} notice;
        events { worker_connections 1024; }

        http {
            access_log off;
            client_body_temp_path tmp/body;
            proxy_temp_path tmp/proxy;
            fastcgi_temp_path tmp/fastcgi;
            uwsgi_temp_path tmp/uwsgi;
            scgi_temp_path tmp/scgi;

            lua_shared_dict controlplane 1m;
            lua_shared_dict controlplane_traffic 1m;
        {{TrafficInitLua}}
            include {{UpstreamDirectory}}/*.conf;

            # reload mode
            server {
                listen 127.0.0.1:{{ReloadUrl.Port}};
                location / {
                    proxy_pass http://shop;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                }
            }

            # lua mode
            server {
                listen 127.0.0.1:{{LuaUrl.Port}};
                location / {
                    set_by_lua_block $shoplua_slot {
                        return ngx.shared.controlplane:get("shoplua") or ngx.var.shoplua_default_slot
                    }
                    proxy_pass http://shoplua_$shoplua_slot;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    log_by_lua_block { controlplane_traffic.count("shoplua", ngx.var.shoplua_slot) }
                }
            }

            # ControlPlane's slot endpoint: loopback only
            server {
                listen 127.0.0.1:{{SlotEndpoint.Port}};
                location = /controlplane/slot {
                    allow 127.0.0.1;
                    allow ::1;
                    deny all;
        {{SlotLocationLua}}
                }
                location = /controlplane/traffic {
                    allow 127.0.0.1;
                    allow ::1;
                    deny all;
        {{TrafficLocationLua}}
                }
            }
        }
        """;

    /// <summary>The slot location's Lua, verbatim as in docs/nginx.md.</summary>
    public const string SlotLocationLua = """
                    content_by_lua_block {
                        local name = ngx.var.arg_upstream
                        if not name or not name:match("^[%a_][%w_]*$") then
                            ngx.status = 400
                            ngx.say("?upstream=NAME is required")
                            return
                        end
                        local method = ngx.req.get_method()
                        if method == "PUT" then
                            ngx.req.read_body()
                            local slot = ngx.req.get_body_data()
                            if slot ~= "blue" and slot ~= "green" then
                                ngx.status = 400
                                ngx.say("the body must be blue or green")
                                return
                            end
                            -- The slot becoming live counts its traffic afresh (docs/nginx.md, "Measuring traffic").
                            if controlplane_traffic and ngx.shared.controlplane:get(name) ~= slot then
                                controlplane_traffic.restart(name, slot)
                            end
                            local ok, err = ngx.shared.controlplane:set(name, slot)
                            if not ok then
                                ngx.status = 500
                                ngx.say("cannot store the slot: ", err)
                                return
                            end
                        elseif method ~= "GET" then
                            ngx.status = 405
                            ngx.say("GET or PUT")
                            return
                        end
                        ngx.header["X-ControlPlane-Upstreams"] = ngx.var[name .. "_upstreams"] or ""
                        ngx.say(ngx.shared.controlplane:get(name) or ngx.var[name .. "_default_slot"] or "")
                    }
        """;

    /// <summary>The traffic counters' Lua (http block), verbatim as in docs/nginx.md.</summary>
    public const string TrafficInitLua = """
            init_by_lua_block {
                -- Per application and slot: requests, 5xx answers and a latency histogram (ms bounds below), each slot's
                -- counts starting afresh when it becomes live. ControlPlane reads them at /controlplane/traffic.
                controlplane_traffic = { bounds = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 } }
                local t = controlplane_traffic
                function t.count(name, slot)
                    if slot ~= "blue" and slot ~= "green" then return end
                    local dict = ngx.shared.controlplane_traffic
                    local key = name .. ":" .. slot .. ":"
                    dict:add(key .. "since", ngx.now())
                    dict:incr(key .. "requests", 1, 0)
                    if ngx.status >= 500 then dict:incr(key .. "errors", 1, 0) end
                    local ms = (tonumber(ngx.var.request_time) or 0) * 1000
                    local i = 1
                    while t.bounds[i] and ms > t.bounds[i] do i = i + 1 end
                    dict:incr(key .. "b" .. i, 1, 0)
                end
                function t.restart(name, slot)
                    local dict = ngx.shared.controlplane_traffic
                    local key = name .. ":" .. slot .. ":"
                    dict:set(key .. "requests", 0)
                    dict:set(key .. "errors", 0)
                    for i = 1, #t.bounds + 1 do dict:set(key .. "b" .. i, 0) end
                    dict:set(key .. "since", ngx.now())
                end
                function t.report(name)
                    local dict = ngx.shared.controlplane_traffic
                    local slots = {}
                    for _, slot in ipairs({ "blue", "green" }) do
                        local key = name .. ":" .. slot .. ":"
                        local buckets = {}
                        for i = 1, #t.bounds + 1 do buckets[i] = string.format("%d", dict:get(key .. "b" .. i) or 0) end
                        local since = dict:get(key .. "since") or ngx.now()
                        slots[#slots + 1] = string.format('"%s":{"since":"%s.%03dZ","requests":%d,"errors":%d,"buckets":[%s]}',
                            slot, os.date("!%Y-%m-%dT%H:%M:%S", math.floor(since)), math.floor((since % 1) * 1000),
                            dict:get(key .. "requests") or 0, dict:get(key .. "errors") or 0, table.concat(buckets, ","))
                    end
                    return '{"measuring":true,"boundsMs":[' .. table.concat(t.bounds, ",") .. '],' .. table.concat(slots, ",") .. '}'
                end
            }
        """;

    /// <summary>The traffic location's Lua, verbatim as in docs/nginx.md.</summary>
    public const string TrafficLocationLua = """
                    content_by_lua_block {
                        local name = ngx.var.arg_upstream
                        if not name or not name:match("^[%a_][%w_]*$") then
                            ngx.status = 400
                            ngx.say("?upstream=NAME is required")
                            return
                        end
                        ngx.header["Content-Type"] = "application/json"
                        ngx.say(controlplane_traffic.report(name))
                    }
        """;

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string[] arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(Binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await stderr + await stdout).Trim());
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
