using System.Collections.Concurrent;
using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.Runtime.Credentials;

namespace ControlPlane.Core.Routing.Aws;

/// <summary>Where the ALB router's AWS credentials come from; tests inject fixed ones instead of touching the process environment.</summary>
public interface IAwsCredentialsSource
{
    /// <summary>Current credentials for <paramref name="profile"/> (a named profile of the shared config files), or the default chain when null.</summary>
    /// <exception cref="RouterException">No credentials could be found; the message says where it looked.</exception>
    Task<ImmutableCredentials> GetCredentialsAsync(string? profile, CancellationToken cancellationToken);
}

/// <summary>
/// The standard AWS credential chain of AWSSDK.Core: environment variables, the shared <c>credentials</c>/<c>config</c> files
/// (profiles, SSO, assume-role), web identity (EKS IRSA), ECS container credentials and EC2 instance metadata.
/// The resolved <see cref="AWSCredentials"/> are kept, so refreshing credentials (instance roles, assumed roles) refresh themselves.
/// </summary>
public sealed class AwsSdkCredentialsSource : IAwsCredentialsSource
{
    private const string DefaultChain = "";
    private readonly ConcurrentDictionary<string, AWSCredentials> resolved = new(StringComparer.Ordinal);

    public async Task<ImmutableCredentials> GetCredentialsAsync(string? profile, CancellationToken cancellationToken)
    {
        var key = profile ?? DefaultChain;
        try
        {
            if (!resolved.TryGetValue(key, out var credentials))
            {
                credentials = profile is null ? await DefaultAWSCredentialsIdentityResolver.GetCredentialsAsync(null) : FromProfile(profile);
                resolved.TryAdd(key, credentials);
            }
            cancellationToken.ThrowIfCancellationRequested();
            return await credentials.GetCredentialsAsync();
        }
        catch (AmazonClientException ex)
        {
            resolved.TryRemove(key, out _);
            var where = profile is null
                ? "the default AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws/credentials, web identity, ECS, EC2 instance metadata)"
                : $"the AWS profile '{profile}' (~/.aws/credentials, ~/.aws/config)";
            throw new RouterException($"No usable AWS credentials from {where}: {ex.Message}", ex);
        }
    }

    private static AWSCredentials FromProfile(string profile) =>
        new CredentialProfileStoreChain().TryGetAWSCredentials(profile, out var credentials)
            ? credentials
            : throw new AmazonClientException($"the profile '{profile}' was not found or has no credentials");
}

/// <summary>Fixed credentials (tests, or a deployment that injects them by other means).</summary>
public sealed class StaticAwsCredentialsSource(string accessKeyId, string secretAccessKey, string? sessionToken = null) : IAwsCredentialsSource
{
    public Task<ImmutableCredentials> GetCredentialsAsync(string? profile, CancellationToken cancellationToken) =>
        Task.FromResult(new ImmutableCredentials(accessKeyId, secretAccessKey, sessionToken));
}
