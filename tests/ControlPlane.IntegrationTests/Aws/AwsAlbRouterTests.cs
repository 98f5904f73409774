using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing;
using ControlPlane.Core.Routing.Aws;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.IntegrationTests.Aws;

/// <summary>The <c>aws-alb</c> router against a loopback fake of the ELBv2 Query API that verifies every SigV4 signature.</summary>
public sealed class AwsAlbRouterTests : IAsyncLifetime
{
    private static readonly ElbV2RetryPolicy FastRetries = new(4, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(200));

    private readonly ServiceProvider services = new ServiceCollection().AddHttpClient().BuildServiceProvider();
    private readonly CapturingLoggerProvider logs = new();
    private readonly ILoggerFactory loggerFactory;
    private FakeElbV2 fake = null!;

    public AwsAlbRouterTests() => loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => fake = await FakeElbV2.StartAsync(Ct);

    public async ValueTask DisposeAsync()
    {
        await fake.DisposeAsync();
        await services.DisposeAsync();
        loggerFactory.Dispose();
    }

    [Fact]
    public async Task Switch_moves_the_listener_forward_action_to_the_target_group_reads_it_back_and_the_data_plane_follows()
    {
        fake.DataPlaneLag = TimeSpan.FromMilliseconds(700);
        var router = NewRouter();
        var binding = Binding();
        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));

        await router.SwitchAsync(binding, Slot.Green, Ct);

        var forward = Assert.Single(fake.ListenerActions);
        Assert.Equal("forward", forward.Type);
        Assert.Equal([new(FakeElbV2.GreenTargetGroupArn, 100), new(FakeElbV2.BlueTargetGroupArn, 0)], forward.TargetGroups);
        Assert.False(forward.Sticky);
        Assert.Equal(["DescribeListeners", "DescribeListeners", "DescribeTargetHealth", "ModifyListener", "DescribeListeners"],
            fake.Requests.Select(r => r.Action));
        Assert.All(fake.Requests, r => Assert.True(r.SignatureValid, $"{r.Action} was not correctly signed"));
        Assert.Equal(FakeElbV2.GreenTargetGroupArn, fake.RequestsFor("DescribeTargetHealth").Single().Parameters["TargetGroupArn"]);
        Assert.Equal(new Dictionary<string, string>
        {
            ["Action"] = "ModifyListener",
            ["Version"] = "2015-12-01",
            ["ListenerArn"] = FakeElbV2.ListenerArn,
            ["DefaultActions.member.1.Type"] = "forward",
            ["DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn"] = FakeElbV2.GreenTargetGroupArn,
            ["DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight"] = "100",
            ["DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn"] = FakeElbV2.BlueTargetGroupArn,
            ["DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight"] = "0",
            ["DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled"] = "false",
        }, fake.RequestsFor("ModifyListener").Single().Parameters);
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));

        // The data plane lags behind the API; the probe keeps asking within the deadline.
        var proof = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);
        Assert.True(proof.Verified, proof.Message);
        Assert.Equal(fake.PublicUrl, await router.AttachAsync(binding, Slot.Green, Ct));
    }

    [Fact]
    public async Task Switch_with_a_rule_modifies_that_rule_and_leaves_the_listener_default_action_alone()
    {
        var router = NewRouter();
        var binding = Binding(s => s["ruleArn"] = FakeElbV2.RuleArn);

        await router.SwitchAsync(binding, Slot.Green, Ct);

        Assert.Equal([new(FakeElbV2.GreenTargetGroupArn, 100), new(FakeElbV2.BlueTargetGroupArn, 0)], Assert.Single(fake.RuleActions).TargetGroups);
        Assert.Equal([new(FakeElbV2.BlueTargetGroupArn, 100), new(FakeElbV2.GreenTargetGroupArn, 0)], Assert.Single(fake.ListenerActions).TargetGroups);
        var modify = fake.RequestsFor("ModifyRule").Single();
        Assert.Equal(FakeElbV2.RuleArn, modify.Parameters["RuleArn"]);
        Assert.Equal("forward", modify.Parameters["Actions.member.1.Type"]);
        Assert.Empty(fake.RequestsFor("ModifyListener"));
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(binding, Ct));
    }

    [Fact]
    public async Task Switch_is_a_no_op_when_the_listener_already_forwards_everything_to_the_target()
    {
        fake.SetListenerActions(FakeAction.ForwardTo((FakeElbV2.GreenTargetGroupArn, null)));
        var router = NewRouter();

        await router.SwitchAsync(Binding(), Slot.Green, Ct);

        Assert.Equal(["DescribeListeners"], fake.Requests.Select(r => r.Action));
    }

    [Fact]
    public async Task A_listener_that_ignores_the_modification_fails_the_switch_on_read_back()
    {
        fake.IgnoreModifications = true;
        var router = NewRouter();

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("accepted ModifyListener", error.Message);
        Assert.Contains("reading the listener", error.Message);
        Assert.Contains("forwards blue 100 / green 0", error.Message);
        Assert.Single(fake.RequestsFor("ModifyListener"));
        Assert.Equal("DescribeListeners", fake.Requests[^1].Action);
    }

    [Fact]
    public async Task Switch_refuses_a_target_group_without_healthy_targets_and_says_why()
    {
        fake.SetTargets(FakeElbV2.GreenTargetGroupArn,
            new FakeTarget("i-0green00000000001", 8080, "unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [502]"),
            new FakeTarget("i-0green00000000002", 8080, "unhealthy", "Target.Timeout", "Request timed out"),
            new FakeTarget("i-0green00000000003", 8080, "initial", "Elb.RegistrationInProgress", "Target registration is in progress"));
        var router = NewRouter();

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.StartsWith("Not switching shop to green: its target group " + FakeElbV2.GreenTargetGroupArn + " has no healthy targets", error.Message);
        Assert.Contains("2 unhealthy: i-0green00000000001:8080 Target.ResponseCodeMismatch (Health checks failed with these codes: [502]); i-0green00000000002:8080 Target.Timeout", error.Message);
        Assert.Contains("1 initial: i-0green00000000003:8080 Elb.RegistrationInProgress", error.Message);
        Assert.Empty(fake.RequestsFor("ModifyListener"));
        Assert.Equal(FakeElbV2.BlueTargetGroupArn, Assert.Single(fake.ListenerActions).TargetGroups[0].Arn);
    }

    [Fact]
    public async Task Switch_refuses_a_target_group_with_no_registered_targets()
    {
        fake.SetTargets(FakeElbV2.GreenTargetGroupArn);

        var error = await Assert.ThrowsAsync<RouterException>(() => NewRouter().SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("has no healthy targets (no targets are registered)", error.Message);
        Assert.Empty(fake.RequestsFor("ModifyListener"));
    }

    [Fact]
    public async Task Switch_refuses_to_drop_an_authentication_action_of_the_listener()
    {
        fake.SetListenerActions(new FakeAction("authenticate-oidc", [], Order: 1),
            FakeAction.ForwardTo((FakeElbV2.BlueTargetGroupArn, 100), (FakeElbV2.GreenTargetGroupArn, 0)) with { Order = 2 });

        var error = await Assert.ThrowsAsync<RouterException>(() => NewRouter().SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("also has authenticate-oidc action(s)", error.Message);
        Assert.Empty(fake.RequestsFor("ModifyListener"));
    }

    [Theory]
    [InlineData(HttpStatusCode.BadRequest, "Throttling")]
    [InlineData(HttpStatusCode.TooManyRequests, "TooManyRequestsException")]
    [InlineData(HttpStatusCode.ServiceUnavailable, "ServiceUnavailable")]
    public async Task Throttled_calls_are_retried_with_exponential_backoff(HttpStatusCode status, string code)
    {
        fake.FailNext("ModifyListener", 3, status, code, "Rate exceeded");
        var router = NewRouter(new ElbV2RetryPolicy(5, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1), UseJitter: false));

        await router.SwitchAsync(Binding(), Slot.Green, Ct);

        var attempts = fake.RequestsFor("ModifyListener");
        Assert.Equal([(int)status, (int)status, (int)status, 200], attempts.Select(a => a.Status));
        Assert.Equal(FakeElbV2.GreenTargetGroupArn, Assert.Single(fake.ListenerActions).TargetGroups[0].Arn);
        var delays = RetryDelays();
        Assert.Equal([50L, 100L, 200L], delays);
        // It really waited: each gap between attempts is at least the announced delay.
        for (var i = 1; i < attempts.Count; i++)
            Assert.True(attempts[i].At - attempts[i - 1].At >= TimeSpan.FromMilliseconds(delays[i - 1] - 5),
                $"attempt {i + 1} came {(attempts[i].At - attempts[i - 1].At).TotalMilliseconds} ms after the previous one, not after {delays[i - 1]} ms");
    }

    [Fact]
    public async Task Throttling_that_persists_gives_up_after_the_bounded_attempts_with_a_clear_message()
    {
        fake.FailNext("DescribeListeners", 100, HttpStatusCode.BadRequest, "Throttling", "Rate exceeded");
        var router = NewRouter(new ElbV2RetryPolicy(3, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100)));

        var error = await Assert.ThrowsAsync<RouterException>(() => router.SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("ELBv2 DescribeListeners for shop was still throttled after 3 attempts with backoff (Throttling: Rate exceeded)", error.Message);
        Assert.Equal(3, fake.RequestsFor("DescribeListeners").Count);
        Assert.Empty(fake.RequestsFor("ModifyListener"));
        // Jittered delays stay positive and within the maximum.
        Assert.All(RetryDelays(), d => Assert.InRange(d, 1, 100));
        Assert.Equal(2, RetryDelays().Count);
    }

    [Fact]
    public async Task Access_denied_is_reported_with_the_action_and_the_IAM_permission_needed_and_is_not_retried()
    {
        fake.FailNext("ModifyListener", 1, HttpStatusCode.Forbidden, "AccessDenied",
            $"User: arn:aws:iam::{FakeElbV2.Account}:user/controlplane is not authorized to perform: elasticloadbalancing:ModifyListener on resource: {FakeElbV2.ListenerArn}");

        var error = await Assert.ThrowsAsync<RouterException>(() => NewRouter().SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.StartsWith("AWS denied ModifyListener for shop (AccessDenied: User: arn:aws:iam::123456789012:user/controlplane is not authorized", error.Message);
        Assert.Contains("Grant ControlPlane's IAM identity the permission elasticloadbalancing:ModifyListener", error.Message);
        Assert.Single(fake.RequestsFor("ModifyListener"));
        Assert.Equal(FakeElbV2.BlueTargetGroupArn, Assert.Single(fake.ListenerActions).TargetGroups[0].Arn);
    }

    [Fact]
    public async Task UnauthorizedOperation_on_a_describe_call_names_that_permission()
    {
        fake.FailNext("DescribeTargetHealth", 1, HttpStatusCode.Forbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.");

        var error = await Assert.ThrowsAsync<RouterException>(() => NewRouter().SwitchAsync(Binding(), Slot.Green, Ct));

        Assert.Contains("AWS denied DescribeTargetHealth", error.Message);
        Assert.Contains("elasticloadbalancing:DescribeTargetHealth", error.Message);
    }

    [Fact]
    public async Task A_wrong_secret_key_is_rejected_by_the_signature_check()
    {
        var router = NewRouter(credentials: new StaticAwsCredentialsSource(FakeElbV2.AccessKeyId, "not-the-secret"));

        var error = await Assert.ThrowsAsync<RouterException>(() => router.ReadLiveSlotAsync(Binding(), Ct));

        Assert.Contains("AWS rejected the credentials used for shop on DescribeListeners (SignatureDoesNotMatch", error.Message);
        Assert.False(Assert.Single(fake.Requests).SignatureValid);
    }

    [Fact]
    public async Task Session_credentials_sign_the_security_token()
    {
        await using var withToken = await FakeElbV2.StartAsync(Ct, sessionToken: "FwoGZXIvYXdzEJr//session+token=");
        var router = NewRouter(credentials: new StaticAwsCredentialsSource(FakeElbV2.AccessKeyId, FakeElbV2.SecretAccessKey, "FwoGZXIvYXdzEJr//session+token="));
        var binding = Binding(s => s["endpoint"] = withToken.Endpoint.AbsoluteUri);

        Assert.Equal(Slot.Blue, await router.ReadLiveSlotAsync(binding, Ct));
        Assert.True(Assert.Single(withToken.Requests).SignatureValid);

        var withoutToken = NewRouter();
        var error = await Assert.ThrowsAsync<RouterException>(() => withoutToken.ReadLiveSlotAsync(binding, Ct));
        Assert.Contains("InvalidClientTokenId", error.Message);
    }

    [Fact]
    public async Task Read_live_slot_is_null_when_traffic_is_split_or_goes_elsewhere()
    {
        var router = NewRouter();
        fake.SetListenerActions(FakeAction.ForwardTo((FakeElbV2.BlueTargetGroupArn, 50), (FakeElbV2.GreenTargetGroupArn, 50)));
        Assert.Null(await router.ReadLiveSlotAsync(Binding(), Ct));
        Assert.Contains(logs.Entries, e => e.Message.Contains("forwards blue 50 / green 50"));

        fake.SetListenerActions(FakeAction.ForwardTo((FakeElbV2.GreenTargetGroupArn, null)));
        Assert.Equal(Slot.Green, await router.ReadLiveSlotAsync(Binding(), Ct));
    }

    [Fact]
    public async Task Data_plane_verification_fails_when_the_load_balancer_still_serves_the_old_slot_at_the_deadline()
    {
        fake.DataPlaneLag = TimeSpan.FromSeconds(30);
        var router = NewRouter();
        var binding = Binding(s => s["verifyDeadlineSeconds"] = 1);
        await router.SwitchAsync(binding, Slot.Green, Ct);

        var proof = await router.VerifyDataPlaneAsync(binding, Slot.Green, "2.0.0", Ct);

        Assert.False(proof.Verified);
        Assert.Contains("answered 1.0.0 from blue, expected 2.0.0 on green", proof.Message);
    }

    [Fact]
    public void Valid_settings_have_no_errors_and_defaults_apply()
    {
        var router = NewRouter();
        Assert.Empty(router.ValidateSettings(Settings(s =>
        {
            s["endpoint"] = null;
            s["ruleArn"] = FakeElbV2.RuleArn;
            s["profile"] = "production";
        })));
        var parsed = AwsAlbRouterSettings.Parse(Settings(s => s.Remove("endpoint")));
        Assert.Equal(TimeSpan.FromSeconds(30), parsed.VerifyDeadline);
        Assert.Null(parsed.Endpoint);
        Assert.Equal(new Uri("https://elasticloadbalancing.eu-west-1.amazonaws.com/"), ElbV2Client.DefaultEndpoint(parsed.Region));
    }

    [Theory]
    [InlineData("region", "\"eu west\"", "region", "must be an AWS region code")]
    [InlineData("region", "\"us-east-1\"", "listenerArn", "is in region eu-west-1, but region is us-east-1")]
    [InlineData("listenerArn", "null", "listenerArn", "is required")]
    [InlineData("listenerArn", "\"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/shop/50dc6c495c0c9188/f2f7dc8efc522ab2\"", "listenerArn", "network load balancers")]
    [InlineData("ruleArn", "\"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/other/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee\"", "ruleArn", "must be a rule of the listener")]
    [InlineData("blueTargetGroupArn", "\"shop-blue\"", "blueTargetGroupArn", "must be a target group ARN")]
    [InlineData("greenTargetGroupArn", "\"" + FakeElbV2.BlueTargetGroupArn + "\"", "greenTargetGroupArn", "must differ from blueTargetGroupArn")]
    [InlineData("greenTargetGroupArn", "\"arn:aws:elasticloadbalancing:eu-west-1:210987654321:targetgroup/shop-green/5a2b3c4d5e6f7a8b\"", "greenTargetGroupArn", "same AWS account")]
    [InlineData("endpoint", "\"http://elb.internal.example.com/\"", "endpoint", "must use https")]
    [InlineData("endpoint", "\"not a url\"", "endpoint", "must be an absolute https URL")]
    [InlineData("publicUrl", "\"/shop\"", "publicUrl", "must be an absolute http or https URL")]
    [InlineData("profile", "42", "profile", "must be a string or null")]
    [InlineData("verifyDeadlineSeconds", "0", "verifyDeadlineSeconds", "from 1 to 600")]
    [InlineData("listenerARN", "\"x\"", "listenerARN", "is not a setting of the aws-alb router")]
    public void Invalid_settings_are_reported_per_field(string field, string json, string errorField, string message)
    {
        var settings = Settings(s => s[field] = JsonNode.Parse(json));

        var errors = NewRouter().ValidateSettings(settings);

        Assert.Contains(errors, e => e.Field == errorField && e.Message.Contains(message, StringComparison.Ordinal));
        Assert.Throws<RouterException>(() => AwsAlbRouterSettings.Parse(settings));
    }

    [Fact]
    public void Settings_that_are_not_an_object_are_rejected()
    {
        var error = Assert.Single(NewRouter().ValidateSettings(JsonDocument.Parse("[]").RootElement));
        Assert.Equal("", error.Field);
    }

    private List<long> RetryDelays() =>
        logs.Entries.Where(e => e.Message.StartsWith("ELBv2 ", StringComparison.Ordinal) && e.State.ContainsKey("DelayMs"))
            .Select(e => Convert.ToInt64(e.State["DelayMs"], System.Globalization.CultureInfo.InvariantCulture)).ToList();

    private AwsAlbRouter NewRouter(ElbV2RetryPolicy? retry = null, IAwsCredentialsSource? credentials = null) => new(
        services.GetRequiredService<IHttpClientFactory>(),
        credentials ?? new StaticAwsCredentialsSource(FakeElbV2.AccessKeyId, FakeElbV2.SecretAccessKey),
        TimeProvider.System,
        loggerFactory,
        retry ?? FastRetries);

    private RouterBinding Binding(Action<JsonObject>? change = null) =>
        new("shop", Settings(change), new Uri("http://10.0.1.10:8080/"), new Uri("http://10.0.2.10:8080/"));

    private JsonElement Settings(Action<JsonObject>? change = null)
    {
        var settings = new JsonObject
        {
            ["region"] = FakeElbV2.Region,
            ["endpoint"] = fake.Endpoint.AbsoluteUri,
            ["listenerArn"] = FakeElbV2.ListenerArn,
            ["ruleArn"] = null,
            ["blueTargetGroupArn"] = FakeElbV2.BlueTargetGroupArn,
            ["greenTargetGroupArn"] = FakeElbV2.GreenTargetGroupArn,
            ["publicUrl"] = fake.PublicUrl.AbsoluteUri,
            ["profile"] = null,
        };
        change?.Invoke(settings);
        return JsonDocument.Parse(settings.ToJsonString()).RootElement;
    }
}
