using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Routing;

/// <summary>Settings of the <c>aws-alb</c> router: which listener (or listener rule) forwards to which target group per slot.</summary>
/// <param name="Region">AWS region of the load balancer, e.g. <c>eu-west-1</c>.</param>
/// <param name="Endpoint">ELBv2 API endpoint override (VPC endpoint, a local fake); the public regional endpoint when null.</param>
/// <param name="ListenerArn">The Application Load Balancer listener.</param>
/// <param name="RuleArn">When set, this rule of the listener is switched instead of the listener's default action.</param>
/// <param name="PublicUrl">Where users reach the application through the load balancer; the data plane is verified there.</param>
/// <param name="Profile">Named AWS profile for credentials; the default credential chain when null.</param>
/// <param name="VerifyDeadlineSeconds">How long the data-plane verification retries after a switch (ALB propagation lags).</param>
public sealed record AwsAlbRouterSettings(
    string Region,
    Uri? Endpoint,
    string ListenerArn,
    string? RuleArn,
    string BlueTargetGroupArn,
    string GreenTargetGroupArn,
    Uri PublicUrl,
    string? Profile,
    int VerifyDeadlineSeconds)
{
    public const int DefaultVerifyDeadlineSeconds = 30;

    private static readonly string[] KnownFields =
        ["region", "endpoint", "listenerArn", "ruleArn", "blueTargetGroupArn", "greenTargetGroupArn", "publicUrl", "profile", "verifyDeadlineSeconds"];

    private static readonly Regex RegionPattern = new(@"^[a-z]{2}(-[a-z]+)+-\d{1,2}$", RegexOptions.CultureInvariant);
    private const string ArnPrefix = @"^arn:(?<partition>aws(-[a-z]+)*):elasticloadbalancing:(?<region>[a-z0-9-]+):(?<account>\d{12}):";
    private static readonly Regex ListenerPattern = new(ArnPrefix + @"listener/(?<path>app/[^/]+/[0-9a-f]+/[0-9a-f]+)$", RegexOptions.CultureInvariant);
    private static readonly Regex RulePattern = new(ArnPrefix + @"listener-rule/(?<path>app/[^/]+/[0-9a-f]+/[0-9a-f]+)/[0-9a-f]+$", RegexOptions.CultureInvariant);
    private static readonly Regex TargetGroupPattern = new(ArnPrefix + @"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$", RegexOptions.CultureInvariant);

    public string TargetGroupOf(Slot slot) => slot == Slot.Blue ? BlueTargetGroupArn : GreenTargetGroupArn;

    public TimeSpan VerifyDeadline => TimeSpan.FromSeconds(VerifyDeadlineSeconds);

    /// <summary>Field-level errors (field names relative to the settings object); empty when valid.</summary>
    public static IReadOnlyList<SettingsError> Validate(JsonElement settings) => Read(settings).Errors;

    /// <summary>Reads valid settings or throws a <see cref="RouterException"/> listing what is wrong.</summary>
    public static AwsAlbRouterSettings Parse(JsonElement settings)
    {
        var (parsed, errors) = Read(settings);
        if (parsed is null)
            throw new RouterException("Invalid aws-alb router settings: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")));
        return parsed;
    }

    private static (AwsAlbRouterSettings? Settings, IReadOnlyList<SettingsError> Errors) Read(JsonElement json)
    {
        const string example = "{\"region\":\"eu-west-1\",\"listenerArn\":\"arn:aws:elasticloadbalancing:…:listener/app/…\"," +
                               "\"blueTargetGroupArn\":\"…\",\"greenTargetGroupArn\":\"…\",\"publicUrl\":\"https://shop.example.com/\"}";
        if (json.ValueKind != JsonValueKind.Object)
            return (null, [new SettingsError("", "must be a JSON object such as " + example)]);

        var errors = new List<SettingsError>();
        foreach (var property in json.EnumerateObject())
            if (!KnownFields.Contains(property.Name, StringComparer.Ordinal))
                errors.Add(new SettingsError(property.Name, $"is not a setting of the aws-alb router (known: {string.Join(", ", KnownFields)})"));

        var region = RequiredString(json, "region", errors);
        if (region is not null && !RegionPattern.IsMatch(region))
            errors.Add(new SettingsError("region", "must be an AWS region code such as eu-west-1 or us-gov-west-1"));

        var listenerArn = RequiredString(json, "listenerArn", errors);
        var listener = listenerArn is null ? null : ListenerPattern.Match(listenerArn);
        if (listener is { Success: false })
            errors.Add(new SettingsError("listenerArn",
                "must be an Application Load Balancer listener ARN such as arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2 " +
                "(network load balancers cannot weight target groups)"));
        else if (listener is { Success: true })
            CheckSameRegion("listenerArn", listener, region, errors);

        var ruleArn = OptionalString(json, "ruleArn", errors);
        if (ruleArn is not null)
        {
            var rule = RulePattern.Match(ruleArn);
            if (!rule.Success)
                errors.Add(new SettingsError("ruleArn",
                    "must be a listener rule ARN such as arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee, or null for the listener's default action"));
            else if (listener is { Success: true } && (rule.Groups["path"].Value != listener.Groups["path"].Value || rule.Groups["account"].Value != listener.Groups["account"].Value))
                errors.Add(new SettingsError("ruleArn", "must be a rule of the listener given in listenerArn"));
        }

        var blue = TargetGroup(json, "blueTargetGroupArn", region, listener, errors);
        var green = TargetGroup(json, "greenTargetGroupArn", region, listener, errors);
        if (blue is not null && green is not null && blue == green)
            errors.Add(new SettingsError("greenTargetGroupArn", "must differ from blueTargetGroupArn"));

        Uri? endpoint = null;
        if (OptionalString(json, "endpoint", errors) is { } endpointText)
        {
            if (!Uri.TryCreate(endpointText, UriKind.Absolute, out endpoint) || endpoint.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(endpoint.UserInfo))
                errors.Add(new SettingsError("endpoint", "must be an absolute https URL such as https://vpce-0123.elasticloadbalancing.eu-west-1.vpce.amazonaws.com/, or null for the regional endpoint"));
            else if (endpoint.Scheme == "http" && !IsLoopback(endpoint))
                errors.Add(new SettingsError("endpoint", "must use https (plain http is accepted only for a loopback address, such as a local test fake)"));
        }

        Uri? publicUrl = null;
        if (RequiredString(json, "publicUrl", errors) is { } publicText &&
            (!Uri.TryCreate(publicText, UriKind.Absolute, out publicUrl) || publicUrl.Scheme is not ("https" or "http")))
            errors.Add(new SettingsError("publicUrl", "must be an absolute http or https URL such as https://shop.example.com/"));

        var profile = OptionalString(json, "profile", errors);
        if (profile is not null && string.IsNullOrWhiteSpace(profile))
            errors.Add(new SettingsError("profile", "must be a profile name, or null for the default credential chain"));

        var deadline = DefaultVerifyDeadlineSeconds;
        if (json.TryGetProperty("verifyDeadlineSeconds", out var deadlineJson) && deadlineJson.ValueKind != JsonValueKind.Null &&
            !(deadlineJson.ValueKind == JsonValueKind.Number && deadlineJson.TryGetInt32(out deadline) && deadline is >= 1 and <= 600))
            errors.Add(new SettingsError("verifyDeadlineSeconds", "must be a whole number of seconds from 1 to 600 (default 30)"));

        if (errors.Count > 0)
            return (null, errors);
        return (new AwsAlbRouterSettings(region!, endpoint, listenerArn!, ruleArn, blue!, green!, publicUrl!, profile, deadline), errors);
    }

    private static string? TargetGroup(JsonElement json, string field, string? region, Match? listener, List<SettingsError> errors)
    {
        var arn = RequiredString(json, field, errors);
        if (arn is null)
            return null;
        var match = TargetGroupPattern.Match(arn);
        if (!match.Success)
        {
            errors.Add(new SettingsError(field, "must be a target group ARN such as arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-blue/73e2d6bc24d8a067"));
            return null;
        }
        CheckSameRegion(field, match, region, errors);
        if (listener is { Success: true } && match.Groups["account"].Value != listener.Groups["account"].Value)
            errors.Add(new SettingsError(field, "must belong to the same AWS account as the listener"));
        return arn;
    }

    private static void CheckSameRegion(string field, Match arn, string? region, List<SettingsError> errors)
    {
        if (region is not null && arn.Groups["region"].Value != region)
            errors.Add(new SettingsError(field, $"is in region {arn.Groups["region"].Value}, but region is {region}"));
    }

    private static string? RequiredString(JsonElement json, string field, List<SettingsError> errors)
    {
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null ||
            value.ValueKind == JsonValueKind.String && string.IsNullOrWhiteSpace(value.GetString()))
        {
            errors.Add(new SettingsError(field, "is required"));
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add(new SettingsError(field, "must be a string"));
            return null;
        }
        return value.GetString()!.Trim();
    }

    private static string? OptionalString(JsonElement json, string field, List<SettingsError> errors)
    {
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add(new SettingsError(field, "must be a string or null"));
            return null;
        }
        return value.GetString()!.Trim();
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
}
