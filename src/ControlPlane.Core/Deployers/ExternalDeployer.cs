using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text.Json;
using ControlPlane.Core.Deployments;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// The <c>external</c> deployer, for pipelines that deploy by themselves: ControlPlane only waits until the slot's version
/// endpoint reports the expected version, within a deadline. It never starts or stops anything.
/// </summary>
/// <remarks>
/// The deadline starts at the first <see cref="DeployAsync"/> call for an application, slot and version and is kept in
/// memory: after a restart of ControlPlane (or on another replica) the wait starts afresh, so a deployment may wait up to
/// twice the deadline in all, never less than one deadline.
/// </remarks>
public sealed class ExternalDeployer(IHttpClientFactory httpClientFactory, ILogger<ExternalDeployer> logger, TimeProvider timeProvider) : ISlotDeployer
{
    public const string KindName = "external";
    public const string HttpClientName = "ControlPlane.ExternalDeployer";

    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<(string Application, Slot Slot), Wait> waits = new();
    private readonly ConcurrentDictionary<(string Application, Slot Slot), bool> stopExplained = new();

    public string Kind => KindName;

    public IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings) => ExternalDeployerSettings.TryParse(settings, out _);

    public Uri EndpointOf(DeployerBinding binding, Slot slot) => SettingsOf(binding).UrlOf(slot);

    public async Task<SlotDeployResult> DeployAsync(DeployerBinding binding, Slot slot, string version, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        var errors = ExternalDeployerSettings.TryParse(binding.Settings, out var settings);
        if (settings is null)
            return SlotDeployResult.Failed("Invalid external deployer settings: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")));

        var key = (binding.Application, slot);
        var started = timeProvider.GetUtcNow();
        // Another version for this slot replaces the wait: only the latest request for a slot is waited for.
        var wait = waits.AddOrUpdate(key, _ => new Wait(version, started), (_, existing) => existing.Version == version ? existing : new Wait(version, started));
        var url = settings.VersionUrlOf(slot);

        var seen = await ReadVersionAsync(url, cancellationToken);
        if (seen.Success && seen.Version == version)
        {
            waits.TryRemove(new KeyValuePair<(string, Slot), Wait>(key, wait));
            stopExplained.TryRemove(key, out _);
            return SlotDeployResult.Ready($"The {slot.Name()} slot reports {version} at {url}.");
        }

        var elapsed = timeProvider.GetUtcNow() - wait.StartedAt;
        var detail = seen.Success ? $"it reports {seen.Version}" : seen.Detail;
        if (elapsed >= settings.Deadline)
        {
            // Forget the wait so that a later attempt gets a whole deadline again.
            waits.TryRemove(new KeyValuePair<(string, Slot), Wait>(key, wait));
            logger.LogWarning("Deploying {Version} to {App}/{Slot} failed: {Url} did not report it within {Deadline}s ({Detail})",
                version, binding.Application, slot.Name(), url, settings.DeadlineSeconds, detail);
            return SlotDeployResult.Failed(
                $"The {slot.Name()} slot did not report {version} at {url} within {settings.DeadlineSeconds}s: {detail}. " +
                $"ControlPlane does not deploy this slot itself; check the pipeline that deploys {binding.Application} to {slot.Name()}.");
        }

        var remaining = settings.Deadline - elapsed;
        logger.LogDebug("Waiting for {App}/{Slot} to report {Version} at {Url}: {Detail}", binding.Application, slot.Name(), version, url, detail);
        return SlotDeployResult.Pending(
            $"Waiting for the pipeline to deploy {version} to the {slot.Name()} slot: {url} — {detail} ({Math.Ceiling(remaining.TotalSeconds):0}s left).",
            remaining < PollInterval ? remaining : PollInterval);
    }

    public async Task<SlotObservation> ObserveAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        var url = SettingsOf(binding).VersionUrlOf(slot);
        var seen = await ReadVersionAsync(url, cancellationToken);
        if (!seen.Answered)
            return new SlotObservation(false, null, false, $"Nothing answers at {url}: {seen.Detail}.");
        return seen.Success
            ? new SlotObservation(true, seen.Version, true, $"{url} reports {seen.Version}.")
            : new SlotObservation(true, null, false, $"{url} {seen.Detail}.");
    }

    public Task StopAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken)
    {
        // Housekeeping asks again on every pass while the slot still answers: say it once, not on every pass.
        var level = stopExplained.TryAdd((binding.Application, slot), true) ? LogLevel.Information : LogLevel.Debug;
        logger.Log(level, "Not stopping {App}/{Slot}: the external deployer does not own the slot; scale it down in the pipeline that deploys it",
            binding.Application, slot.Name());
        return Task.CompletedTask;
    }

    private static ExternalDeployerSettings SettingsOf(DeployerBinding binding)
    {
        var errors = ExternalDeployerSettings.TryParse(binding.Settings, out var settings);
        return settings ?? throw new InvalidOperationException(
            $"Invalid external deployer settings of {binding.Application}: " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")));
    }

    /// <summary>GET the version endpoint; Success when it answered 2xx with a version (plain text, a JSON string, or JSON with <c>version</c>).</summary>
    private async Task<VersionReading> ReadVersionAsync(Uri url, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        // A cache in front of the slot must not answer with the version of before the deployment.
        request.Headers.CacheControl = new CacheControlHeaderValue { NoCache = true };
        try
        {
            using var response = await httpClientFactory.CreateClient(HttpClientName).SendAsync(request, timeout.Token);
            var body = await response.Content.ReadAsStringAsync(timeout.Token);
            if (!response.IsSuccessStatusCode)
                return new VersionReading(true, false, null, $"answers HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            var version = VersionIn(body);
            return version is null
                ? new VersionReading(true, false, null, $"answers without a version: '{(body.Length > 80 ? body[..80] + "…" : body).Trim()}'")
                : new VersionReading(true, true, version, "");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new VersionReading(false, false, null, $"no answer within {ProbeTimeout.TotalSeconds:0}s");
        }
        catch (HttpRequestException e)
        {
            return new VersionReading(false, false, null, $"not reachable ({e.Message})");
        }
    }

    private static string? VersionIn(string body)
    {
        var text = body.Trim();
        if (text.Length == 0)
            return null;
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.String)
                return root.GetString();
            if (root.ValueKind != JsonValueKind.Object)
                return text;
            foreach (var property in root.EnumerateObject())
                if (string.Equals(property.Name, "version", StringComparison.OrdinalIgnoreCase) && property.Value.ValueKind == JsonValueKind.String)
                    return property.Value.GetString();
            return null;
        }
        catch (JsonException)
        {
            // Plain text: the whole body is the version.
            return text.Contains('\n') ? null : text;
        }
    }

    private sealed record Wait(string Version, DateTimeOffset StartedAt);

    private sealed record VersionReading(bool Answered, bool Success, string? Version, string Detail);
}
