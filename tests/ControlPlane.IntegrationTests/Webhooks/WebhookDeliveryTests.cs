using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Webhooks;

/// <summary>Webhooks against a real receiver on loopback: what arrives, signed how, retried when, and what bad input gets.</summary>
public sealed class WebhookDeliveryTests(PostgresFixture postgres)
{
    private const string ApprovalSecret = "approval-secret-0123456789";
    private const string SuccessSecret = "success-secret-0123456789";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Dictionary<string, string> FastRetries = new()
    {
        ["ControlPlane:Webhooks:FirstRetryDelay"] = "00:00:00.200",
        ["ControlPlane:PublicUrl"] = "https://controlplane.example.com",
    };

    [Fact]
    public async Task Subscribed_events_arrive_once_signed_and_unsubscribed_events_are_not_sent()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var factory = await ControlPlaneAppFactory.StartAsync(postgres, FastRetries);
        using var admin = factory.Admin();
        var approvals = await CreateAsync(admin, new { name = "approvals", url = receiver.UrlFor("approvals").ToString(), events = new[] { "approval.needed" }, application = "demo-shop", secret = ApprovalSecret });
        var successes = await CreateAsync(admin, new { name = "successes", url = receiver.UrlFor("successes").ToString(), events = new[] { "deployment.succeeded" }, secret = SuccessSecret });
        await CreateAsync(admin, new { name = "slack", url = receiver.UrlFor("slack").ToString(), events = new[] { "*" }, secret = SuccessSecret, format = "slack" });

        var id = (await admin.StartReleaseAsync("demo-shop", "2.0.0", "webhook test")).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "AwaitingApproval");

        var got = await receiver.WaitForAsync(r => r.Any(x => x.Path == "/approvals") && r.Any(x => x.Path == "/slack"), "the approval.needed event");
        var approval = Assert.Single(got, r => r.Path == "/approvals");
        Assert.Equal("approval.needed", approval.Event);
        Assert.True(approval.SignedWith(ApprovalSecret), "the signature is the HMAC-SHA256 of the raw body with the webhook's secret");
        Assert.False(approval.SignedWith(SuccessSecret));
        Assert.StartsWith("application/json", approval.ContentType);
        var body = JsonDocument.Parse(approval.Body).RootElement;
        Assert.Equal(approval.Delivery, body.GetProperty("id").GetString());
        Assert.Equal("approval.needed", body.GetProperty("event").GetString());
        Assert.Equal("demo-shop", body.GetProperty("application").GetString());
        Assert.Equal(id, body.GetProperty("deployment").GetProperty("id").GetString());
        Assert.Equal("2.0.0", body.GetProperty("deployment").GetProperty("version").GetString());
        Assert.Equal("1.0.0", body.GetProperty("deployment").GetProperty("fromVersion").GetString());
        Assert.Equal($"https://controlplane.example.com/deployments/{id}", body.GetProperty("deployment").GetProperty("url").GetString());
        Assert.Equal("deployment.awaiting-approval", body.GetProperty("audit").GetProperty("action").GetString());

        // The Slack-format subscription to "*" got the same event as a Slack message.
        var slack = JsonDocument.Parse(Assert.Single(got, r => r.Path == "/slack").Body).RootElement;
        Assert.Contains("demo-shop 2.0.0 needs approval", slack.GetProperty("text").GetString());
        Assert.Equal("header", slack.GetProperty("blocks")[0].GetProperty("type").GetString());

        // "successes" is not subscribed to approval.needed: a test ping reaches it, and it is the only thing it ever got.
        (await admin.PostAsync($"/api/v1/webhooks/{successes}/test", null, Ct)).EnsureSuccessStatusCode();
        got = await receiver.WaitForAsync(r => r.Any(x => x.Path == "/successes"), "the test ping");
        Assert.Equal(["ping"], got.Where(r => r.Path == "/successes").Select(r => r.Event));
        var successLog = await admin.GetJsonAsync($"/api/v1/webhooks/{successes}/deliveries");
        Assert.Equal(["ping"], successLog.EnumerateArray().Select(d => d.GetProperty("event").GetString()));

        // Each delivery id arrived once (every receiver answered 200 at once) and the log says delivered on the first attempt.
        Assert.All(got.GroupBy(r => r.Delivery), g => Assert.Single(g));
        var log = Assert.Single((await admin.GetJsonAsync($"/api/v1/webhooks/{approvals}/deliveries")).EnumerateArray());
        Assert.Equal("Delivered", log.GetProperty("status").GetString());
        Assert.Equal(1, log.GetProperty("attempts").GetInt32());
        Assert.Equal(200, log.GetProperty("lastStatusCode").GetInt32());
        Assert.Equal(approval.Delivery, log.GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_receiver_that_answers_500_gets_the_same_delivery_again_and_redeliver_sends_it_once_more()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var factory = await ControlPlaneAppFactory.StartAsync(postgres, FastRetries);
        using var admin = factory.Admin();
        var hook = await CreateAsync(admin, new { name = "flaky", url = receiver.UrlFor("flaky").ToString(), events = new[] { "*" }, secret = ApprovalSecret });
        receiver.Answers.Enqueue(500);

        var queued = await (await admin.PostAsync($"/api/v1/webhooks/{hook}/test", null, Ct)).JsonAsync();
        var delivery = queued.GetProperty("id").GetString();
        var got = await receiver.WaitForAsync(r => r.Count >= 2, "the retry after a 500");
        Assert.All(got, r => Assert.Equal(delivery, r.Delivery));
        Assert.All(got, r => Assert.True(r.SignedWith(ApprovalSecret)));
        Assert.Equal(got[0].Text, got[1].Text); // the same bytes on every attempt

        var log = await WaitForLogAsync(admin, hook, d => d.GetProperty("status").GetString() == "Delivered");
        Assert.Equal(2, log.GetProperty("attempts").GetInt32());
        Assert.Equal(200, log.GetProperty("lastStatusCode").GetInt32());

        (await admin.PostAsync($"/api/v1/webhooks/deliveries/{delivery}/redeliver", null, Ct)).EnsureSuccessStatusCode();
        got = await receiver.WaitForAsync(r => r.Count >= 3, "the redelivery");
        Assert.Equal(delivery, got[2].Delivery);
        var audit = await admin.GetJsonAsync("/api/v1/audit?action=webhook.redelivered");
        Assert.Single(audit.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Bad_input_is_refused_naming_the_field_and_the_secret_and_full_url_are_never_shown()
    {
        await using var factory = await ControlPlaneAppFactory.StartAsync(postgres);
        using var admin = factory.Admin();
        var good = new Dictionary<string, object?>
        {
            ["name"] = "ok", ["url"] = "https://hooks.slack.com/services/T000/B000/XXXXSECRETPATH", ["events"] = new[] { "deployment.failed" },
            ["secret"] = "a-long-enough-secret-value", ["format"] = "slack",
        };
        foreach (var (field, value, expected) in new (string, object?, string)[]
                 {
                     ("url", "/relative/path", "url"), ("url", "ftp://example.com/hook", "url"), ("url", "file:///etc/passwd", "url"),
                     ("url", "https://user:pw@example.com/hook", "url"), ("url", null, "url"),
                     ("events", new[] { "deployment.exploded" }, "events[0]"), ("events", Array.Empty<string>(), "events"),
                     ("secret", "", "secret"), ("secret", null, "secret"), ("secret", "short", "secret"),
                     ("format", "xml", "format"), ("format", "1", "format"), ("name", " ", "name"), ("application", "no-such-app", "application"),
                 })
        {
            var body = new Dictionary<string, object?>(good) { [field] = value };
            var response = await admin.PostAsJsonAsync("/api/v1/webhooks", body, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.JsonAsync();
            Assert.True(problem.GetProperty("errors").TryGetProperty(expected, out _), $"{field}={JsonSerializer.Serialize(value)}: {problem}");
        }
        Assert.Empty((await admin.GetJsonAsync("/api/v1/webhooks")).EnumerateArray());

        var created = await admin.PostAsJsonAsync("/api/v1/webhooks", good, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var text = await admin.GetStringAsync("/api/v1/webhooks", Ct) + await created.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain("a-long-enough-secret-value", text);
        Assert.DoesNotContain("XXXXSECRETPATH", text);
        Assert.Contains("https://hooks.slack.com/…", text);
        await using (var db = new Npgsql.NpgsqlConnection(factory.ConnectionString))
        {
            await db.OpenAsync(Ct);
            await using var cmd = new Npgsql.NpgsqlCommand("SELECT protected_secret || protected_url FROM webhook_subscriptions", db);
            var stored = (string)(await cmd.ExecuteScalarAsync(Ct))!;
            Assert.DoesNotContain("a-long-enough-secret-value", stored);
            Assert.DoesNotContain("XXXXSECRETPATH", stored);
        }
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsJsonAsync("/api/v1/webhooks", good, Ct)).StatusCode);

        using var releaseManager = await factory.ClientWithRoleAsync("rm-webhooks", "ReleaseManager");
        Assert.Equal(HttpStatusCode.Forbidden, (await releaseManager.GetAsync("/api/v1/webhooks", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await releaseManager.PostAsJsonAsync("/api/v1/webhooks", good, Ct)).StatusCode);
    }

    [Fact]
    public async Task AllowedHosts_refuses_other_targets()
    {
        await using var factory = await ControlPlaneAppFactory.StartAsync(postgres, new Dictionary<string, string>
        {
            ["ControlPlane:Webhooks:AllowedHosts:0"] = "hooks.slack.com",
            ["ControlPlane:Webhooks:AllowedHosts:1"] = "*.example.com",
        });
        using var admin = factory.Admin();
        object Body(string name, string url) => new { name, url, events = new[] { "*" }, secret = ApprovalSecret };
        var refused = await admin.PostAsJsonAsync("/api/v1/webhooks", Body("metadata", "http://169.254.169.254/latest/meta-data"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("AllowedHosts", (await refused.JsonAsync()).GetProperty("errors").GetProperty("url")[0].GetString());
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/webhooks", Body("slack", "https://hooks.slack.com/services/x"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/webhooks", Body("sub", "https://ci.example.com/hook"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync("/api/v1/webhooks", Body("apex", "https://example.com.evil.net/hook"), Ct)).StatusCode);
    }

    internal static async Task<string> CreateAsync(HttpClient admin, object body)
    {
        var response = await admin.PostAsJsonAsync("/api/v1/webhooks", body, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        return (await response.JsonAsync()).GetProperty("id").GetString()!;
    }

    internal static async Task<JsonElement> WaitForLogAsync(HttpClient admin, string hook, Func<JsonElement, bool> condition, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = await admin.GetJsonAsync($"/api/v1/webhooks/{hook}/deliveries");
            if (last.EnumerateArray().FirstOrDefault(condition) is { ValueKind: JsonValueKind.Object } found) return found;
            await Task.Delay(100, Ct);
        }
        Assert.Fail($"The delivery log of {hook} did not show it within {seconds} s: {last}");
        return default;
    }
}
