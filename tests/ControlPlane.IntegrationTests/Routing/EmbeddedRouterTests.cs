using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Core;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using Microsoft.Extensions.Options;
using Xunit;

namespace ControlPlane.IntegrationTests.Routing;

/// <summary>The embedded router (real router processes) against real Kestrel backends on loopback: no mocks.</summary>
public sealed class EmbeddedRouterTests : IAsyncLifetime
{
    private const string App = "shop";
    private TestBackend blue = null!;
    private TestBackend green = null!;
    private EmbeddedRouter router = null!;
    private readonly string dataDirectory = Directory.CreateTempSubdirectory("cp-router-").FullName;
    private readonly HttpClient client = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        blue = await TestBackend.StartAsync(App, "1.0.0", "blue", Ct);
        green = await TestBackend.StartAsync(App, "2.0.0", "green", Ct);
        // A short probe deadline keeps the failing-verification tests quick; the router process's first answer can take a moment.
        router = NewRouter();
    }

    private EmbeddedRouter NewRouter() =>
        new(new DataPlaneProbe(deadline: TimeSpan.FromSeconds(3)), Options.Create(new ControlPlaneOptions { DataDirectory = dataDirectory }));

    public async ValueTask DisposeAsync()
    {
        // Router processes outlive their EmbeddedRouter (as they outlive ControlPlane): stop them explicitly.
        await using (var cleanup = NewRouter()) await cleanup.StopAllAsync(CancellationToken.None);
        await router.DisposeAsync();
        try { Directory.Delete(dataDirectory, recursive: true); } catch (IOException) { }
        client.Dispose();
        await blue.DisposeAsync();
        await green.DisposeAsync();
    }

    private RouterBinding Binding(int port = 0, Uri? greenEndpoint = null) =>
        new(App, JsonSerializer.SerializeToElement(new { listenAddress = "127.0.0.1", listenPort = port }), blue.Url, greenEndpoint ?? green.Url);

    private async Task<BackendAnswer> GetAnswerAsync(Uri url)
    {
        var answer = await client.GetFromJsonAsync<BackendAnswer>(url, Ct);
        return answer!;
    }

    [Fact]
    public async Task Attach_serves_the_live_slot_and_switch_sends_new_requests_to_the_other()
    {
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, Ct);

        Assert.Equal("127.0.0.1", publicUrl.Host);
        Assert.NotEqual(0, publicUrl.Port);
        Assert.Equal("/", publicUrl.AbsolutePath);
        Assert.Equal(new BackendAnswer(App, "1.0.0", "blue"), await GetAnswerAsync(publicUrl));
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));

        await router.SwitchAsync(binding, Slot.Green, Ct);
        // Same keep-alive client connection to the router: routing is per request, not per connection.
        Assert.Equal(new BackendAnswer(App, "2.0.0", "green"), await GetAnswerAsync(publicUrl));
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));

        await router.SwitchAsync(binding, Slot.Green, Ct); // no-op
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
        Assert.Equal("2.0.0", (await GetAnswerAsync(publicUrl)).Version);

        await router.SwitchAsync(binding, Slot.Blue, Ct);
        Assert.Equal("1.0.0", (await GetAnswerAsync(publicUrl)).Version);
    }

    [Fact]
    public async Task Attach_is_idempotent_and_keeps_the_route_of_a_running_router()
    {
        var binding = Binding();
        var first = await router.AttachAsync(binding, Slot.Blue, Ct);
        var pid = router.ProcessOf(App)!.Pid;
        await router.SwitchAsync(binding, Slot.Green, Ct);

        // The caller reconciles the live slot with its records (ApplicationRuntime); attach itself never moves traffic.
        var second = await router.AttachAsync(binding, Slot.Blue, Ct);

        Assert.Equal(first, second);
        Assert.Equal(pid, router.ProcessOf(App)!.Pid);
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
        Assert.Equal("2.0.0", (await GetAnswerAsync(first)).Version);
        Assert.Equal(first, router.PublicUrlOf(App));
    }

    [Fact]
    public async Task The_router_is_a_process_of_its_own_that_outlives_its_EmbeddedRouter_and_is_adopted_on_the_same_URL()
    {
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, Ct);
        await router.SwitchAsync(binding, Slot.Green, Ct);
        var process = router.ProcessOf(App)!;
        Assert.NotEqual(Environment.ProcessId, process.Pid);
        Assert.True(process.OwnSession, "the router runs in its own session, out of reach of a terminal's Ctrl+C");
        // The runtime settings the router was profiled with come from its start, not from whatever ControlPlane's environment holds.
        var environment = File.ReadAllText($"/proc/{process.Pid}/environ").Split('\0');
        Assert.All(EmbeddedRouter.ProcessEnvironment, v => Assert.Contains($"{v.Key}={v.Value}", environment));

        await router.DisposeAsync(); // as ControlPlane stopping or crashing
        Assert.Equal("2.0.0", (await GetAnswerAsync(publicUrl)).Version);

        router = NewRouter(); // as ControlPlane starting again: the recorded live slot (blue) is what it asks for
        var adopted = await router.AttachAsync(binding, Slot.Blue, Ct);
        Assert.Equal(publicUrl, adopted);
        Assert.Equal(process.Pid, router.ProcessOf(App)!.Pid);
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
        await router.SwitchAsync(binding, Slot.Blue, Ct);
        Assert.Equal("1.0.0", (await GetAnswerAsync(publicUrl)).Version);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_router_process_that_dies_is_started_again_on_its_port_with_its_last_route()
    {
        var ct = TestContext.Current.CancellationToken;
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, ct);
        await router.SwitchAsync(binding, Slot.Green, ct);
        var killed = router.ProcessOf(App)!.Pid;

        using (var kill = System.Diagnostics.Process.Start("kill", ["-KILL", killed.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await kill.WaitForExitAsync(ct);

        while (router.ProcessOf(App) is not { } restarted || restarted.Pid == killed)
            await Task.Delay(100, ct);
        Assert.Equal(publicUrl, router.PublicUrlOf(App));
        Assert.Equal("2.0.0", (await GetAnswerAsync(publicUrl)).Version);
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
    }

    [Fact]
    public async Task The_control_channel_answers_only_with_the_routers_own_secret()
    {
        var binding = Binding();
        await router.AttachAsync(binding, Slot.Blue, Ct);
        var process = router.ProcessOf(App)!;
        var secretFile = Path.Combine(dataDirectory, "routers", App, "control.secret");
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secretFile));
        var control = new Uri($"http://127.0.0.1:{process.ControlPort}/route");

        using var anonymous = await client.GetAsync(control, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Put, control)
        {
            Content = JsonContent.Create(new { live = "green", blue = blue.Url, green = green.Url, expectedRevision = 1 }),
        };
        wrong.Headers.Authorization = new("Bearer", new string('0', 64));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(wrong, Ct)).StatusCode);
        // The public port never serves the control endpoints: /route is forwarded to the live slot like any path.
        Assert.Equal("1.0.0", (await GetAnswerAsync(new Uri(router.PublicUrlOf(App)!, "/route"))).Version);
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));

        using var right = new HttpRequestMessage(HttpMethod.Get, control);
        right.Headers.Authorization = new("Bearer", File.ReadAllText(secretFile).Trim());
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(right, Ct)).StatusCode);
    }

    [Fact]
    public async Task An_application_that_is_not_attached_has_no_live_slot_and_cannot_switch()
    {
        var binding = Binding();

        Assert.Null(await router.ReadLiveSlotAsync(binding, Ct));
        var ex = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(binding, Slot.Green, Ct));
        Assert.Contains(App, ex.Message);
        Assert.False((await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct)).Verified);
    }

    [Fact]
    public async Task Verification_through_the_router_succeeds_only_for_the_version_and_slot_that_answer()
    {
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, Ct);

        var ok = await router.VerifyDataPlaneAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.True(ok.Verified, ok.Message);
        Assert.Contains("1.0.0", ok.Message);

        var wrongVersion = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);
        Assert.False(wrongVersion.Verified);
        Assert.Contains($"public URL {publicUrl} answered 1.0.0 from blue, expected 2.0.0 on green", wrongVersion.Message);

        var wrongSlot = await router.VerifyDataPlaneAsync(binding, Slot.Green, "1.0.0", Ct);
        Assert.False(wrongSlot.Verified);
        Assert.Contains("answered 1.0.0 from blue, expected 1.0.0 on green", wrongSlot.Message);

        await router.SwitchAsync(binding, Slot.Green, Ct);
        var afterSwitch = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);
        Assert.True(afterSwitch.Verified, afterSwitch.Message);
    }

    [Fact]
    public async Task Probe_says_connection_refused_when_nothing_listens()
    {
        using var probe = new DataPlaneProbe(deadline: TimeSpan.FromMilliseconds(500));
        var url = new Uri($"http://127.0.0.1:{FreePort()}/");

        var result = await probe.VerifyAsync(url, "/", Slot.Green, "2.0.0", Ct);

        Assert.False(result.Verified);
        Assert.Contains($"public URL {url} did not answer: connection refused, expected 2.0.0 on green", result.Message);
    }

    [Fact]
    public async Task Probe_accepts_plain_text_with_the_version_and_rejects_answers_without_it()
    {
        using var probe = new DataPlaneProbe(deadline: TimeSpan.FromMilliseconds(300));

        var text = await probe.VerifyAsync(blue.Url, "/text", Slot.Blue, "1.0.0", Ct);
        Assert.True(text.Verified, text.Message);

        var textWithoutVersion = await probe.VerifyAsync(blue.Url, "/text", Slot.Blue, "2.0.0", Ct);
        Assert.False(textWithoutVersion.Verified);
        Assert.Contains("answered a body without 2.0.0: 'shop 1.0.0 on blue', expected 2.0.0 on blue", textWithoutVersion.Message);

        // JSON naming a slot but no version is not proof of the version.
        var noVersion = await probe.VerifyAsync(blue.Url, "/headers", Slot.Blue, "1.0.0", Ct);
        Assert.False(noVersion.Verified);
        Assert.Contains("answered no version from blue, expected 1.0.0 on blue", noVersion.Message);
    }

    [Fact]
    public async Task A_live_slot_that_does_not_answer_gets_a_502_naming_application_and_slot()
    {
        var deadGreen = new Uri($"http://127.0.0.1:{FreePort()}/");
        var binding = Binding(greenEndpoint: deadGreen);
        var publicUrl = await router.AttachAsync(binding, Slot.Green, Ct);

        using var response = await client.GetAsync(publicUrl, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains(App, body);
        Assert.Contains("green", body);
        Assert.DoesNotContain("   at ", body); // no stack trace

        var verification = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);
        Assert.False(verification.Verified);
        Assert.Contains("answered HTTP 502", verification.Message);
    }

    [Fact]
    public async Task A_port_in_use_is_a_router_error_naming_the_port_and_the_setting()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var ex = await Assert.ThrowsAsync<RouterException>(() => router.AttachAsync(Binding(port), Slot.Blue, Ct));

        Assert.Contains(port.ToString(), ex.Message);
        Assert.Contains("listenPort", ex.Message);
        Assert.Null(await router.ReadLiveSlotAsync(Binding(port), Ct));
    }

    [Fact]
    public async Task Detach_stops_the_listener_and_frees_its_port()
    {
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, Ct);
        Assert.Equal("1.0.0", (await GetAnswerAsync(publicUrl)).Version);

        await router.DetachAsync(App, Ct);

        Assert.Null(await router.ReadLiveSlotAsync(binding, Ct));
        using var freshClient = new HttpClient();
        await Assert.ThrowsAsync<HttpRequestException>(() => freshClient.GetAsync(publicUrl, Ct));
        using var rebind = new TcpListener(IPAddress.Loopback, publicUrl.Port);
        rebind.Start(); // throws if the router still holds the port
        rebind.Stop();

        // And the same fixed port can be attached again.
        var again = await router.AttachAsync(Binding(publicUrl.Port), Slot.Green, Ct);
        Assert.Equal(publicUrl, again);
        Assert.Equal("2.0.0", (await GetAnswerAsync(again)).Version);
    }

    [Fact]
    public async Task The_backend_sees_X_Forwarded_For()
    {
        var publicUrl = await router.AttachAsync(Binding(), Slot.Blue, Ct);

        var headers = await client.GetFromJsonAsync<Dictionary<string, string?>>(new Uri(publicUrl, "/headers"), Ct);

        Assert.Equal("127.0.0.1", headers!["xForwardedFor"]);
        Assert.Equal(publicUrl.Authority, headers["xForwardedHost"]);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_request_in_flight_during_a_switch_completes_on_the_old_slot()
    {
        var ct = TestContext.Current.CancellationToken;
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, ct);

        var slow = client.GetFromJsonAsync<BackendAnswer>(new Uri(publicUrl, "/slow"), ct);
        await blue.SlowRequestArrived.Task.WaitAsync(TimeSpan.FromSeconds(10), ct);
        await router.SwitchAsync(binding, Slot.Green, ct);

        Assert.Equal("2.0.0", (await GetAnswerAsync(publicUrl)).Version);
        Assert.False(slow.IsCompleted);
        blue.ReleaseSlowRequests.SetResult();
        Assert.Equal(new BackendAnswer(App, "1.0.0", "blue"), await slow);
        Assert.False(green.SlowRequestArrived.Task.IsCompleted);
    }

    /// <summary>
    /// The router moves new requests before it has saved the route (the fsync was most of switch → served), so a route it
    /// cannot save must be taken back: the switch fails and traffic stays where it was.
    /// </summary>
    [Fact]
    public async Task A_route_that_cannot_be_saved_is_refused_and_traffic_stays_on_the_old_slot()
    {
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, Ct);
        var routeFile = Path.Combine(dataDirectory, "routers", App, "route.json");
        File.Delete(routeFile);
        Directory.CreateDirectory(routeFile);
        File.WriteAllText(Path.Combine(routeFile, "in-the-way"), "a directory where the route file goes: the rename onto it fails");

        try
        {
            await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(binding, Slot.Green, Ct));
            Assert.Equal(new BackendAnswer(App, "1.0.0", "blue"), await GetAnswerAsync(publicUrl));
            Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));
        }
        finally
        {
            Directory.Delete(routeFile, recursive: true);
        }
        await router.SwitchAsync(binding, Slot.Green, Ct);
        Assert.Equal(new BackendAnswer(App, "2.0.0", "green"), await GetAnswerAsync(publicUrl));
    }

    /// <summary>The acceptance test: 20 blue→green→blue cycles under continuous keep-alive load, zero failed requests.</summary>
    [Fact(Timeout = 120_000)]
    public async Task Continuous_load_across_20_switch_and_rollback_cycles_has_no_failed_request()
    {
        var ct = TestContext.Current.CancellationToken;
        const int Workers = 8, Cycles = 20;
        var binding = Binding();
        var publicUrl = await router.AttachAsync(binding, Slot.Blue, ct);

        var load = await KeepAliveLoad.StartAsync(publicUrl, Workers, ct);
        try
        {
            for (var cycle = 0; cycle < Cycles; cycle++)
            {
                await router.SwitchAsync(binding, Slot.Green, ct);
                await Task.Delay(50, ct);
                await router.SwitchAsync(binding, Slot.Blue, ct);
                await Task.Delay(50, ct);
            }
        }
        finally
        {
            await load.StopAsync();
        }

        load.AssertNoFailedRequest();
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, ct));
    }

    [Fact]
    public void Settings_are_validated_field_by_field()
    {
        var valid = JsonSerializer.SerializeToElement(new { listenAddress = "127.0.0.1", listenPort = 8080 });
        Assert.Empty(router.ValidateSettings(valid));
        Assert.Empty(router.ValidateSettings(JsonSerializer.SerializeToElement(new { listenAddress = "::1", listenPort = 0 })));

        var invalid = JsonSerializer.SerializeToElement(new { listenAddress = "localhost", listenPort = 70000 });
        var errors = router.ValidateSettings(invalid);
        Assert.Contains(errors, e => e.Field == "listenAddress");
        Assert.Contains(errors, e => e.Field == "listenPort");

        Assert.Contains(router.ValidateSettings(JsonSerializer.SerializeToElement(new { listenPort = -1 })), e => e.Field == "listenPort");
        Assert.Contains(router.ValidateSettings(JsonSerializer.SerializeToElement(new { listenPort = "8080" })), e => e.Field == "listenPort");
        Assert.Equal("embedded", router.Kind);
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
