namespace ControlPlane.Core;

/// <summary>Bound from the <c>ControlPlane</c> configuration section.</summary>
public sealed class ControlPlaneOptions
{
    public const string Section = "ControlPlane";

    /// <summary>Embedded PostgreSQL data and other local state (slot process records, logs).</summary>
    public string DataDirectory { get; set; } = ".controlplane";

    public string FullDataDirectory => Path.GetFullPath(DataDirectory);

    /// <summary><c>ControlPlane.Router.dll</c> (or its folder) for the embedded router's processes; looked up when absent.</summary>
    public string? RouterPath { get; set; }
}
