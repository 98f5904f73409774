using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Core.Checks;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using Xunit;

namespace ControlPlane.IntegrationTests.Routing;

/// <summary>
/// The nginx router against a real nginx (own prefix, free ports, Lua module) and real Kestrel slot backends. When nginx or
/// its Lua module is missing these tests fail saying what to install; they never skip.
/// </summary>
public sealed class NginxRouterTests : IAsyncLifetime
{
    private const string App = "shop";
    private TestBackend blue = null!;
    private TestBackend green = null!;
    private NginxTestServer nginx = null!;
    private NginxRouter router = null!;
    private readonly HttpClient client = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        blue = await TestBackend.StartAsync(App, "1.0.0", "blue", Ct);
        green = await TestBackend.StartAsync(App, "2.0.0", "green", Ct);
        nginx = await NginxTestServer.StartAsync(blue.Url, Ct);
        // A short probe deadline keeps the failing-verification checks quick; success is normally immediate.
        router = new NginxRouter(new DataPlaneProbe(deadline: TimeSpan.FromSeconds(2)));
    }

    public async ValueTask DisposeAsync()
    {
        router.Dispose();
        client.Dispose();
        await nginx.DisposeAsync();
        await blue.DisposeAsync();
        await green.DisposeAsync();
    }

    private RouterBinding ReloadBinding(Uri? greenEndpoint = null, string? nginxBinary = null) => new(App,
        JsonSerializer.SerializeToElement(new
        {
            mode = "reload",
            publicUrl = nginx.ReloadUrl,
            upstreamFile = nginx.ReloadUpstreamFile,
            upstreamName = "shop",
            nginxBinary = nginxBinary ?? NginxTestServer.Binary,
            nginxArguments = nginx.Arguments,
        }),
        blue.Url, greenEndpoint ?? green.Url);

    private RouterBinding LuaBinding(bool measured = false) => new(App,
        measured
            ? JsonSerializer.SerializeToElement(new
            {
                mode = "lua",
                publicUrl = nginx.LuaUrl,
                upstreamFile = nginx.LuaUpstreamFile,
                upstreamName = "shoplua",
                nginxArguments = nginx.Arguments,
                luaEndpoint = nginx.SlotEndpoint,
                trafficEndpoint = nginx.TrafficEndpoint,
            })
            : JsonSerializer.SerializeToElement(new
            {
                mode = "lua",
                publicUrl = nginx.LuaUrl,
                upstreamFile = nginx.LuaUpstreamFile,
                upstreamName = "shoplua",
                nginxArguments = nginx.Arguments,
                luaEndpoint = nginx.SlotEndpoint,
            }),
        blue.Url, green.Url);

    /// <summary>Reads nginx's counts until <paramref name="done"/> holds (the log phase counts just after the answer is sent).</summary>
    private async Task<RouterTraffic> TrafficWhenAsync(RouterBinding binding, Func<RouterTraffic, bool> done)
    {
        RouterTraffic traffic = null!;
        for (var i = 0; i < 100; i++)
        {
            traffic = (await router.ReadTrafficAsync(binding, Ct))!;
            if (done(traffic)) return traffic;
            await Task.Delay(20, Ct);
        }
        return traffic;
    }

    [Fact]
    public async Task Lua_mode_counts_each_slots_requests_5xx_and_latency_and_a_traffic_check_judges_them()
    {
        var binding = LuaBinding(measured: true);
        await router.AttachAsync(binding, Slot.Blue, Ct);
        var before = (await router.ReadTrafficAsync(binding, Ct))!;
        Assert.True(before.Measuring);
        for (var i = 0; i < 10; i++) (await client.GetAsync(new Uri(nginx.LuaUrl, "/"), Ct)).EnsureSuccessStatusCode();
        for (var i = 0; i < 2; i++) Assert.Equal(HttpStatusCode.InternalServerError, (await client.GetAsync(new Uri(nginx.LuaUrl, "/fail"), Ct)).StatusCode);
        var counted = await TrafficWhenAsync(binding, t => t.Blue.Requests - before.Blue.Requests >= 12);
        Assert.Equal(12, counted.Blue.Requests - before.Blue.Requests);
        Assert.Equal(2, counted.Blue.Errors - before.Blue.Errors);
        Assert.Equal(counted.Blue.Requests, counted.Blue.Buckets.Sum());
        Assert.Equal([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000], counted.BoundsMs);
        Assert.Equal(0, counted.Green.Requests);

        // Switching makes green live: its counts start afresh there, blue's stay as they were.
        var switchedAt = DateTimeOffset.UtcNow.AddSeconds(-1);
        await router.SwitchAsync(binding, Slot.Green, Ct);
        var afterSwitch = (await router.ReadTrafficAsync(binding, Ct))!;
        Assert.Equal(0, afterSwitch.Green.Requests);
        Assert.True(afterSwitch.Green.Since >= switchedAt, $"green counts since {afterSwitch.Green.Since:O}, switched at {switchedAt:O}");
        Assert.Equal(counted.Blue.Requests, afterSwitch.Blue.Requests);
        for (var i = 0; i < 4; i++) (await client.GetAsync(new Uri(nginx.LuaUrl, "/"), Ct)).EnsureSuccessStatusCode();
        await client.GetAsync(new Uri(nginx.LuaUrl, "/fail"), Ct);
        var measured = await TrafficWhenAsync(binding, t => t.Green.Requests >= 5);
        Assert.Equal((5L, 1L), (measured.Green.Requests, measured.Green.Errors));

        // The traffic check reads nginx's counts through the same interface as the embedded router's.
        var check = new HttpCheck { Kind = HttpCheck.TrafficKind, Name = "real-traffic", MaxErrorRate = 0.01, MinRequests = 5 };
        var target = new CheckTarget(green.Url, App, Slot.Green, "2.0.0")
        {
            Monitoring = true, RouterKind = NginxRouter.KindName, Traffic = ct => router.ReadTrafficAsync(binding, ct),
        };
        var result = await new TrafficCheckRunner().RunAsync(check, target, Ct);
        Assert.True(result.Failed, result.Message);
        Assert.Contains("error rate 20% (1 of 5 requests answered 5xx since the switch), needs ≤ 1%", result.Message);
    }

    [Fact]
    public async Task Without_a_traffic_endpoint_or_in_reload_mode_a_traffic_check_on_nginx_is_inconclusive_never_a_pass()
    {
        var check = new HttpCheck { Kind = HttpCheck.TrafficKind, Name = "real-traffic", MaxErrorRate = 0.01, MinRequests = 1 };
        foreach (var (binding, why) in new[] { (LuaBinding(), "has no trafficEndpoint"), (ReloadBinding(), "reload mode, which does not count traffic") })
        {
            var target = new CheckTarget(green.Url, App, Slot.Green, "2.0.0")
            {
                Monitoring = true, RouterKind = NginxRouter.KindName, Traffic = ct => router.ReadTrafficAsync(binding, ct),
            };
            var result = await new TrafficCheckRunner().RunAsync(check, target, Ct);
            Assert.True(result.Inconclusive, result.Message);
            Assert.Contains(why, result.Message);
        }
        var settings = JsonSerializer.SerializeToElement(new
        {
            mode = "reload", publicUrl = nginx.ReloadUrl, upstreamFile = nginx.ReloadUpstreamFile, upstreamName = "shop",
            trafficEndpoint = nginx.TrafficEndpoint,
        });
        Assert.Equal(NginxRouterSettings.TrafficEndpointField, Assert.Single(router.ValidateSettings(settings)).Field);
    }

    private async Task<BackendAnswer> GetAnswerAsync(Uri url) => (await client.GetFromJsonAsync<BackendAnswer>(url, Ct))!;

    [Fact]
    public async Task Reload_mode_switches_verifies_reads_back_and_is_a_no_op_when_already_there()
    {
        var binding = ReloadBinding();

        var publicUrl = await router.AttachAsync(binding, Slot.Blue, Ct);
        Assert.Equal(nginx.ReloadUrl, publicUrl);
        Assert.Contains("# controlplane-live-slot: blue", await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct));
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));
        var blueProof = await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.True(blueProof.Verified, blueProof.Message + "\n" + nginx.ErrorLogTail());
        // Attaching took over the hand-written upstream: one reload.
        await nginx.WaitForReloadsAsync(1, Ct);

        var reloads = nginx.ReloadCount;
        await router.SwitchAsync(binding, Slot.Green, Ct);
        var greenProof = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);
        Assert.True(greenProof.Verified, greenProof.Message + "\n" + nginx.ErrorLogTail());
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
        // A graceful reload lets old workers drain: a new connection may still meet one for a moment (the reason the docs
        // recommend Lua mode). Within the same window the flow's probe allows, green must be the one answering.
        var answer = await GetAnswerAsync(publicUrl);
        for (var i = 0; i < 50 && answer != new BackendAnswer(App, "2.0.0", "green"); i++)
        {
            await Task.Delay(100, Ct);
            answer = await GetAnswerAsync(publicUrl);
        }
        Assert.Equal(new BackendAnswer(App, "2.0.0", "green"), answer);
        var file = await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct);
        Assert.Contains($"server 127.0.0.1:{green.Url.Port};", file);
        Assert.DoesNotContain($":{blue.Url.Port};", file);
        Assert.Equal(reloads + 1, nginx.ReloadCount);

        // Already there: neither the file nor nginx is touched.
        var written = File.GetLastWriteTimeUtc(nginx.ReloadUpstreamFile);
        await router.SwitchAsync(binding, Slot.Green, Ct);
        await router.AttachAsync(binding, Slot.Green, Ct);
        Assert.Equal(reloads + 1, nginx.ReloadCount);
        Assert.Equal(written, File.GetLastWriteTimeUtc(nginx.ReloadUpstreamFile));

        // Verification is not on faith: the wrong expectation fails, naming what answered.
        var wrong = await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.False(wrong.Verified);
        Assert.Contains("answered 2.0.0 from green", wrong.Message);

        await router.SwitchAsync(binding, Slot.Blue, Ct);
        var back = await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.True(back.Verified, back.Message);
        Assert.Empty(Directory.GetFiles(nginx.UpstreamDirectory, "*.tmp", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(nginx.UpstreamDirectory, ".*"));
    }

    [Fact]
    public async Task Lua_mode_switches_without_a_reload_reads_the_slot_from_nginx_and_survives_a_restart()
    {
        var binding = LuaBinding();

        Assert.Equal(nginx.LuaUrl, await router.AttachAsync(binding, Slot.Blue, Ct));
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));
        var blueProof = await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.True(blueProof.Verified, blueProof.Message + "\n" + nginx.ErrorLogTail());

        // Attaching loaded the new upstreams with one reload; switching needs none.
        var reloads = nginx.ReloadCount;
        await router.SwitchAsync(binding, Slot.Green, Ct);
        var greenProof = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);
        Assert.True(greenProof.Verified, greenProof.Message + "\n" + nginx.ErrorLogTail());
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
        Assert.Equal(reloads, nginx.ReloadCount);
        var file = await File.ReadAllTextAsync(nginx.LuaUpstreamFile, Ct);
        Assert.Contains("# controlplane-live-slot: green", file);
        Assert.Contains("default green;", file);

        var written = File.GetLastWriteTimeUtc(nginx.LuaUpstreamFile);
        await router.SwitchAsync(binding, Slot.Green, Ct);
        await router.AttachAsync(binding, Slot.Green, Ct);
        Assert.Equal(written, File.GetLastWriteTimeUtc(nginx.LuaUpstreamFile));
        Assert.Equal(reloads, nginx.ReloadCount);

        // A restart empties the shared dict; the default the router wrote into the file keeps traffic on green.
        await nginx.StopAsync(Ct);
        await nginx.StartAsync(Ct);
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
        Assert.Equal(new BackendAnswer(App, "2.0.0", "green"), await GetAnswerAsync(nginx.LuaUrl));

        await router.SwitchAsync(binding, Slot.Blue, Ct);
        Assert.Equal(new BackendAnswer(App, "1.0.0", "blue"), await GetAnswerAsync(nginx.LuaUrl));
    }

    /// <summary>The acceptance test: switches under continuous keep-alive load, each verified as the flow does, zero failed requests.</summary>
    [Fact(Timeout = 120_000)]
    public async Task Lua_mode_switches_under_continuous_keep_alive_load_without_a_failed_request()
    {
        var ct = TestContext.Current.CancellationToken;
        const int Workers = 8, Cycles = 20;
        var binding = LuaBinding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, ct);
        // The attach reloaded nginx once (new upstreams); what is measured is switching, so load starts on settled workers.
        await nginx.WaitForSettledWorkersAsync(ct);

        var reloads = nginx.ReloadCount;
        var load = await KeepAliveLoad.StartAsync(publicUrl, Workers, ct);
        try
        {
            foreach (var (slot, version) in Enumerable.Repeat(new[] { (Slot.Green, "2.0.0"), (Slot.Blue, "1.0.0") }, Cycles).SelectMany(x => x))
            {
                await router.SwitchAsync(binding, slot, ct);
                var proof = await router.VerifyDataPlaneAsync(binding, slot, version, ct);
                Assert.True(proof.Verified, proof.Message);
                await Task.Delay(50, ct);
            }
        }
        finally
        {
            await load.StopAsync();
        }

        load.AssertNoFailedRequest(nginx.ErrorLogTail());
        Assert.Equal(reloads, nginx.ReloadCount);
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, ct));
    }

    [Fact]
    public async Task An_upstream_that_fails_nginx_t_keeps_the_previous_upstream_serving_and_reports_nginx_message()
    {
        // A misconfigured green slot: nginx refuses "server 127.0.0.1:0".
        var binding = ReloadBinding(greenEndpoint: new Uri("http://127.0.0.1:0/"));
        await router.AttachAsync(binding, Slot.Blue, Ct);
        var before = await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct);

        var ex = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(binding, Slot.Green, Ct));

        Assert.Contains("invalid port in upstream \"127.0.0.1:0\"", ex.Message);
        Assert.Contains("test failed", ex.Message);
        Assert.Contains("Traffic stays on the previous upstream", ex.Message);
        Assert.Equal(before, await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct));
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));
        var proof = await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.True(proof.Verified, proof.Message);
    }

    [Fact]
    public async Task A_broken_edit_elsewhere_in_the_nginx_config_fails_the_switch_with_nginx_message_and_changes_nothing()
    {
        var binding = ReloadBinding();
        await router.AttachAsync(binding, Slot.Blue, Ct);
        var before = await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct);
        // Someone else's typo in another included file, not yet reloaded.
        await File.WriteAllTextAsync(Path.Combine(nginx.UpstreamDirectory, "zz-typo.conf"), "proxy_buffer on;\n", Ct);

        var ex = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(binding, Slot.Green, Ct));

        Assert.Contains("unknown directive \"proxy_buffer\"", ex.Message);
        Assert.Contains("zz-typo.conf", ex.Message);
        Assert.Equal(before, await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct));
        Assert.Equal(new BackendAnswer(App, "1.0.0", "blue"), await GetAnswerAsync(nginx.ReloadUrl));
    }

    [Fact]
    public async Task Nginx_not_running_is_a_clear_router_error_and_leaves_the_files_as_they_were()
    {
        var reload = ReloadBinding();
        var lua = LuaBinding();
        await router.AttachAsync(reload, Slot.Blue, Ct);
        await router.AttachAsync(lua, Slot.Blue, Ct);
        var reloadFile = await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct);
        var luaFile = await File.ReadAllTextAsync(nginx.LuaUpstreamFile, Ct);
        await nginx.StopAsync(Ct);

        var reloadError = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(reload, Slot.Green, Ct));
        Assert.Contains("nginx -s reload failed", reloadError.Message);
        Assert.Contains("nginx.pid", reloadError.Message); // nginx's own words: it found no running master
        Assert.Equal(reloadFile, await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct));
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(reload, Ct));

        var luaError = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(lua, Slot.Green, Ct));
        Assert.Contains($"nginx does not answer at {nginx.SlotEndpoint}", luaError.Message);
        Assert.Equal(luaFile, await File.ReadAllTextAsync(nginx.LuaUpstreamFile, Ct));
        Assert.Null(await router.ReadLiveSlotAsync(lua, Ct));

        var verification = await router.VerifyDataPlaneAsync(reload, Slot.Blue, "1.0.0", Ct);
        Assert.False(verification.Verified);
        Assert.Contains("connection refused", verification.Message);
    }

    [Fact]
    public async Task A_missing_nginx_binary_names_the_setting_and_restores_the_file()
    {
        var binding = ReloadBinding(nginxBinary: "/nonexistent/sbin/nginx");
        var before = await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct);

        var ex = await Assert.ThrowsAsync<RouterException>(() => router.AttachAsync(binding, Slot.Blue, Ct));

        Assert.Contains("/nonexistent/sbin/nginx", ex.Message);
        Assert.Contains("router.settings.nginxBinary", ex.Message);
        Assert.Equal(before, await File.ReadAllTextAsync(nginx.ReloadUpstreamFile, Ct));
    }

    [Fact]
    public async Task The_slot_location_in_docs_nginx_md_is_the_one_these_tests_run()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ControlPlane.sln")))
            directory = directory.Parent;
        Assert.True(directory is not null, "repository root (ControlPlane.sln) not found above " + AppContext.BaseDirectory);
        var docs = await File.ReadAllTextAsync(Path.Combine(directory.FullName, "docs", "nginx.md"), Ct);

        static string Flat(string text) => string.Join(' ', text.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(Flat(NginxTestServer.SlotLocationLua), Flat(docs));
        Assert.Contains(Flat(NginxTestServer.TrafficInitLua), Flat(docs));
        Assert.Contains(Flat(NginxTestServer.TrafficLocationLua), Flat(docs));
        Assert.Contains(Flat("lua_shared_dict controlplane_traffic 1m;"), Flat(docs));
        Assert.Contains(Flat("log_by_lua_block { controlplane_traffic.count(\"shop\", ngx.var.shop_slot) }"), Flat(docs));
        Assert.Contains(Flat("lua_shared_dict controlplane 1m;"), Flat(docs));
        Assert.Contains(Flat("""
            set_by_lua_block $shop_slot {
                return ngx.shared.controlplane:get("shop") or ngx.var.shop_default_slot
            }
            proxy_pass http://shop_$shop_slot;
            """), Flat(docs));
    }

    [Fact]
    public void Settings_are_validated_field_by_field()
    {
        Assert.Equal("nginx", router.Kind);
        Assert.Empty(router.ValidateSettings(ReloadBinding().Settings));
        Assert.Empty(router.ValidateSettings(LuaBinding().Settings));
        Assert.Empty(router.ValidateSettings(JsonSerializer.SerializeToElement(new
        {
            mode = "reload", publicUrl = "https://shop.example.com/", upstreamFile = "/etc/nginx/controlplane/shop.conf", upstreamName = "shop",
        })));

        var errors = router.ValidateSettings(JsonSerializer.SerializeToElement(new
        {
            mode = "restart", publicUrl = "shop.example.com", upstreamFile = "controlplane/shop.conf", upstreamName = "demo-shop",
            nginxBinary = "", nginxArguments = new object[] { "-c", 3, "-s" }, listenPort = 8080,
        }));
        Assert.Equal(
            ["listenPort", "mode", "nginxArguments[1]", "nginxArguments[2]", "nginxBinary", "publicUrl", "upstreamFile", "upstreamName"],
            errors.Select(e => e.Field).Order(StringComparer.Ordinal));

        var lua = router.ValidateSettings(JsonSerializer.SerializeToElement(new
        {
            mode = "lua", publicUrl = "http://127.0.0.1:8088/", upstreamFile = "/etc/nginx/controlplane/shop.conf", upstreamName = "shop",
        }));
        Assert.Equal("luaEndpoint", Assert.Single(lua).Field);
        Assert.Contains("required in lua mode", lua[0].Message);

        Assert.Equal("", Assert.Single(router.ValidateSettings(JsonSerializer.SerializeToElement("nginx"))).Field);
        Assert.Equal(["mode", "publicUrl", "upstreamFile", "upstreamName"],
            router.ValidateSettings(JsonSerializer.SerializeToElement(new { })).Select(e => e.Field).Order(StringComparer.Ordinal));
    }
}
