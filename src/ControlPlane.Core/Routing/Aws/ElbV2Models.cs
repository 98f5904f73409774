namespace ControlPlane.Core.Routing.Aws;

/// <summary>One target group of a forward action; <see cref="Weight"/> is null when ELBv2 did not state one.</summary>
public sealed record TargetGroupWeight(string TargetGroupArn, int? Weight);

/// <summary>
/// One action of a listener's default actions or of a rule. For <c>forward</c>, <see cref="TargetGroups"/> holds the
/// target groups whether ELBv2 described them as a single <c>TargetGroupArn</c> or as a <c>ForwardConfig</c>.
/// </summary>
public sealed record ElbAction(string Type, int? Order, IReadOnlyList<TargetGroupWeight> TargetGroups, bool StickinessEnabled);

/// <summary>The health of one registered target as reported by DescribeTargetHealth.</summary>
/// <param name="State">initial, healthy, unhealthy, unhealthy.draining, unused, draining or unavailable.</param>
/// <param name="Reason">e.g. <c>Target.ResponseCodeMismatch</c>; null when healthy.</param>
public sealed record TargetHealth(string TargetId, int? Port, string State, string? Reason, string? Description)
{
    public bool IsHealthy => string.Equals(State, "healthy", StringComparison.Ordinal);
}

/// <summary>How throttled ELBv2 calls are retried (exponential backoff with jitter, bounded).</summary>
/// <param name="MaxAttempts">Attempts in all, the first included.</param>
/// <param name="UseJitter">Randomise the delays so that many callers throttled together do not retry together.</param>
public sealed record ElbV2RetryPolicy(int MaxAttempts, TimeSpan BaseDelay, TimeSpan MaxDelay, bool UseJitter = true)
{
    public static readonly ElbV2RetryPolicy Default = new(6, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
}

/// <summary>An error answer of the ELBv2 API (or a transport failure after the retries were spent).</summary>
/// <param name="Action">The API action, e.g. <c>ModifyListener</c>.</param>
/// <param name="Code">AWS error code, e.g. <c>Throttling</c>, <c>AccessDenied</c>, <c>ListenerNotFound</c>.</param>
/// <param name="HttpStatus">The HTTP status of the answer; 0 when none arrived.</param>
/// <param name="Attempts">How many attempts were made before giving up.</param>
public sealed class ElbV2Exception(string action, string code, string errorMessage, int httpStatus, string? requestId, int attempts, Exception? inner = null)
    : Exception($"ELBv2 {action} failed: {code}: {errorMessage} (HTTP {httpStatus}{(requestId is null ? "" : $", request id {requestId}")})", inner)
{
    public string Action { get; } = action;
    public string Code { get; } = code;
    public string ErrorMessage { get; } = errorMessage;
    public int HttpStatus { get; } = httpStatus;
    public string? RequestId { get; } = requestId;
    public int Attempts { get; internal set; } = attempts;

    public bool IsThrottling =>
        Code is "Throttling" or "ThrottlingException" or "RequestLimitExceeded" or "TooManyRequestsException" or "RequestThrottled"
            or "RequestThrottledException" or "SlowDown" or "ServiceUnavailable" or "ServiceUnavailableException"
        || HttpStatus is 429 or 503;

    public bool IsAccessDenied =>
        Code is "AccessDenied" or "AccessDeniedException" or "UnauthorizedOperation" or "UnauthorizedAccess" || HttpStatus == 403 && !IsCredentialProblem;

    /// <summary>The credentials themselves are wrong or expired (as opposed to lacking a permission).</summary>
    public bool IsCredentialProblem =>
        Code is "InvalidClientTokenId" or "SignatureDoesNotMatch" or "ExpiredToken" or "ExpiredTokenException" or "RequestExpired"
            or "IncompleteSignature" or "MissingAuthenticationToken" or "UnrecognizedClientException" or "AuthFailure";
}
