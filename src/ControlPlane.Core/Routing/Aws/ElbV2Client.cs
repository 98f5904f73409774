using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using Amazon.Runtime;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace ControlPlane.Core.Routing.Aws;

/// <summary>
/// The few actions of the Elastic Load Balancing v2 Query API (version 2015-12-01) the <c>aws-alb</c> router needs, signed
/// with Signature Version 4 and retried with exponential backoff and jitter when throttled. This file stands in for
/// AWSSDK.ElasticLoadBalancingV2, which is not obtainable here: moving to it replaces this file (same methods, same
/// <see cref="ElbV2Exception"/>), nothing else.
/// </summary>
/// <param name="endpoint">The API endpoint, e.g. <see cref="DefaultEndpoint"/> or a VPC endpoint.</param>
/// <param name="profile">The named AWS profile for credentials; the default chain when null.</param>
public sealed class ElbV2Client(
    HttpClient httpClient,
    Uri endpoint,
    string region,
    string? profile,
    IAwsCredentialsSource credentials,
    ElbV2RetryPolicy retry,
    TimeProvider timeProvider,
    ILogger logger)
{
    public const string HttpClientName = "ControlPlane.ElbV2";
    public const string ApiVersion = "2015-12-01";
    public const string SigningService = "elasticloadbalancing";
    public static readonly XNamespace Xmlns = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(30);

    private readonly ResiliencePipeline pipeline = BuildPipeline(retry, timeProvider, logger);

    /// <summary>The public regional endpoint, e.g. <c>https://elasticloadbalancing.eu-west-1.amazonaws.com/</c>.</summary>
    public static Uri DefaultEndpoint(string region) =>
        new($"https://elasticloadbalancing.{region}.amazonaws.com{(region.StartsWith("cn-", StringComparison.Ordinal) ? ".cn" : "")}/");

    /// <summary>DescribeListeners for one listener: its default actions.</summary>
    public async Task<IReadOnlyList<ElbAction>> DescribeListenerDefaultActionsAsync(string listenerArn, CancellationToken cancellationToken)
    {
        var result = await CallAsync("DescribeListeners", [new("ListenerArns.member.1", listenerArn)], cancellationToken);
        var listener = Members(result.Element(Xmlns + "Listeners")).FirstOrDefault(l => Text(l, "ListenerArn") == listenerArn)
            ?? throw new ElbV2Exception("DescribeListeners", "ListenerNotFound", $"the answer does not describe {listenerArn}", 200, null, 1);
        return ParseActions(listener.Element(Xmlns + "DefaultActions"));
    }

    /// <summary>DescribeRules for one rule: its actions.</summary>
    public async Task<IReadOnlyList<ElbAction>> DescribeRuleActionsAsync(string ruleArn, CancellationToken cancellationToken)
    {
        var result = await CallAsync("DescribeRules", [new("RuleArns.member.1", ruleArn)], cancellationToken);
        var rule = Members(result.Element(Xmlns + "Rules")).FirstOrDefault(r => Text(r, "RuleArn") == ruleArn)
            ?? throw new ElbV2Exception("DescribeRules", "RuleNotFound", $"the answer does not describe {ruleArn}", 200, null, 1);
        return ParseActions(rule.Element(Xmlns + "Actions"));
    }

    /// <summary>ModifyListener: replaces the default actions with one weighted forward action (target-group stickiness off).</summary>
    public Task ModifyListenerForwardAsync(string listenerArn, IReadOnlyList<TargetGroupWeight> targetGroups, CancellationToken cancellationToken) =>
        CallAsync("ModifyListener", [new("ListenerArn", listenerArn), .. ForwardAction("DefaultActions.member.1", targetGroups)], cancellationToken);

    /// <summary>ModifyRule: replaces the rule's actions with one weighted forward action (conditions unchanged, stickiness off).</summary>
    public Task ModifyRuleForwardAsync(string ruleArn, IReadOnlyList<TargetGroupWeight> targetGroups, CancellationToken cancellationToken) =>
        CallAsync("ModifyRule", [new("RuleArn", ruleArn), .. ForwardAction("Actions.member.1", targetGroups)], cancellationToken);

    /// <summary>DescribeTargetHealth: every target registered in the target group and its health.</summary>
    public async Task<IReadOnlyList<TargetHealth>> DescribeTargetHealthAsync(string targetGroupArn, CancellationToken cancellationToken)
    {
        var result = await CallAsync("DescribeTargetHealth", [new("TargetGroupArn", targetGroupArn)], cancellationToken);
        return Members(result.Element(Xmlns + "TargetHealthDescriptions")).Select(d =>
        {
            var target = d.Element(Xmlns + "Target");
            var health = d.Element(Xmlns + "TargetHealth");
            return new TargetHealth(
                Text(target, "Id") ?? "?",
                int.TryParse(Text(target, "Port"), CultureInfo.InvariantCulture, out var port) ? port : null,
                Text(health, "State") ?? "unknown",
                Text(health, "Reason"),
                Text(health, "Description"));
        }).ToList();
    }

    private static IEnumerable<KeyValuePair<string, string>> ForwardAction(string prefix, IReadOnlyList<TargetGroupWeight> targetGroups)
    {
        yield return new($"{prefix}.Type", "forward");
        for (var i = 0; i < targetGroups.Count; i++)
        {
            yield return new($"{prefix}.ForwardConfig.TargetGroups.member.{i + 1}.TargetGroupArn", targetGroups[i].TargetGroupArn);
            yield return new($"{prefix}.ForwardConfig.TargetGroups.member.{i + 1}.Weight",
                (targetGroups[i].Weight ?? 1).ToString(CultureInfo.InvariantCulture));
        }
        // Stickiness would keep clients on the old target group after a switch.
        yield return new($"{prefix}.ForwardConfig.TargetGroupStickinessConfig.Enabled", "false");
    }

    /// <summary>Calls one action and returns its <c>&lt;ActionResult&gt;</c> element; retries throttling and transient faults.</summary>
    private async Task<XElement> CallAsync(string action, IReadOnlyList<KeyValuePair<string, string>> parameters, CancellationToken cancellationToken)
    {
        var attempts = 0;
        try
        {
            return await pipeline.ExecuteAsync(async ct =>
            {
                attempts++;
                return await AttemptAsync(action, parameters, ct);
            }, cancellationToken);
        }
        catch (ElbV2Exception ex)
        {
            ex.Attempts = attempts;
            throw;
        }
    }

    private async Task<XElement> AttemptAsync(string action, IReadOnlyList<KeyValuePair<string, string>> parameters, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes(string.Join('&',
            new KeyValuePair<string, string>[] { new("Action", action), new("Version", ApiVersion) }.Concat(parameters)
                .Select(p => $"{SigV4.Encode(p.Key)}={SigV4.Encode(p.Value)}")));
        var credentialsNow = await credentials.GetCredentialsAsync(profile, cancellationToken);

        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded") { CharSet = "utf-8" };
        SigV4.Sign(request, body, credentialsNow, region, SigningService, timeProvider.GetUtcNow());

        using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attemptCts.CancelAfter(AttemptTimeout);
        HttpResponseMessage response;
        string text;
        try
        {
            response = await httpClient.SendAsync(request, attemptCts.Token);
            text = await response.Content.ReadAsStringAsync(attemptCts.Token);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ElbV2Exception(action, "Timeout", $"{endpoint} did not answer within {AttemptTimeout.TotalSeconds:0} s", 0, null, 1, ex);
        }
        catch (HttpRequestException ex)
        {
            throw new ElbV2Exception(action, "NetworkError", $"{endpoint} could not be reached: {ex.Message}", 0, null, 1, ex);
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            XDocument? document = null;
            try { document = XDocument.Parse(text); }
            catch (XmlException) { /* A proxy or load balancer in front of the API may answer without XML. */ }

            if (!response.IsSuccessStatusCode)
            {
                var error = document?.Root?.Descendants().FirstOrDefault(e => e.Name.LocalName == "Error");
                var requestId = document?.Root?.Descendants().FirstOrDefault(e => e.Name.LocalName == "RequestId")?.Value;
                throw new ElbV2Exception(action,
                    error?.Elements().FirstOrDefault(e => e.Name.LocalName == "Code")?.Value ?? $"Http{status}",
                    error?.Elements().FirstOrDefault(e => e.Name.LocalName == "Message")?.Value ?? Snippet(text, response.ReasonPhrase),
                    status, requestId, 1);
            }

            return document?.Root?.Element(Xmlns + $"{action}Result")
                ?? throw new ElbV2Exception(action, "MalformedResponse",
                    $"expected <{action}Response><{action}Result> in namespace {Xmlns.NamespaceName}, got {Snippet(text, "an empty body")}", status, null, 1);
        }
    }

    private static ResiliencePipeline BuildPipeline(ElbV2RetryPolicy retry, TimeProvider timeProvider, ILogger logger)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = timeProvider };
        if (retry.MaxAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<ElbV2Exception>(IsRetryable),
                MaxRetryAttempts = retry.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = retry.UseJitter,
                Delay = retry.BaseDelay,
                MaxDelay = retry.MaxDelay,
                OnRetry = args =>
                {
                    var ex = (ElbV2Exception)args.Outcome.Exception!;
                    logger.LogWarning("ELBv2 {Action} answered {Code} (HTTP {Status}); retry {Retry} of {MaxRetries} in {DelayMs} ms",
                        ex.Action, ex.Code, ex.HttpStatus, args.AttemptNumber + 1, retry.MaxAttempts - 1, (long)args.RetryDelay.TotalMilliseconds);
                    return default;
                },
            });
        }
        return builder.Build();
    }

    /// <summary>Throttling and transient server or transport faults; every action used here sets a state, so repeating it is safe.</summary>
    private static bool IsRetryable(ElbV2Exception ex) => ex.IsThrottling || ex.HttpStatus is 0 or 500 or 502 or 504;

    private static IReadOnlyList<ElbAction> ParseActions(XElement? actions) =>
        Members(actions).Select(a =>
        {
            var forward = a.Element(Xmlns + "ForwardConfig");
            IReadOnlyList<TargetGroupWeight> groups = forward?.Element(Xmlns + "TargetGroups") is { } configured
                ? Members(configured).Select(g => new TargetGroupWeight(Text(g, "TargetGroupArn") ?? "",
                    int.TryParse(Text(g, "Weight"), CultureInfo.InvariantCulture, out var w) ? w : null)).ToList()
                : Text(a, "TargetGroupArn") is { } single ? [new TargetGroupWeight(single, null)] : [];
            var sticky = string.Equals(Text(forward?.Element(Xmlns + "TargetGroupStickinessConfig"), "Enabled"), "true", StringComparison.OrdinalIgnoreCase);
            return new ElbAction(Text(a, "Type") ?? "", int.TryParse(Text(a, "Order"), CultureInfo.InvariantCulture, out var order) ? order : null, groups, sticky);
        }).ToList();

    private static IEnumerable<XElement> Members(XElement? list) => list?.Elements(Xmlns + "member") ?? [];

    private static string? Text(XElement? parent, string name) => parent?.Element(Xmlns + name)?.Value;

    private static string Snippet(string text, string? whenEmpty)
    {
        var flat = string.Join(' ', text.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        return flat.Length == 0 ? whenEmpty ?? "(empty)" : flat.Length > 200 ? flat[..200] + "…" : flat;
    }
}

/// <summary>
/// AWS Signature Version 4 for a request whose parameters travel in the body (the Query API), written to the published
/// specification: AWSSDK.Core 4 only signs its own internal request type, so the canonical request is built here.
/// </summary>
internal static class SigV4
{
    public const string Algorithm = "AWS4-HMAC-SHA256";

    /// <summary>Adds Host, X-Amz-Date, X-Amz-Security-Token (session credentials) and Authorization to <paramref name="request"/>.</summary>
    public static void Sign(HttpRequestMessage request, byte[] body, ImmutableCredentials credentials, string region, string service, DateTimeOffset now)
    {
        var uri = request.RequestUri ?? throw new ArgumentException("The request has no URI.", nameof(request));
        var amzDate = now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var scope = $"{amzDate[..8]}/{region}/{service}/aws4_request";

        // Sign exactly what goes on the wire: Host is set explicitly rather than left to the handler.
        request.Headers.Host = uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port}";
        request.Headers.Add("X-Amz-Date", amzDate);
        if (credentials.UseToken)
            request.Headers.Add("X-Amz-Security-Token", credentials.Token);

        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["host"] = request.Headers.Host,
            ["x-amz-date"] = amzDate,
        };
        if (request.Content?.Headers.ContentType is { } contentType)
            headers["content-type"] = contentType.ToString();
        if (credentials.UseToken)
            headers["x-amz-security-token"] = credentials.Token;

        var signedHeaders = string.Join(';', headers.Keys);
        var canonicalRequest = string.Join('\n',
            request.Method.Method,
            string.IsNullOrEmpty(uri.AbsolutePath) ? "/" : uri.AbsolutePath,
            CanonicalQuery(uri.Query),
            string.Concat(headers.Select(h => $"{h.Key}:{CollapseSpaces(h.Value)}\n")),
            signedHeaders,
            Hex(SHA256.HashData(body)));
        var stringToSign = string.Join('\n', Algorithm, amzDate, scope, Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest))));

        var key = Hmac(Encoding.UTF8.GetBytes("AWS4" + credentials.SecretKey), amzDate[..8]);
        key = Hmac(key, region);
        key = Hmac(key, service);
        key = Hmac(key, "aws4_request");
        var signature = Hex(Hmac(key, stringToSign));

        request.Headers.TryAddWithoutValidation("Authorization",
            $"{Algorithm} Credential={credentials.AccessKey}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
    }

    /// <summary>RFC 3986 percent-encoding as SigV4 wants it: everything but A–Z a–z 0–9 - _ . ~, upper-case hex.</summary>
    public static string Encode(string value) => Uri.EscapeDataString(value);

    private static string CanonicalQuery(string query)
    {
        if (query.Length <= 1)
            return "";
        return string.Join('&', query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .Select(p => (Key: Encode(Uri.UnescapeDataString(p[0])), Value: p.Length > 1 ? Encode(Uri.UnescapeDataString(p[1])) : ""))
            .OrderBy(p => p.Key, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal)
            .Select(p => $"{p.Key}={p.Value}"));
    }

    private static string CollapseSpaces(string value) => string.Join(' ', value.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries));

    private static byte[] Hmac(byte[] key, string data) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(data));

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}
