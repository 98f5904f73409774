using System.Text.Json;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Routing.Aws;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Routing;

/// <summary>
/// The <c>aws-alb</c> router: an Application Load Balancer listener's default action (or one of its rules) forwards to
/// the blue or the green target group, weighted 100/0. A switch refuses a target group without a healthy target, then
/// modifies the forward action and reads it back to prove it; the data plane is verified through the public URL,
/// because the ALB applies a change with some lag. ControlPlane runs nothing here: attach and detach change nothing.
/// </summary>
public sealed class AwsAlbRouter(
    IHttpClientFactory httpClientFactory,
    IAwsCredentialsSource credentials,
    TimeProvider timeProvider,
    ILoggerFactory loggerFactory,
    ElbV2RetryPolicy? retryPolicy = null) : ITrafficRouter
{
    public const string KindName = "aws-alb";
    private const string Forward = "forward";

    private readonly ILogger logger = loggerFactory.CreateLogger<AwsAlbRouter>();
    private readonly ElbV2RetryPolicy retry = retryPolicy ?? ElbV2RetryPolicy.Default;

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => AwsAlbRouterSettings.Validate(settings);

    public string DescribeSwitch(RouterBinding binding, Slot from, Slot to)
    {
        var s = AwsAlbRouterSettings.Parse(binding.Settings);
        string Tg(Slot slot) => slot == Slot.Blue ? s.BlueTargetGroupArn : s.GreenTargetGroupArn;
        return $"{(s.RuleArn is null ? $"Listener {s.ListenerArn}" : $"Listener rule {s.RuleArn}")}: forward weights become " +
               $"{to.Name()} {Tg(to)} = 100 and {from.Name()} {Tg(from)} = 0 (only if {to.Name()} has healthy targets), then the rule is read back.";
    }

    public Task<Uri> AttachAsync(RouterBinding binding, Slot liveSlot, CancellationToken cancellationToken)
    {
        var settings = AwsAlbRouterSettings.Parse(binding.Settings);
        logger.LogInformation("{Application} is served by the ALB {What} at {PublicUrl}; ControlPlane runs no listener for it",
            binding.Application, WhatOf(settings), settings.PublicUrl);
        return Task.FromResult(settings.PublicUrl);
    }

    public async Task<Slot?> ReadLiveSlotAsync(RouterBinding binding, CancellationToken cancellationToken)
    {
        var settings = AwsAlbRouterSettings.Parse(binding.Settings);
        var actions = await DescribeAsync(ClientFor(settings), settings, binding.Application, cancellationToken);
        var (live, description) = Analyse(actions, settings);
        if (live is null)
            logger.LogWarning("Cannot tell the live slot of {Application}: the ALB {What} {Description}", binding.Application, WhatOf(settings), description);
        return live;
    }

    public async Task SwitchAsync(RouterBinding binding, Slot target, CancellationToken cancellationToken)
    {
        var settings = AwsAlbRouterSettings.Parse(binding.Settings);
        var client = ClientFor(settings);
        var app = binding.Application;
        var what = WhatOf(settings);
        var targetGroup = settings.TargetGroupOf(target);
        var otherGroup = settings.TargetGroupOf(target.Other());

        var before = await DescribeAsync(client, settings, app, cancellationToken);
        var (live, description) = Analyse(before, settings);
        if (live == target && before.All(a => a.Type == Forward))
        {
            logger.LogDebug("ALB {What} of {Application} already forwards all traffic to {Slot}", what, app, target.Name());
            return;
        }
        if (before.Where(a => a.Type != Forward).Select(a => a.Type).Distinct().ToList() is { Count: > 0 } others)
            throw Refuse(app, target, $"the {what} also has {string.Join(", ", others)} action(s), which a switch would replace by a single forward " +
                                      "action. Move them to another rule, or switch a rule that only forwards (ruleArn).");

        var health = await Aws(app, () => client.DescribeTargetHealthAsync(targetGroup, cancellationToken));
        var healthy = health.Count(h => h.IsHealthy);
        if (healthy == 0)
            throw Refuse(app, target, $"its target group {targetGroup} has no healthy targets ({HealthSummary(health)}). " +
                                      $"Traffic stays where it is ({description}).");

        TargetGroupWeight[] weights = [new(targetGroup, 100), new(otherGroup, 0)];
        await Aws(app, async () =>
        {
            if (settings.RuleArn is { } ruleArn)
                await client.ModifyRuleForwardAsync(ruleArn, weights, cancellationToken);
            else
                await client.ModifyListenerForwardAsync(settings.ListenerArn, weights, cancellationToken);
            return true;
        });

        // The answer to Modify* says what ELBv2 accepted; a fresh read says what it now does.
        var after = await DescribeAsync(client, settings, app, cancellationToken);
        if (!ForwardsExactly(after, targetGroup, otherGroup))
        {
            var seen = Analyse(after, settings).Description;
            logger.LogError("Switch of {Application} to {Slot} not confirmed: after {Action} the ALB {What} {Seen}",
                app, target.Name(), ActionOf(settings), what, seen);
            throw new RouterException(
                $"ELBv2 accepted {ActionOf(settings)} for {app}, but reading the {what} back shows that it {seen} instead of forwarding " +
                $"{target.Name()} 100 / {target.Other().Name()} 0. Traffic may not have moved; check the listener in the AWS console.");
        }
        logger.LogInformation("ALB {What} of {Application} now forwards to {Slot} ({TargetGroup}, {Healthy} of {Targets} targets healthy); before it {Before}",
            what, app, target.Name(), targetGroup, healthy, health.Count, description);
    }

    public async Task<DataPlaneVerification> VerifyDataPlaneAsync(
        RouterBinding binding, Slot expectedSlot, string expectedVersion, CancellationToken cancellationToken)
    {
        var settings = AwsAlbRouterSettings.Parse(binding.Settings);
        using var probe = new DataPlaneProbe(timeProvider, settings.VerifyDeadline);
        return await probe.VerifyAsync(settings.PublicUrl, binding.VerifyPath, expectedSlot, expectedVersion, cancellationToken);
    }

    public Task DetachAsync(string application, CancellationToken cancellationToken) => Task.CompletedTask;

    private ElbV2Client ClientFor(AwsAlbRouterSettings settings) => new(
        httpClientFactory.CreateClient(ElbV2Client.HttpClientName),
        settings.Endpoint ?? ElbV2Client.DefaultEndpoint(settings.Region),
        settings.Region,
        settings.Profile,
        credentials,
        retry,
        timeProvider,
        logger);

    private static Task<IReadOnlyList<ElbAction>> DescribeAsync(ElbV2Client client, AwsAlbRouterSettings settings, string app, CancellationToken cancellationToken) =>
        Aws(app, () => settings.RuleArn is { } ruleArn
            ? client.DescribeRuleActionsAsync(ruleArn, cancellationToken)
            : client.DescribeListenerDefaultActionsAsync(settings.ListenerArn, cancellationToken));

    /// <summary>The slot that receives all forwarded traffic (null when none or both do), and what the actions do in words.</summary>
    private static (Slot? Live, string Description) Analyse(IReadOnlyList<ElbAction> actions, AwsAlbRouterSettings settings)
    {
        var forward = actions.FirstOrDefault(a => a.Type == Forward);
        if (forward is null)
            return (null, actions.Count == 0 ? "has no actions" : $"does not forward (actions: {string.Join(", ", actions.Select(a => a.Type))})");

        string NameOf(string arn) => arn == settings.BlueTargetGroupArn ? "blue" : arn == settings.GreenTargetGroupArn ? "green" : arn;
        var description = "forwards " + string.Join(" / ", forward.TargetGroups.Select(g => $"{NameOf(g.TargetGroupArn)} {g.Weight?.ToString() ?? "(unweighted)"}"));
        // An unstated weight still receives traffic: ELBv2 omits it when a single target group is forwarded to.
        var receiving = forward.TargetGroups.Where(g => g.Weight is null or > 0).Select(g => g.TargetGroupArn).Distinct().ToList();
        Slot? live = receiving.Count != 1 ? null
            : receiving[0] == settings.BlueTargetGroupArn ? Slot.Blue
            : receiving[0] == settings.GreenTargetGroupArn ? Slot.Green
            : null;
        return (live, description);
    }

    private static bool ForwardsExactly(IReadOnlyList<ElbAction> actions, string targetGroup, string otherGroup) =>
        actions is [{ Type: Forward, StickinessEnabled: false } forward] &&
        forward.TargetGroups.Count(g => g.TargetGroupArn == targetGroup && g.Weight == 100) == 1 &&
        forward.TargetGroups.All(g => g.TargetGroupArn == targetGroup || g.TargetGroupArn == otherGroup && g.Weight is 0);

    private static string HealthSummary(IReadOnlyList<TargetHealth> health)
    {
        if (health.Count == 0)
            return "no targets are registered";
        return string.Join(", ", health.GroupBy(h => h.State).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g =>
            $"{g.Count()} {g.Key}" + (g.Key == "healthy" ? "" : ": " + string.Join("; ", g.Take(5).Select(h =>
                $"{h.TargetId}{(h.Port is { } port ? $":{port}" : "")} {h.Reason ?? "no reason given"}{(h.Description is { } d ? $" ({d})" : "")}")) +
                (g.Count() > 5 ? $"; and {g.Count() - 5} more" : ""))));
    }

    private RouterException Refuse(string app, Slot target, string reason)
    {
        logger.LogWarning("Not switching {Application} to {Slot}: {Reason}", app, target.Name(), reason);
        return new RouterException($"Not switching {app} to {target.Name()}: {reason}");
    }

    /// <summary>Runs an ELBv2 call and turns its faults into messages an operator can act on.</summary>
    private static async Task<T> Aws<T>(string app, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (ElbV2Exception ex)
        {
            throw new RouterException(Explain(app, ex), ex);
        }
    }

    private static string Explain(string app, ElbV2Exception ex)
    {
        var said = $"{ex.Code}: {ex.ErrorMessage}";
        if (ex.IsCredentialProblem)
            return $"AWS rejected the credentials used for {app} on {ex.Action} ({said}). Check the access key, session token and profile, " +
                   "and this machine's clock (signed requests expire after 5 minutes).";
        if (ex.IsAccessDenied)
            return $"AWS denied {ex.Action} for {app} ({said}). Grant ControlPlane's IAM identity the permission " +
                   $"elasticloadbalancing:{ex.Action} (the aws-alb router needs elasticloadbalancing:DescribeListeners, DescribeRules, " +
                   "DescribeTargetHealth, and ModifyListener or ModifyRule).";
        if (ex.IsThrottling)
            return $"ELBv2 {ex.Action} for {app} was still throttled after {ex.Attempts} attempt{(ex.Attempts == 1 ? "" : "s")} with backoff " +
                   $"({said}). Nothing more was tried; try again later, or find what else calls the ELBv2 API in this account and region.";
        if (ex.HttpStatus == 0)
            return $"ELBv2 {ex.Action} for {app} failed after {ex.Attempts} attempt{(ex.Attempts == 1 ? "" : "s")}: {ex.ErrorMessage}.";
        if (ex.Code.EndsWith("NotFound", StringComparison.Ordinal))
            return $"ELBv2 {ex.Action} for {app}: {said}. Check the ARNs in the router settings (listenerArn, ruleArn, blueTargetGroupArn, greenTargetGroupArn) and the region.";
        return $"ELBv2 {ex.Action} for {app} failed: {said} (HTTP {ex.HttpStatus}).";
    }

    private static string WhatOf(AwsAlbRouterSettings settings) =>
        settings.RuleArn is { } rule ? $"listener rule {rule}" : $"listener {settings.ListenerArn} (default action)";

    private static string ActionOf(AwsAlbRouterSettings settings) => settings.RuleArn is null ? "ModifyListener" : "ModifyRule";
}
