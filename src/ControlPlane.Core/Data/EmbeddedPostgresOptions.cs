namespace ControlPlane.Core.Data;

/// <summary>
/// Where and how to run the embedded PostgreSQL. <paramref name="DataDirectory"/> holds the cluster
/// (<c>postgres/</c>), its superuser password (<c>postgres.password</c>) and server log (<c>postgres.log</c>).
/// With <paramref name="Ephemeral"/> a fresh <c>cp-pg-*</c> directory is created under <paramref name="DataDirectory"/>
/// (or under the temp directory when it is empty) and deleted on stop.
/// <paramref name="BinDirectory"/> is <c>ControlPlane:PostgresBinDirectory</c>; null means look the binaries up.
/// </summary>
public sealed record EmbeddedPostgresOptions(
    string DataDirectory,
    string Database = "controlplane",
    bool Ephemeral = false,
    string? BinDirectory = null);
