using System.Net;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using ControlPlane.Core.Routing.Aws;
using ControlPlane.IntegrationTests.Aws;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.IntegrationTests.OfficialClients;

/// <summary>
/// The fake ELBv2 is only worth what it shares with the real service. Here the official AWS SDK for JavaScript v3 signs
/// (SigV4, checked by the fake), serializes and parses every action the <c>aws-alb</c> router uses: the fake must accept the
/// SDK's requests, the SDK must read the fake's XML into what the fake holds, and the fake's error codes must be the ones the
/// SDK's model knows (a <c>ListenerNotFound</c> becomes the SDK's <c>ListenerNotFoundException</c>). ControlPlane's own client
/// must put exactly the SDK's parameters on the wire for the same call, and its hand-written SigV4 signer must produce
/// <c>@smithy/signature-v4</c>'s signature for the same request.
/// </summary>
public sealed class AwsSdkAgainstFakeElbV2Tests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private FakeElbV2 _fake = null!;

    public async ValueTask InitializeAsync() => _fake = await FakeElbV2.StartAsync(Ct);
    public async ValueTask DisposeAsync() => await _fake.DisposeAsync();

    private static readonly JsonObject ForwardToGreen = new()
    {
        ["Type"] = "forward",
        ["ForwardConfig"] = new JsonObject
        {
            ["TargetGroups"] = new JsonArray(
                new JsonObject { ["TargetGroupArn"] = FakeElbV2.GreenTargetGroupArn, ["Weight"] = 100 },
                new JsonObject { ["TargetGroupArn"] = FakeElbV2.BlueTargetGroupArn, ["Weight"] = 0 }),
            ["TargetGroupStickinessConfig"] = new JsonObject { ["Enabled"] = false },
        },
    };

    [Fact]
    public async Task Every_action_of_the_alb_router_is_accepted_from_the_SDK_and_answered_in_a_shape_the_SDK_reads()
    {
        var results = await SdkAsync(
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn) }),
            ("DescribeRules", new JsonObject { ["RuleArns"] = new JsonArray(FakeElbV2.RuleArn) }),
            ("DescribeTargetHealth", new JsonObject { ["TargetGroupArn"] = FakeElbV2.GreenTargetGroupArn }),
            ("ModifyListener", new JsonObject { ["ListenerArn"] = FakeElbV2.ListenerArn, ["DefaultActions"] = new JsonArray(ForwardToGreen.DeepClone()) }),
            ("ModifyRule", new JsonObject { ["RuleArn"] = FakeElbV2.RuleArn, ["Actions"] = new JsonArray(ForwardToGreen.DeepClone()) }));

        Assert.All(results, r => Assert.Null(r["error"]));
        Assert.All(_fake.Requests, r => Assert.True(r.SignatureValid, $"the SDK's signature of {r.Action} was refused by the fake"));
        Assert.All(_fake.Requests, r => Assert.Equal(200, r.Status));

        var listener = results[0]["output"]!["Listeners"]![0]!;
        Assert.Equal(FakeElbV2.ListenerArn, (string?)listener["ListenerArn"]);
        Assert.Equal(FakeElbV2.LoadBalancerArn, (string?)listener["LoadBalancerArn"]);
        Assert.Equal(443, (int?)listener["Port"]);
        Assert.Equal([(FakeElbV2.BlueTargetGroupArn, 100), (FakeElbV2.GreenTargetGroupArn, 0)], Groups(listener["DefaultActions"]![0]!));

        var rule = results[1]["output"]!["Rules"]![0]!;
        Assert.Equal(FakeElbV2.RuleArn, (string?)rule["RuleArn"]);
        Assert.Equal("host-header", (string?)rule["Conditions"]![0]!["Field"]);
        Assert.False((bool?)rule["IsDefault"]);

        var health = results[2]["output"]!["TargetHealthDescriptions"]!.AsArray();
        Assert.Equal(["i-0green00000000001", "i-0green00000000002"], health.Select(h => (string?)h!["Target"]!["Id"]));
        Assert.All(health, h => Assert.Equal("healthy", (string?)h!["TargetHealth"]!["State"]));
        Assert.All(health, h => Assert.Equal(8080, (int?)h!["Target"]!["Port"]));

        // The answers of the modifications describe the new state, and the fake holds it.
        Assert.Equal([(FakeElbV2.GreenTargetGroupArn, 100), (FakeElbV2.BlueTargetGroupArn, 0)],
            Groups(results[3]["output"]!["Listeners"]![0]!["DefaultActions"]![0]!));
        Assert.Equal([(FakeElbV2.GreenTargetGroupArn, 100), (FakeElbV2.BlueTargetGroupArn, 0)],
            Groups(results[4]["output"]!["Rules"]![0]!["Actions"]![0]!));
        Assert.Equal([new(FakeElbV2.GreenTargetGroupArn, 100), new(FakeElbV2.BlueTargetGroupArn, 0)], Assert.Single(_fake.ListenerActions).TargetGroups);
        Assert.Equal([new(FakeElbV2.GreenTargetGroupArn, 100), new(FakeElbV2.BlueTargetGroupArn, 0)], Assert.Single(_fake.RuleActions).TargetGroups);
    }

    [Fact]
    public async Task ControlPlane_s_client_puts_exactly_the_SDK_s_parameters_on_the_wire()
    {
        await SdkAsync(
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn) }),
            ("DescribeRules", new JsonObject { ["RuleArns"] = new JsonArray(FakeElbV2.RuleArn) }),
            ("DescribeTargetHealth", new JsonObject { ["TargetGroupArn"] = FakeElbV2.GreenTargetGroupArn }),
            ("ModifyListener", new JsonObject { ["ListenerArn"] = FakeElbV2.ListenerArn, ["DefaultActions"] = new JsonArray(ForwardToGreen.DeepClone()) }),
            ("ModifyRule", new JsonObject { ["RuleArn"] = FakeElbV2.RuleArn, ["Actions"] = new JsonArray(ForwardToGreen.DeepClone()) }));
        var sdk = _fake.Requests;

        using var http = new HttpClient();
        var client = new ElbV2Client(http, _fake.Endpoint, FakeElbV2.Region, null,
            new StaticAwsCredentialsSource(FakeElbV2.AccessKeyId, FakeElbV2.SecretAccessKey), new ElbV2RetryPolicy(1, TimeSpan.Zero, TimeSpan.Zero),
            TimeProvider.System, NullLogger.Instance);
        TargetGroupWeight[] toGreen = [new(FakeElbV2.GreenTargetGroupArn, 100), new(FakeElbV2.BlueTargetGroupArn, 0)];
        await client.DescribeListenerDefaultActionsAsync(FakeElbV2.ListenerArn, Ct);
        await client.DescribeRuleActionsAsync(FakeElbV2.RuleArn, Ct);
        await client.DescribeTargetHealthAsync(FakeElbV2.GreenTargetGroupArn, Ct);
        await client.ModifyListenerForwardAsync(FakeElbV2.ListenerArn, toGreen, Ct);
        await client.ModifyRuleForwardAsync(FakeElbV2.RuleArn, toGreen, Ct);
        var ours = _fake.Requests.Skip(sdk.Count).ToList();

        Assert.Equal(sdk.Select(r => r.Action), ours.Select(r => r.Action));
        foreach (var (official, own) in sdk.Zip(ours))
            Assert.Equal(official.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal), own.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_fake_s_errors_are_the_ones_the_SDK_s_model_knows()
    {
        _fake.FailNext("DescribeListeners", 1, HttpStatusCode.BadRequest, "Throttling", "Rate exceeded");
        _fake.FailNext("ModifyListener", 1, HttpStatusCode.Forbidden, "AccessDenied",
            "User: arn:aws:iam::123456789012:user/cp is not authorized to perform: elasticloadbalancing:ModifyListener");
        var results = await SdkAsync(
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn) }),
            ("ModifyListener", new JsonObject { ["ListenerArn"] = FakeElbV2.ListenerArn, ["DefaultActions"] = new JsonArray(ForwardToGreen.DeepClone()) }),
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn.Replace("f2f7", "0000", StringComparison.Ordinal)) }),
            ("DescribeRules", new JsonObject { ["RuleArns"] = new JsonArray(FakeElbV2.RuleArn.Replace("9683", "0000", StringComparison.Ordinal)) }),
            ("DescribeTargetHealth", new JsonObject { ["TargetGroupArn"] = FakeElbV2.GreenTargetGroupArn.Replace("5a2b", "0000", StringComparison.Ordinal) }));

        Assert.Equal(("Throttling", 400, "Rate exceeded"), Error(results[0]));
        Assert.Equal(("AccessDenied", 403), (Error(results[1]).Name, Error(results[1]).Status));
        // Modeled errors: the SDK turns the documented code into its exception type only when the code is exactly right.
        Assert.Equal(("ListenerNotFoundException", 400), (Error(results[2]).Name, Error(results[2]).Status));
        Assert.Equal(("RuleNotFoundException", 400), (Error(results[3]).Name, Error(results[3]).Status));
        Assert.Equal(("TargetGroupNotFoundException", 400), (Error(results[4]).Name, Error(results[4]).Status));
        Assert.Equal("client", (string?)results[2]["error"]!["fault"]);
        Assert.Equal([false, false, true, true, true], results.Select(r => (bool?)r["error"]!["modeled"]));
        Assert.Equal(FakeElbV2.BlueTargetGroupArn, Assert.Single(_fake.ListenerActions).TargetGroups[0].Arn);
    }

    [Fact]
    public async Task The_fake_refuses_the_SDK_s_request_signed_with_another_secret()
    {
        var results = await SdkAsync(FakeElbV2.SecretAccessKey + "x", null,
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn) }));

        Assert.Equal(("SignatureDoesNotMatch", 403), (Error(results[0]).Name, Error(results[0]).Status));
        Assert.False(Assert.Single(_fake.Requests).SignatureValid);
    }

    [Fact]
    public async Task Session_credentials_from_the_SDK_are_checked_including_the_token()
    {
        const string token = "FwoGZXIvYXdzEJr//session+token=";
        await using var withToken = await FakeElbV2.StartAsync(Ct, sessionToken: token);
        var good = await SdkAsync(withToken, FakeElbV2.SecretAccessKey, token,
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn) }));
        var wrong = await SdkAsync(withToken, FakeElbV2.SecretAccessKey, token + "x",
            ("DescribeListeners", new JsonObject { ["ListenerArns"] = new JsonArray(FakeElbV2.ListenerArn) }));

        Assert.Null(good[0]["error"]);
        Assert.NotNull(wrong[0]["error"]);
        Assert.Equal(403, Error(wrong[0]).Status);
    }

    [Fact]
    public async Task The_hand_written_signer_computes_the_official_signer_s_signature_for_the_same_requests()
    {
        var at = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        (string Url, string Body, string? Token)[] cases =
        [
            ("https://elasticloadbalancing.eu-west-1.amazonaws.com/", "Action=DescribeListeners&Version=2015-12-01&ListenerArns.member.1=" + Uri.EscapeDataString(FakeElbV2.ListenerArn), null),
            ("http://127.0.0.1:34567/", "Action=ModifyListener&Version=2015-12-01&ListenerArn=" + Uri.EscapeDataString(FakeElbV2.ListenerArn) +
                "&DefaultActions.member.1.Type=forward&DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight=100", null),
            ("https://vpce-0a1b2c.elasticloadbalancing.eu-west-1.vpce.amazonaws.com/", "Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn=a%2Fb%20c~d", "FwoGZXIvYXdzEJr//session+token="),
            ("https://elasticloadbalancing.eu-west-1.amazonaws.com/path/?b=2&a=1&a=0&c=x%20y", "", null),
            ("https://elasticloadbalancing.eu-west-1.amazonaws.com:8443/", "Action=DescribeRules&Version=2015-12-01&RuleArns.member.1=%E2%82%AC%2B%3D", "token/with+plus="),
        ];

        var requests = new JsonArray();
        var ours = new List<string>();
        foreach (var (url, body, token) in cases)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(body);
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(bytes) };
            request.Content.Headers.ContentType = new("application/x-www-form-urlencoded") { CharSet = "utf-8" };
            SigV4.Sign(request, bytes, new ImmutableCredentials(FakeElbV2.AccessKeyId, FakeElbV2.SecretAccessKey, token), FakeElbV2.Region,
                ElbV2Client.SigningService, at);
            ours.Add(request.Headers.GetValues("Authorization").Single());
            // The official signer gets the same request before signing: the headers ControlPlane signs, nothing of its own.
            var headers = new JsonObject { ["host"] = request.Headers.Host, ["content-type"] = request.Content.Headers.ContentType.ToString() };
            requests.Add(new JsonObject { ["method"] = "POST", ["url"] = url, ["headers"] = headers, ["body"] = body, ["signingDate"] = at.ToString("O") });
        }
        var official = new List<string>();
        foreach (var group in cases.Select((c, i) => (c, i)).GroupBy(x => x.c.Token))
        {
            var answers = await OfficialClient.NodeAsync("sigv4.mjs", new
            {
                region = FakeElbV2.Region, service = ElbV2Client.SigningService,
                credentials = new { accessKeyId = FakeElbV2.AccessKeyId, secretAccessKey = FakeElbV2.SecretAccessKey, sessionToken = group.Key },
                requests = new JsonArray([.. group.Select(x => requests[x.i]!.DeepClone())]),
            }, Ct);
            foreach (var (answer, index) in answers.Zip(group.Select(x => x.i)))
                official.Add($"{index}:{(string?)answer["authorization"]}");
        }

        Assert.Equal(official.Order(), ours.Select((a, i) => $"{i}:{a}").Order());
    }

    private static (string Name, int Status, string Message) Error(JsonNode result)
    {
        var error = result["error"] ?? throw new Xunit.Sdk.XunitException($"expected an error, the SDK returned {result}");
        return ((string)error["name"]!, (int)error["httpStatusCode"]!, (string)error["message"]!);
    }

    private static List<(string, int)> Groups(JsonNode action) =>
        action["ForwardConfig"]!["TargetGroups"]!.AsArray().Select(g => ((string)g!["TargetGroupArn"]!, (int)g["Weight"]!)).ToList();

    private Task<IReadOnlyList<JsonNode>> SdkAsync(params (string Command, JsonObject Input)[] calls) =>
        SdkAsync(_fake, FakeElbV2.SecretAccessKey, null, calls);

    private Task<IReadOnlyList<JsonNode>> SdkAsync(string secret, string? token, params (string Command, JsonObject Input)[] calls) =>
        SdkAsync(_fake, secret, token, calls);

    private static Task<IReadOnlyList<JsonNode>> SdkAsync(FakeElbV2 fake, string secret, string? token, params (string Command, JsonObject Input)[] calls) =>
        OfficialClient.NodeAsync("elbv2.mjs", new
        {
            endpoint = fake.Endpoint.AbsoluteUri,
            region = FakeElbV2.Region,
            credentials = new { accessKeyId = FakeElbV2.AccessKeyId, secretAccessKey = secret, sessionToken = token },
            calls = calls.Select(c => new { command = c.Command, input = c.Input }),
        }, Ct);
}
