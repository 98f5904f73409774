namespace ControlPlane.Core;

/// <summary>A field-level validation error; <see cref="Field"/> is a JSON path such as <c>router.settings.listenPort</c>.</summary>
public sealed record SettingsError(string Field, string Message);
