using System.Text.Json;
using ControlPlane.Core.Deployments;

namespace ControlPlane.Core.Deployers;

/// <summary>
/// Puts a version onto a slot and reports what runs there. One implementation per deployer kind.
/// Every method is idempotent and safe to call again after a crash of ControlPlane.
/// </summary>
public interface ISlotDeployer
{
    /// <summary>The kind name used in application registration, e.g. <c>process</c>.</summary>
    string Kind { get; }

    /// <summary>Field-level errors in this kind's settings (empty when valid). Field names are relative, e.g. <c>bluePort</c>.</summary>
    IReadOnlyList<SettingsError> ValidateSettings(JsonElement settings);

    /// <summary>The base URL the slot serves on (its preview endpoint); known from the settings alone.</summary>
    Uri EndpointOf(DeployerBinding binding, Slot slot);

    /// <summary>
    /// Converges the slot towards running <paramref name="version"/> and being healthy. The first call starts the work and
    /// usually returns <see cref="SlotDeployStatus.Pending"/>; call again after <see cref="SlotDeployResult.RetryAfter"/>
    /// until Ready or Failed. Never touches the other slot.
    /// </summary>
    Task<SlotDeployResult> DeployAsync(DeployerBinding binding, Slot slot, string version, CancellationToken cancellationToken);

    /// <summary>What runs on the slot now (used at start-up to find or replace slot processes, and for the dashboard).</summary>
    Task<SlotObservation> ObserveAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken);

    /// <summary>Stops (scales down) the slot; a no-op when nothing runs there.</summary>
    Task StopAsync(DeployerBinding binding, Slot slot, CancellationToken cancellationToken);
}

public sealed record DeployerBinding(string Application, JsonElement Settings);

public enum SlotDeployStatus { Pending, Ready, Failed }

public sealed record SlotDeployResult(SlotDeployStatus Status, string Message, TimeSpan RetryAfter)
{
    public static SlotDeployResult Ready(string message) => new(SlotDeployStatus.Ready, message, TimeSpan.Zero);
    public static SlotDeployResult Pending(string message, TimeSpan retryAfter) => new(SlotDeployStatus.Pending, message, retryAfter);
    public static SlotDeployResult Failed(string message) => new(SlotDeployStatus.Failed, message, TimeSpan.Zero);
}

/// <param name="Running">Something runs on the slot.</param>
/// <param name="Version">The version it runs, when known.</param>
/// <param name="Healthy">Its health endpoint answered successfully just now.</param>
public sealed record SlotObservation(bool Running, string? Version, bool Healthy, string Message);
