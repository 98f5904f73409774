using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Core.Deployments;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Hooks;

/// <summary>
/// Lifecycle hooks through the real reconcile loop on a real database: command hooks run as real processes, http hooks
/// call a real loopback server, and the recording router/deployer show whether traffic moved.
/// </summary>
public sealed class LifecycleHookTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly object Quick = new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 2 };
    private static readonly object Watched = new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 300, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 };
    private RecordingAppFactory _factory = null!;
    private readonly string _dir = Directory.CreateTempSubdirectory("cp-hooks-").FullName;

    public async ValueTask InitializeAsync() => _factory = await RecordingAppFactory.StartAsync(postgres);

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static object Sh(string script, int timeoutSeconds = 30, bool idempotent = false, string? workingDirectory = null) =>
        new { kind = "command", command = new[] { "/bin/sh", "-c", script }, timeoutSeconds, idempotent, workingDirectory };

    internal static async Task RegisterAsync(RecordingAppFactory factory, HttpClient admin, string name, object policy, object hooks, object[]? checks = null)
    {
        var response = await admin.PostAsJsonAsync("/api/v1/applications", new
        {
            name,
            router = new { kind = "recording", settings = new { } },
            deployer = new { kind = "recording", settings = new { } },
            checks = checks ?? [],
            policy,
            initialVersion = "1.0.0",
            hooks,
        }, Ct);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
        await admin.PublicUrlAsync(name);
    }

    internal static JsonElement StepOf(JsonElement deployment, string name) =>
        deployment.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);

    /// <summary>Polls the release until <paramref name="done"/> holds (the loop works in the background).</summary>
    internal static async Task<JsonElement> WaitForAsync(HttpClient client, string id, Func<JsonElement, bool> done, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonElement last;
        do
        {
            last = await client.GetJsonAsync($"/api/v1/deployments/{id}");
            if (done(last)) return last;
            await Task.Delay(100, Ct);
        } while (DateTime.UtcNow < deadline);
        Assert.Fail($"{what} did not happen within {seconds} s; last seen: {last}");
        return last;
    }

    private IReadOnlyList<string> RouterCalls(string app) => [.. _factory.Log.Of(app).Where(c => c.StartsWith("router ", StringComparison.Ordinal))];

    [Fact]
    public async Task Command_hooks_run_at_each_point_in_order_with_the_release_in_their_environment_and_nothing_of_ours()
    {
        Environment.SetEnvironmentVariable("CP_HOOK_TEST_SECRET", "must-not-leak");
        using var admin = _factory.Admin();
        var log = Path.Combine(_dir, "points.log");
        const string script = "echo \"$CONTROLPLANE_HOOK $CONTROLPLANE_RELEASE_ID $CONTROLPLANE_VERSION $CONTROLPLANE_FROM_VERSION $CONTROLPLANE_SLOT " +
                              "secret=${CP_HOOK_TEST_SECRET:-none} token=${ControlPlane__Bootstrap__AdminToken:-none} own=$OWN\" >> points.log; echo \"said $CONTROLPLANE_HOOK\"";
        var hook = new { kind = "command", command = new[] { "/bin/sh", "-c", script }, workingDirectory = _dir, env = new Dictionary<string, string> { ["OWN"] = "mine" }, timeoutSeconds = 30 };
        await RegisterAsync(_factory, admin, "h-points", Quick, new { preDeploy = hook, preSwitch = hook, postSwitch = hook, postHold = hook });

        var id = (await admin.StartReleaseAsync("h-points", "2.0.0")).GetProperty("id").GetString()!;
        var done = await WaitForAsync(admin, id, d => StepOf(d, "postHold").GetProperty("state").GetString() == "Succeeded", "postHold after the hold window");

        Assert.Equal("Succeeded", done.GetProperty("state").GetString());
        Assert.Equal(["preDeploy", "deploy", "verify", "approval", "preSwitch", "switch", "postSwitch", "monitor", "postHold"],
            done.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        Assert.Equal([$"preDeploy {id} 2.0.0 1.0.0 green secret=none token=none own=mine", $"preSwitch {id} 2.0.0 1.0.0 green secret=none token=none own=mine",
            $"postSwitch {id} 2.0.0 1.0.0 green secret=none token=none own=mine", $"postHold {id} 2.0.0 1.0.0 green secret=none token=none own=mine"],
            await File.ReadAllLinesAsync(log, Ct));
        var postHold = StepOf(done, "postHold");
        Assert.Equal("said postHold\n", postHold.GetProperty("output").GetString());
        Assert.Equal(0, postHold.GetProperty("exitStatus").GetInt32());
        Assert.Equal(1, postHold.GetProperty("attempts").GetInt32());

        // postHold ran only once the previous slot had been stopped; every run is in the audit trail with its output.
        var audit = (await admin.GetJsonAsync("/api/v1/audit?application=h-points&limit=200")).GetProperty("items").EnumerateArray().ToList();
        long Seq(string action, string? step = null) => audit.Single(e => e.GetProperty("action").GetString() == action &&
            (step is null || e.GetProperty("details").GetString()!.Contains($"\"step\":\"{step}\""))).GetProperty("sequence").GetInt64();
        Assert.True(Seq("slot.stopped") < Seq("hook.started", "postHold"));
        Assert.Contains("said preSwitch", audit.Single(e => e.GetProperty("action").GetString() == "hook.succeeded" &&
            e.GetProperty("details").GetString()!.Contains("\"step\":\"preSwitch\"")).GetProperty("details").GetString());
    }

    [Fact]
    public async Task A_failing_preDeploy_hook_stops_the_release_before_anything_is_deployed()
    {
        using var admin = _factory.Admin();
        await RegisterAsync(_factory, admin, "h-predeploy", Quick, new { preDeploy = Sh("echo 'migration lock held by job 17' >&2; exit 3") });

        var id = (await admin.StartReleaseAsync("h-predeploy", "2.0.0")).GetProperty("id").GetString()!;
        var failed = await admin.WaitForStateAsync(id, "Failed");

        var step = StepOf(failed, "preDeploy");
        Assert.Equal(("Failed", 3), (step.GetProperty("state").GetString(), step.GetProperty("exitStatus").GetInt32()));
        Assert.Contains("migration lock held by job 17", step.GetProperty("output").GetString());
        Assert.Contains("preDeploy hook failed", failed.GetProperty("outcome").GetString());
        Assert.Contains("traffic never moved", failed.GetProperty("outcome").GetString());
        Assert.DoesNotContain(_factory.Log.Of("h-predeploy"), c => c.StartsWith("deployer deploy h-predeploy green", StringComparison.Ordinal));
        Assert.Equal(["router attach h-predeploy blue"], RouterCalls("h-predeploy"));
    }

    [Fact]
    public async Task A_preSwitch_hook_that_times_out_is_killed_with_what_it_started_and_traffic_stays()
    {
        using var admin = _factory.Admin();
        var pidFile = Path.Combine(_dir, "child.pid");
        await RegisterAsync(_factory, admin, "h-timeout", Quick, new { preSwitch = Sh($"sleep 300 & echo $! > {pidFile}; echo started; wait", timeoutSeconds: 1) });

        var id = (await admin.StartReleaseAsync("h-timeout", "2.0.0")).GetProperty("id").GetString()!;
        var failed = await admin.WaitForStateAsync(id, "Failed");

        var step = StepOf(failed, "preSwitch");
        Assert.Contains("timed out", step.GetProperty("message").GetString());
        Assert.Equal("started\n", step.GetProperty("output").GetString());
        Assert.Equal("Failed", StepOf(failed, "switch").GetProperty("state").GetString());
        Assert.Contains("traffic never moved", failed.GetProperty("outcome").GetString());
        Assert.Equal(["router attach h-timeout blue"], RouterCalls("h-timeout"));
        var child = int.Parse((await File.ReadAllTextAsync(pidFile, Ct)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(IsGone(child), $"the hook's background child {child} still runs");
    }

    private static bool IsGone(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        for (var i = 0; i < 50; i++)
        {
            // Killed but not yet reaped by whoever adopted it shows as a zombie ("Z"): it runs no more.
            if (!File.Exists(stat)) return true;
            try { if (File.ReadAllText(stat).Split(") ")[1].StartsWith('Z')) return true; }
            catch (IOException) { return true; }
            Thread.Sleep(100);
        }
        return false;
    }

    [Fact]
    public async Task A_failing_postSwitch_http_hook_rolls_back_like_a_monitoring_breach()
    {
        await using var server = await HookServer.StartAsync();
        server.Status["/post-switch"] = 500;
        using var admin = _factory.Admin();
        await RegisterAsync(_factory, admin, "h-postswitch", Watched,
            new { postSwitch = new { kind = "http", url = new Uri(server.Url, "post-switch").ToString(), expectedStatus = 204, timeoutSeconds = 5 } });

        var id = (await admin.StartReleaseAsync("h-postswitch", "2.0.0")).GetProperty("id").GetString()!;
        var rolledBack = await admin.WaitForStateAsync(id, "RolledBack");

        Assert.Equal(["router attach h-postswitch blue", "router switch h-postswitch green", "router verify h-postswitch green 2.0.0",
            "router switch h-postswitch blue", "router verify h-postswitch blue 1.0.0"], RouterCalls("h-postswitch"));
        Assert.True(rolledBack.GetProperty("rollback").GetProperty("automatic").GetBoolean());
        Assert.Contains("postSwitch hook failed", rolledBack.GetProperty("outcome").GetString());
        var step = StepOf(rolledBack, "postSwitch");
        Assert.Equal(500, step.GetProperty("exitStatus").GetInt32());
        Assert.Contains("answered 500, expected 204", step.GetProperty("message").GetString());
        Assert.Contains("hook server saw POST /post-switch", step.GetProperty("output").GetString());
        var (path, key, body) = Assert.Single(server.Requests);
        Assert.Equal(("/post-switch", $"{id}:postSwitch"), (path, key));
        Assert.Equal((id, "h-postswitch", "2.0.0", "green"), (body.GetProperty("releaseId").GetString(), body.GetProperty("application").GetString(),
            body.GetProperty("version").GetString(), body.GetProperty("slot").GetString()));
    }

    [Fact]
    public async Task A_failing_postHold_hook_is_shown_and_retried_without_touching_traffic()
    {
        using var admin = _factory.Admin();
        var marker = Path.Combine(_dir, "tried-once");
        await RegisterAsync(_factory, admin, "h-posthold", Quick,
            new { postHold = Sh($"if [ -e {marker} ]; then echo cleaned; else touch {marker}; echo 'terraform: state locked'; exit 1; fi") });

        var id = (await admin.StartReleaseAsync("h-posthold", "2.0.0")).GetProperty("id").GetString()!;
        var failedOnce = await WaitForAsync(admin, id, d => StepOf(d, "postHold").GetProperty("state").GetString() == "Failed", "the first postHold failure");
        Assert.Equal("Succeeded", failedOnce.GetProperty("state").GetString());
        Assert.Contains("state locked", StepOf(failedOnce, "postHold").GetProperty("output").GetString());

        var retried = await WaitForAsync(admin, id, d => StepOf(d, "postHold").GetProperty("state").GetString() == "Succeeded", "the postHold retry");
        Assert.Equal(2, StepOf(retried, "postHold").GetProperty("attempts").GetInt32());
        Assert.Equal("Succeeded", retried.GetProperty("state").GetString());
        Assert.Equal(["router attach h-posthold blue", "router switch h-posthold green", "router verify h-posthold green 2.0.0"], RouterCalls("h-posthold"));
        Assert.Equal("green", (await admin.GetJsonAsync("/api/v1/applications/h-posthold")).GetProperty("liveSlot").GetString());
    }

    [Fact]
    public async Task A_breaking_expand_stops_the_release_after_the_live_version_fails_its_checks_again()
    {
        await using var server = await HookServer.StartAsync();
        server.Effects["/expand-breaking"] = () => server.Status["/orders"] = 500;
        _factory.Deployer.Endpoints["h-expand/Blue"] = server.Url;
        _factory.Deployer.Endpoints["h-expand/Green"] = server.Url;
        using var admin = _factory.Admin();
        await RegisterAsync(_factory, admin, "h-expand", Quick, new { }, [new { name = "orders", path = "/orders", retries = 0 }]);

        var good = await admin.PostJsonAsync("/api/v1/applications/h-expand/deployments",
            new { version = "2.0.0", schema = new { expand = new { kind = "http", url = new Uri(server.Url, "expand-ok").ToString() } } });
        Assert.Equal(HttpStatusCode.Accepted, good.StatusCode);
        var goodId = (await good.JsonAsync()).GetProperty("id").GetString()!;
        var succeeded = await admin.WaitForStateAsync(goodId, "Succeeded");
        Assert.Contains("live 1.0.0 on blue still passes its checks", StepOf(succeeded, "expand").GetProperty("message").GetString());

        var bad = await admin.PostJsonAsync("/api/v1/applications/h-expand/deployments",
            new { version = "3.0.0", schema = new { expand = new { kind = "http", url = new Uri(server.Url, "expand-breaking").ToString() } } });
        var badId = (await bad.JsonAsync()).GetProperty("id").GetString()!;
        var failed = await admin.WaitForStateAsync(badId, "Failed");

        Assert.Contains("the expand step was not backward compatible", failed.GetProperty("outcome").GetString());
        Assert.Contains("live version 2.0.0 failed its check 'orders'", failed.GetProperty("outcome").GetString());
        Assert.Equal("Failed", StepOf(failed, "expand").GetProperty("state").GetString());
        Assert.DoesNotContain(_factory.Log.Of("h-expand"), c => c.StartsWith("deployer deploy h-expand blue 3.0.0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Contract_waits_for_the_end_of_the_hold_window_and_rollback_across_it_is_refused()
    {
        using var admin = _factory.Admin();
        var log = Path.Combine(_dir, "contract.log");
        await RegisterAsync(_factory, admin, "h-contract", new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 4 }, new { });

        var start = await admin.PostJsonAsync("/api/v1/applications/h-contract/deployments",
            new { version = "2.0.0", schema = new { expand = Sh("true"), contract = Sh($"echo contracted >> {log}") } });
        var id = (await start.JsonAsync()).GetProperty("id").GetString()!;
        var succeeded = await admin.WaitForStateAsync(id, "Succeeded");

        // Hold window open: the contract waits, the old version is warm, and the next release must wait for the contract.
        var waiting = await WaitForAsync(admin, id, d => StepOf(d, "contract").GetProperty("message").GetString()?.Contains("waits for the end of the hold window") == true, "the contract to wait");
        Assert.Equal("Pending", StepOf(waiting, "contract").GetProperty("state").GetString());
        Assert.False(File.Exists(log));
        var early = await admin.PostJsonAsync("/api/v1/applications/h-contract/deployments", new { version = "3.0.0" });
        Assert.Equal(HttpStatusCode.Conflict, early.StatusCode);
        Assert.Contains("still has its contract/postHold step to run", (await early.JsonAsync()).GetProperty("detail").GetString());

        var contracted = await WaitForAsync(admin, id, d => StepOf(d, "contract").GetProperty("state").GetString() == "Succeeded", "the contract");
        Assert.Equal(["contracted"], await File.ReadAllLinesAsync(log, Ct));
        var audit = (await admin.GetJsonAsync("/api/v1/audit?application=h-contract&limit=200")).GetProperty("items").EnumerateArray().ToList();
        var stopped = audit.Single(e => e.GetProperty("action").GetString() == "slot.stopped").GetProperty("sequence").GetInt64();
        var contractStarted = audit.Single(e => e.GetProperty("action").GetString() == "hook.started" &&
                                                e.GetProperty("details").GetString()!.Contains("\"step\":\"contract\"")).GetProperty("sequence").GetInt64();
        Assert.True(stopped < contractStarted, "the contract ran before the previous slot was stopped");

        var rollback = await admin.PostJsonAsync("/api/v1/applications/h-contract/rollback", new { reason = "try after contract" });
        Assert.Equal(HttpStatusCode.Conflict, rollback.StatusCode);
        Assert.Contains("whose contract step ran", (await rollback.JsonAsync()).GetProperty("detail").GetString());
        var redeploy = await admin.PostJsonAsync("/api/v1/applications/h-contract/deployments", new { version = "1.0.0" });
        Assert.Equal(HttpStatusCode.Conflict, redeploy.StatusCode);
        Assert.Contains("1.0.0 is older than 2.0.0", (await redeploy.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Accepted, (await admin.PostJsonAsync("/api/v1/applications/h-contract/deployments", new { version = "3.0.0" })).StatusCode);
        _ = succeeded;
        _ = contracted;
    }

    [Fact]
    public async Task A_rollback_before_the_contract_is_instant_and_the_contract_never_runs()
    {
        using var admin = _factory.Admin();
        var log = Path.Combine(_dir, "never.log");
        await RegisterAsync(_factory, admin, "h-before", new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 600 }, new { });
        var start = await admin.PostJsonAsync("/api/v1/applications/h-before/deployments",
            new { version = "2.0.0", schema = new { contract = Sh($"echo contracted >> {log}") } });
        var id = (await start.JsonAsync()).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Succeeded");

        var rollback = await admin.PostJsonAsync("/api/v1/applications/h-before/rollback", new { reason = "before contract" });

        Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        var rolledBack = await WaitForAsync(admin, id, d => StepOf(d, "contract").GetProperty("state").GetString() == "Skipped", "the contract to be skipped");
        Assert.Equal("RolledBack", rolledBack.GetProperty("state").GetString());
        Assert.False(File.Exists(log));
    }

    [Fact]
    public async Task Bad_hooks_are_refused_with_the_field_named_and_nothing_registered()
    {
        using var admin = _factory.Admin();
        async Task<string[]> FieldsOf(object hooks)
        {
            var response = await admin.PostAsJsonAsync("/api/v1/applications", new
            {
                name = "h-bad", router = new { kind = "recording", settings = new { } }, deployer = new { kind = "recording", settings = new { } },
                policy = Quick, initialVersion = "1.0.0", hooks,
            }, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            return [.. (await response.JsonAsync()).GetProperty("errors").EnumerateObject().Select(p => p.Name)];
        }

        Assert.Equal(["hooks.preDeploy.kind"], await FieldsOf(new { preDeploy = new { kind = "ftp" } }));
        Assert.Equal(["hooks.preFlight"], await FieldsOf(new { preFlight = Sh("true") }));
        Assert.Equal(["hooks.preSwitch.command"], await FieldsOf(new { preSwitch = new { kind = "command", command = Array.Empty<string>() } }));
        Assert.Equal(["hooks.postSwitch.url"], await FieldsOf(new { postSwitch = new { kind = "http", url = "/hooks/after" } }));
        Assert.Equal(["hooks.postHold.timeoutSeconds"], await FieldsOf(new { postHold = Sh("true", timeoutSeconds: 0) }));
        Assert.Equal(["hooks.postHold.timeoutSeconds"], await FieldsOf(new { postHold = Sh("true", timeoutSeconds: 3601) }));
        Assert.Equal(["hooks.preDeploy.url"], await FieldsOf(new { preDeploy = new { kind = "command", command = new[] { "true" }, url = "http://x/" } }));
        // kubernetesJob hooks need the kubernetes deployer (this application's is "recording").
        Assert.Equal(["hooks.preDeploy.kind"], await FieldsOf(new { preDeploy = new { kind = "kubernetesJob", image = "registry/migrate:{version}" } }));
        Assert.Equal(["hooks.preDeploy.namespace"], await FieldsOf(new { preDeploy = new { kind = "kubernetesJob", image = "r/m", @namespace = "shop" } }));
        var list = await admin.GetAsync("/api/v1/applications/h-bad", Ct);
        Assert.Equal(HttpStatusCode.NotFound, list.StatusCode);
    }

    [Fact]
    public async Task An_interrupted_hook_is_held_for_a_person_unless_it_is_idempotent()
    {
        var log = Path.Combine(_dir, "interrupted.log");
        var idempotentLog = Path.Combine(_dir, "idempotent.log");
        string held, rerun;
        var (connectionString, dataDirectory) = (_factory.ConnectionString, _factory.DataDirectory);
        using (var admin = _factory.Admin())
        {
            await RegisterAsync(_factory, admin, "h-held", Quick, new { preDeploy = Sh($"echo run >> {log}; sleep 120", timeoutSeconds: 300) });
            await RegisterAsync(_factory, admin, "h-rerun", Quick,
                new { preDeploy = Sh($"echo run >> {idempotentLog}; [ $(wc -l < {idempotentLog}) -ge 2 ] || sleep 120", timeoutSeconds: 300, idempotent: true) });
            held = (await admin.StartReleaseAsync("h-held", "2.0.0")).GetProperty("id").GetString()!;
            rerun = (await admin.StartReleaseAsync("h-rerun", "2.0.0")).GetProperty("id").GetString()!;
            await WaitForAsync(admin, held, _ => File.Exists(log), "the first hook to start");
            await WaitForAsync(admin, rerun, _ => File.Exists(idempotentLog), "the second hook to start");
        }
        // ControlPlane stops while both hooks run; a new one takes over the same database and data directory.
        _factory.KeepDataDirectory = true;
        await _factory.DisposeAsync();
        _factory = RecordingAppFactory.Start(connectionString, dataDirectory: dataDirectory);
        using var again = _factory.Admin();

        var waiting = await WaitForAsync(again, held, d => d.GetProperty("heldHook").ValueKind == JsonValueKind.String, "the interrupted hook to be held");
        Assert.Contains("interrupted", StepOf(waiting, "preDeploy").GetProperty("message").GetString());
        Assert.Equal("Queued", waiting.GetProperty("state").GetString());
        Assert.Single(await File.ReadAllLinesAsync(log, Ct));

        var resumed = await again.WaitForStateAsync(rerun, "Succeeded");
        Assert.Equal(2, StepOf(resumed, "preDeploy").GetProperty("attempts").GetInt32());
        Assert.Equal(2, (await File.ReadAllLinesAsync(idempotentLog, Ct)).Length);

        var bad = await again.PostJsonAsync($"/api/v1/deployments/{held}/hooks/resolve", new { decision = "maybe", reason = "x" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var resolve = await again.PostJsonAsync($"/api/v1/deployments/{held}/hooks/resolve", new { decision = "done", reason = "checked: the migration completed" });
        Assert.Equal(HttpStatusCode.OK, resolve.StatusCode);
        var done = await again.WaitForStateAsync(held, "Succeeded");
        Assert.Contains("marked done by bootstrap", StepOf(done, "preDeploy").GetProperty("message").GetString());
        Assert.Single(await File.ReadAllLinesAsync(log, Ct));
        var audit = (await again.GetJsonAsync("/api/v1/audit?application=h-held&action=hook.resolved")).GetProperty("items");
        Assert.Equal("checked: the migration completed", Assert.Single(audit.EnumerateArray()).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Aborting_while_a_command_hook_runs_kills_its_process_group_and_records_it()
    {
        using var admin = _factory.Admin();
        var pidFile = Path.Combine(_dir, "abort-child.pid");
        await RegisterAsync(_factory, admin, "h-abort-cmd", Quick, new { preDeploy = Sh($"sleep 300 & echo $! > {pidFile}; echo 'migrating orders'; wait", timeoutSeconds: 600) });
        var id = (await admin.StartReleaseAsync("h-abort-cmd", "2.0.0")).GetProperty("id").GetString()!;
        await WaitForAsync(admin, id, _ => File.Exists(pidFile) && new FileInfo(pidFile).Length > 0, "the hook to start its child");
        var child = int.Parse((await File.ReadAllTextAsync(pidFile, Ct)).Trim(), System.Globalization.CultureInfo.InvariantCulture);

        var abort = await admin.PostJsonAsync($"/api/v1/deployments/{id}/abort", new { reason = "wrong migration" });
        Assert.Equal(HttpStatusCode.OK, abort.StatusCode);

        var stopped = await WaitForAsync(admin, id, d => StepOf(d, "preDeploy").GetProperty("message").GetString()!.Contains("process group was killed"), "the hook to be killed");
        Assert.Equal("Aborted", stopped.GetProperty("state").GetString());
        var step = StepOf(stopped, "preDeploy");
        Assert.Equal("Failed", step.GetProperty("state").GetString());
        Assert.Contains("aborted by bootstrap: wrong migration", step.GetProperty("message").GetString());
        Assert.Contains("migrating orders", step.GetProperty("output").GetString());
        Assert.True(IsGone(child), $"the hook's child {child} still runs after the abort");
        var audit = (await admin.GetJsonAsync("/api/v1/audit?application=h-abort-cmd&action=hook.stopped")).GetProperty("items");
        Assert.Contains("process group was killed", Assert.Single(audit.EnumerateArray()).GetProperty("reason").GetString());
        Assert.DoesNotContain(_factory.Log.Of("h-abort-cmd"), c => c.StartsWith("deployer deploy h-abort-cmd green", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Aborting_while_an_http_hook_waits_cancels_its_request_and_records_it()
    {
        await using var server = await HookServer.StartAsync();
        server.Hang["/slow-expand"] = true;
        using var admin = _factory.Admin();
        await RegisterAsync(_factory, admin, "h-abort-http", Quick, new { });
        var start = await admin.PostJsonAsync("/api/v1/applications/h-abort-http/deployments",
            new { version = "2.0.0", schema = new { expand = new { kind = "http", url = new Uri(server.Url, "slow-expand").ToString(), timeoutSeconds = 600 } } });
        var id = (await start.JsonAsync()).GetProperty("id").GetString()!;
        await WaitForAsync(admin, id, _ => server.Requests.Any(r => r.Path == "/slow-expand"), "the expand request to arrive");

        Assert.Equal(HttpStatusCode.OK, (await admin.PostJsonAsync($"/api/v1/deployments/{id}/abort", new { reason = "expand hangs" })).StatusCode);

        var stopped = await WaitForAsync(admin, id, d => StepOf(d, "expand").GetProperty("message").GetString()!.Contains("request was cancelled"), "the request to be cancelled");
        Assert.Equal("Aborted", stopped.GetProperty("state").GetString());
        await WaitForAsync(admin, id, _ => server.Cancelled.Contains("/slow-expand"), "the hook server to see the request cancelled");
        var audit = (await admin.GetJsonAsync("/api/v1/audit?application=h-abort-http&action=hook.stopped")).GetProperty("items");
        Assert.Single(audit.EnumerateArray());
    }
}
