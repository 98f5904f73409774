using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Aws;

/// <summary>A target group of a forward action as the fake stores it.</summary>
public sealed record FakeTargetGroup(string Arn, int? Weight);

/// <summary>An action of a listener or rule; non-forward types (e.g. <c>authenticate-oidc</c>) carry no target groups.</summary>
public sealed record FakeAction(string Type, IReadOnlyList<FakeTargetGroup> TargetGroups, bool Sticky = false, int? Order = null)
{
    public static FakeAction ForwardTo(params (string Arn, int? Weight)[] groups) =>
        new("forward", groups.Select(g => new FakeTargetGroup(g.Arn, g.Weight)).ToList());
}

/// <summary>A registered target and its health, as DescribeTargetHealth reports it.</summary>
public sealed record FakeTarget(string Id, int Port, string State, string? Reason = null, string? Description = null)
{
    public static FakeTarget Healthy(string id) => new(id, 8080, "healthy");
}

/// <summary>One request the fake received, after its signature was checked.</summary>
public sealed record FakeRequest(DateTimeOffset At, string Action, IReadOnlyDictionary<string, string> Parameters, bool SignatureValid, int Status, string? ErrorCode);

/// <summary>
/// A loopback fake of the Elastic Load Balancing v2 Query API (2015-12-01): form-encoded POSTs verified with SigV4 against a
/// known secret, strict about the parameters of each action, keeping listener, rule and target-health state, answering the
/// documented XML (and the documented error XML, with injectable Throttling/AccessDenied faults). A second listener plays
/// the load balancer's data plane: it answers as the backend of the target group that currently gets the traffic,
/// optionally with the propagation lag of a real ALB.
/// </summary>
public sealed partial class FakeElbV2 : IAsyncDisposable
{
    public const string AccessKeyId = "AKIACONTROLPLANETEST";
    public const string SecretAccessKey = "cp/Test+Secret/K7MDENG+bPxRfiCYEXAMPLEKEY";
    public const string Region = "eu-west-1";
    public const string Account = "123456789012";
    public const string LoadBalancerArn = $"arn:aws:elasticloadbalancing:{Region}:{Account}:loadbalancer/app/shop/50dc6c495c0c9188";
    public const string ListenerArn = $"arn:aws:elasticloadbalancing:{Region}:{Account}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";
    public const string RuleArn = $"arn:aws:elasticloadbalancing:{Region}:{Account}:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
    public const string BlueTargetGroupArn = $"arn:aws:elasticloadbalancing:{Region}:{Account}:targetgroup/shop-blue/73e2d6bc24d8a067";
    public const string GreenTargetGroupArn = $"arn:aws:elasticloadbalancing:{Region}:{Account}:targetgroup/shop-green/5a2b3c4d5e6f7a8b";
    public static readonly XNamespace Ns = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

    private readonly object gate = new();
    private readonly WebApplication api;
    private readonly WebApplication dataPlane;
    private readonly SigV4Verifier verifier;
    private readonly List<FakeRequest> requests = [];
    private readonly Dictionary<string, Queue<(int Status, string Code, string Message)>> faults = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<FakeTarget>> targets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Version, string Slot)> backends = new(StringComparer.Ordinal);
    // What the data plane serves, each entry effective from its time on (a switch becomes visible after DataPlaneLag).
    private readonly List<(DateTimeOffset From, IReadOnlyList<FakeAction> Actions)> dataPlaneHistory = [];
    private IReadOnlyList<FakeAction> listenerActions = [FakeAction.ForwardTo((BlueTargetGroupArn, 100), (GreenTargetGroupArn, 0))];
    private IReadOnlyList<FakeAction> ruleActions = [FakeAction.ForwardTo((BlueTargetGroupArn, 100), (GreenTargetGroupArn, 0))];

    private FakeElbV2(string? sessionToken)
    {
        verifier = new SigV4Verifier(AccessKeyId, SecretAccessKey, Region, "elasticloadbalancing", sessionToken);
        api = NewApp(HandleApiAsync);
        dataPlane = NewApp(HandleDataPlaneAsync);
        dataPlaneHistory.Add((DateTimeOffset.MinValue, listenerActions));
    }

    public Uri Endpoint { get; private set; } = null!;
    public Uri PublicUrl { get; private set; } = null!;

    /// <summary>Answer Modify* with success but keep the old state (a provider that silently ignores a change).</summary>
    public bool IgnoreModifications { get; set; }

    /// <summary>How long after a modification the data plane still serves the previous target group.</summary>
    public TimeSpan DataPlaneLag { get; set; }

    public static async Task<FakeElbV2> StartAsync(CancellationToken cancellationToken, string? sessionToken = null)
    {
        var fake = new FakeElbV2(sessionToken);
        fake.Endpoint = await LoopbackServer.StartAsync(fake.api, cancellationToken);
        fake.PublicUrl = await LoopbackServer.StartAsync(fake.dataPlane, cancellationToken);
        fake.SetBackend(BlueTargetGroupArn, "1.0.0", "blue");
        fake.SetBackend(GreenTargetGroupArn, "2.0.0", "green");
        fake.SetTargets(BlueTargetGroupArn, FakeTarget.Healthy("i-0blue000000000001"));
        fake.SetTargets(GreenTargetGroupArn, FakeTarget.Healthy("i-0green00000000001"), FakeTarget.Healthy("i-0green00000000002"));
        return fake;
    }

    public IReadOnlyList<FakeRequest> Requests { get { lock (gate) return requests.ToList(); } }

    public IReadOnlyList<FakeRequest> RequestsFor(string action) => Requests.Where(r => r.Action == action).ToList();

    public IReadOnlyList<FakeAction> ListenerActions { get { lock (gate) return listenerActions; } }
    public IReadOnlyList<FakeAction> RuleActions { get { lock (gate) return ruleActions; } }

    public void SetListenerActions(params FakeAction[] actions)
    {
        lock (gate)
        {
            listenerActions = actions;
            dataPlaneHistory.Add((DateTimeOffset.MinValue, actions));
        }
    }

    public void SetRuleActions(params FakeAction[] actions) { lock (gate) ruleActions = actions; }

    public void SetTargets(string targetGroupArn, params FakeTarget[] registered) { lock (gate) targets[targetGroupArn] = registered.ToList(); }

    public void SetBackend(string targetGroupArn, string version, string slot) { lock (gate) backends[targetGroupArn] = (version, slot); }

    /// <summary>The next <paramref name="times"/> calls of <paramref name="action"/> answer the given AWS error.</summary>
    public void FailNext(string action, int times, HttpStatusCode status, string code, string message)
    {
        lock (gate)
        {
            if (!faults.TryGetValue(action, out var queue))
                faults[action] = queue = new Queue<(int, string, string)>();
            for (var i = 0; i < times; i++)
                queue.Enqueue(((int)status, code, message));
        }
    }

    private static WebApplication NewApp(RequestDelegate handler)
    {
        var app = LoopbackServer.Create();
        app.Run(handler);
        return app;
    }

    private async Task HandleApiAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var body = buffer.ToArray();
        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var parameters = ParseForm(Encoding.UTF8.GetString(body), out var duplicate);
        var action = parameters.GetValueOrDefault("Action") ?? "";

        var signatureFault = verifier.Check(context.Request.Method, context.Request.PathBase + context.Request.Path,
            context.Request.QueryString.HasValue ? context.Request.QueryString.Value![1..] : "", headers, body, DateTimeOffset.UtcNow);
        (int Status, string Code, string Message)? fault = signatureFault is { } sig ? (403, sig.Code, sig.Message) : null;

        fault ??= context.Request.Method != "POST" ? (405, "InvalidAction", "Use POST.")
            : !(context.Request.ContentType ?? "").StartsWith("application/x-www-form-urlencoded", StringComparison.Ordinal)
                ? (400, "InvalidParameterValue", $"Unexpected Content-Type {context.Request.ContentType}")
            : duplicate is not null ? (400, "ValidationError", $"Parameter {duplicate} is given twice")
            : parameters.GetValueOrDefault("Version") != "2015-12-01" ? (400, "InvalidAction", "Version must be 2015-12-01")
            : null;

        lock (gate)
        {
            if (fault is null && faults.TryGetValue(action, out var queue) && queue.Count > 0)
                fault = queue.Dequeue();
        }

        XElement? result = null;
        if (fault is null)
        {
            try
            {
                result = Execute(action, parameters);
            }
            catch (FakeFault f)
            {
                fault = (f.Status, f.Code, f.Message);
            }
        }

        lock (gate)
            requests.Add(new FakeRequest(DateTimeOffset.UtcNow, action, parameters, signatureFault is null, fault?.Status ?? 200, fault?.Code));

        var requestId = Guid.NewGuid().ToString();
        XDocument answer;
        if (fault is { } error)
        {
            context.Response.StatusCode = error.Status;
            answer = new XDocument(new XElement(Ns + "ErrorResponse",
                new XElement(Ns + "Error",
                    new XElement(Ns + "Type", error.Status >= 500 ? "Receiver" : "Sender"),
                    new XElement(Ns + "Code", error.Code),
                    new XElement(Ns + "Message", error.Message)),
                new XElement(Ns + "RequestId", requestId)));
        }
        else
        {
            answer = new XDocument(new XElement(Ns + $"{action}Response",
                result,
                new XElement(Ns + "ResponseMetadata", new XElement(Ns + "RequestId", requestId))));
        }
        context.Response.ContentType = "text/xml";
        context.Response.Headers["x-amzn-RequestId"] = requestId;
        await context.Response.WriteAsync(answer.ToString(), context.RequestAborted);
    }

    private XElement Execute(string action, IReadOnlyDictionary<string, string> p)
    {
        lock (gate)
        {
            switch (action)
            {
                case "DescribeListeners":
                    Expect(p, "ListenerArns.member.1");
                    RequireKnown(p["ListenerArns.member.1"], ListenerArn, "ListenerNotFound", "One or more listeners not found");
                    return Result(action, new XElement(Ns + "Listeners", ListenerXml()));

                case "DescribeRules":
                    Expect(p, "RuleArns.member.1");
                    RequireKnown(p["RuleArns.member.1"], RuleArn, "RuleNotFound", "One or more rules not found");
                    return Result(action, new XElement(Ns + "Rules", RuleXml()));

                case "DescribeTargetHealth":
                    Expect(p, "TargetGroupArn");
                    if (!targets.TryGetValue(p["TargetGroupArn"], out var registered))
                        throw new FakeFault(400, "TargetGroupNotFound", $"Target groups '{p["TargetGroupArn"]}' not found");
                    return Result(action, new XElement(Ns + "TargetHealthDescriptions", registered.Select(TargetXml)));

                case "ModifyListener":
                {
                    RequireKnown(Required(p, "ListenerArn"), ListenerArn, "ListenerNotFound", "One or more listeners not found");
                    var actions = ParseActions(p, "DefaultActions", ["ListenerArn"]);
                    if (!IgnoreModifications)
                    {
                        listenerActions = actions;
                        dataPlaneHistory.Add((DateTimeOffset.UtcNow + DataPlaneLag, actions));
                    }
                    return Result(action, new XElement(Ns + "Listeners", ListenerXml()));
                }

                case "ModifyRule":
                {
                    RequireKnown(Required(p, "RuleArn"), RuleArn, "RuleNotFound", "One or more rules not found");
                    var actions = ParseActions(p, "Actions", ["RuleArn"]);
                    if (!IgnoreModifications)
                        ruleActions = actions;
                    return Result(action, new XElement(Ns + "Rules", RuleXml()));
                }

                default:
                    throw new FakeFault(400, "InvalidAction", $"The action {action} is not valid for this web service.");
            }
        }
    }

    [GeneratedRegex(@"^(?<list>DefaultActions|Actions)\.member\.(?<a>\d+)\.(?<field>Type|Order|TargetGroupArn|ForwardConfig\.TargetGroups\.member\.(?<g>\d+)\.(?<gfield>TargetGroupArn|Weight)|ForwardConfig\.TargetGroupStickinessConfig\.(?<sfield>Enabled|DurationSeconds))$")]
    private static partial Regex ActionParameter();

    /// <summary>Parses <c>{list}.member.N.*</c> strictly: any other parameter, a gap in numbering or a bad value is a ValidationError.</summary>
    private IReadOnlyList<FakeAction> ParseActions(IReadOnlyDictionary<string, string> p, string list, string[] alsoAllowed)
    {
        var actions = new SortedDictionary<int, (string? Type, int? Order, SortedDictionary<int, (string? Arn, int? Weight)> Groups, bool Sticky)>();
        foreach (var (key, value) in p)
        {
            if (key is "Action" or "Version" || alsoAllowed.Contains(key))
                continue;
            var m = ActionParameter().Match(key);
            if (!m.Success || m.Groups["list"].Value != list)
                throw new FakeFault(400, "ValidationError", $"Unexpected parameter '{key}'");
            var index = int.Parse(m.Groups["a"].Value, CultureInfo.InvariantCulture);
            var entry = actions.TryGetValue(index, out var e) ? e : (null, null, new SortedDictionary<int, (string?, int?)>(), false);
            if (m.Groups["g"].Success)
            {
                var g = int.Parse(m.Groups["g"].Value, CultureInfo.InvariantCulture);
                var group = entry.Groups.TryGetValue(g, out var x) ? x : (null, null);
                if (m.Groups["gfield"].Value == "TargetGroupArn")
                    group.Arn = value;
                else if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var weight) && weight <= 999)
                    group.Weight = weight;
                else
                    throw new FakeFault(400, "ValidationError", $"'{key}' must be a weight from 0 to 999, not '{value}'");
                entry.Groups[g] = group;
            }
            else if (m.Groups["sfield"].Value == "Enabled")
                entry.Sticky = value == "true" ? true : value == "false" ? false : throw new FakeFault(400, "ValidationError", $"'{key}' must be true or false");
            else if (m.Groups["field"].Value == "Type")
                entry.Type = value;
            else if (m.Groups["field"].Value == "Order")
                entry.Order = int.Parse(value, CultureInfo.InvariantCulture);
            else if (m.Groups["field"].Value == "TargetGroupArn")
                entry.Groups[0] = (value, null);
            actions[index] = entry;
        }

        if (actions.Count == 0 || !actions.Keys.SequenceEqual(Enumerable.Range(1, actions.Count)))
            throw new FakeFault(400, "ValidationError", $"{list}.member.N must be numbered from 1 without gaps");
        var parsed = new List<FakeAction>();
        foreach (var (_, a) in actions)
        {
            if (a.Type != "forward")
                throw new FakeFault(400, "ValidationError", $"This fake only accepts forward actions, not '{a.Type}'");
            var groups = a.Groups.Values.ToList();
            if (groups.Count == 0 || groups.Any(g => g.Arn is null))
                throw new FakeFault(400, "ValidationError", "A forward action needs target groups with a TargetGroupArn");
            if (groups.Select(g => g.Arn).Distinct().Count() != groups.Count)
                throw new FakeFault(400, "ValidationError", "A target group may appear only once in a forward action");
            foreach (var g in groups.Where(g => !targets.ContainsKey(g.Arn!)))
                throw new FakeFault(400, "TargetGroupNotFound", $"Target groups '{g.Arn}' not found");
            parsed.Add(new FakeAction("forward", groups.Select(g => new FakeTargetGroup(g.Arn!, g.Weight)).ToList(), a.Sticky, a.Order));
        }
        return parsed;
    }

    private XElement ListenerXml() => new(Ns + "member",
        new XElement(Ns + "LoadBalancerArn", LoadBalancerArn),
        new XElement(Ns + "Protocol", "HTTPS"),
        new XElement(Ns + "Port", 443),
        new XElement(Ns + "ListenerArn", ListenerArn),
        new XElement(Ns + "DefaultActions", listenerActions.Select(ActionXml)));

    private XElement RuleXml() => new(Ns + "member",
        new XElement(Ns + "IsDefault", "false"),
        new XElement(Ns + "Conditions", new XElement(Ns + "member",
            new XElement(Ns + "Field", "host-header"),
            new XElement(Ns + "Values", new XElement(Ns + "member", "shop.example.com")))),
        new XElement(Ns + "Priority", "10"),
        new XElement(Ns + "Actions", ruleActions.Select(ActionXml)),
        new XElement(Ns + "RuleArn", RuleArn));

    private static XElement ActionXml(FakeAction action)
    {
        var member = new XElement(Ns + "member", new XElement(Ns + "Type", action.Type));
        if (action.Order is { } order)
            member.Add(new XElement(Ns + "Order", order));
        if (action.Type != "forward")
        {
            member.Add(new XElement(Ns + "AuthenticateOidcConfig", new XElement(Ns + "Issuer", "https://login.example.com")));
            return member;
        }
        // As ELBv2 does: a single target group is also given as TargetGroupArn.
        if (action.TargetGroups.Count == 1)
            member.Add(new XElement(Ns + "TargetGroupArn", action.TargetGroups[0].Arn));
        member.Add(new XElement(Ns + "ForwardConfig",
            new XElement(Ns + "TargetGroups", action.TargetGroups.Select(g => new XElement(Ns + "member",
                new XElement(Ns + "TargetGroupArn", g.Arn),
                g.Weight is { } w ? new XElement(Ns + "Weight", w) : null))),
            new XElement(Ns + "TargetGroupStickinessConfig", new XElement(Ns + "Enabled", action.Sticky ? "true" : "false"))));
        return member;
    }

    private static XElement TargetXml(FakeTarget t) => new(Ns + "member",
        new XElement(Ns + "HealthCheckPort", t.Port),
        new XElement(Ns + "Target", new XElement(Ns + "Id", t.Id), new XElement(Ns + "Port", t.Port)),
        new XElement(Ns + "TargetHealth",
            new XElement(Ns + "State", t.State),
            t.Reason is null ? null : new XElement(Ns + "Reason", t.Reason),
            t.Description is null ? null : new XElement(Ns + "Description", t.Description)));

    private static XElement Result(string action, XElement content) => new(Ns + $"{action}Result", content);

    private static void Expect(IReadOnlyDictionary<string, string> p, params string[] names)
    {
        foreach (var key in p.Keys.Where(k => k is not ("Action" or "Version") && !names.Contains(k)))
            throw new FakeFault(400, "ValidationError", $"Unexpected parameter '{key}'");
        foreach (var name in names)
            Required(p, name);
    }

    private static string Required(IReadOnlyDictionary<string, string> p, string name) =>
        p.TryGetValue(name, out var value) && value.Length > 0 ? value : throw new FakeFault(400, "ValidationError", $"'{name}' is required");

    private static void RequireKnown(string given, string known, string code, string message)
    {
        if (given != known)
            throw new FakeFault(400, code, message);
    }

    private static Dictionary<string, string> ParseForm(string body, out string? duplicate)
    {
        duplicate = null;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in body.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(parts[0].Replace('+', ' '));
            var value = parts.Length > 1 ? Uri.UnescapeDataString(parts[1].Replace('+', ' ')) : "";
            if (!result.TryAdd(key, value))
                duplicate = key;
        }
        return result;
    }

    private async Task HandleDataPlaneAsync(HttpContext context)
    {
        IReadOnlyList<FakeAction> serving;
        lock (gate)
            serving = dataPlaneHistory.Where(h => h.From <= DateTimeOffset.UtcNow).Last().Actions;
        var group = serving.Where(a => a.Type == "forward").SelectMany(a => a.TargetGroups).MaxBy(g => g.Weight ?? 1);
        (string Version, string Slot) backend;
        lock (gate)
            if (group is null || !backends.TryGetValue(group.Arn, out backend))
            {
                context.Response.StatusCode = 503;
                return;
            }
        await context.Response.WriteAsync(JsonSerializer.Serialize(new { app = "shop", version = backend.Version, slot = backend.Slot }), context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in new[] { api, dataPlane })
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private sealed class FakeFault(int status, string code, string message) : Exception(message)
    {
        public int Status { get; } = status;
        public string Code { get; } = code;
    }
}
