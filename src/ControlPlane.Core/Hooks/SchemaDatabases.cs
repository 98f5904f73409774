using Npgsql;

namespace ControlPlane.Core.Hooks;

/// <summary>
/// The databases SQL schema scripts may run against, by name (<c>ControlPlane:SchemaDatabases:&lt;name&gt;</c> = a connection
/// string; the embedded demo adds its orders database). The credentials stay in ControlPlane's configuration: an application
/// only names one. A connection that would act as one of ControlPlane's own roles, or on ControlPlane's own database, is
/// refused — a release's script must never be able to touch the release record or the audit trail.
/// </summary>
public sealed class SchemaDatabases
{
    private readonly Dictionary<string, string> _connectionStrings = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ownUsers = new(StringComparer.Ordinal) { Data.DatabaseRoles.OwnerRole, Data.DatabaseRoles.ServingRole, Data.EmbeddedPostgres.SuperUser };
    private readonly HashSet<(string?, int, string?)> _ownDatabases = [];

    public SchemaDatabases(IEnumerable<KeyValuePair<string, string?>> configured, IEnumerable<string?> ownConnectionStrings)
    {
        foreach (var own in ownConnectionStrings)
        {
            if (string.IsNullOrWhiteSpace(own)) continue;
            var b = new NpgsqlConnectionStringBuilder(own);
            if (b.Username is { } user) _ownUsers.Add(user);
            _ownDatabases.Add((b.Host, b.Port, b.Database));
        }
        foreach (var (name, value) in configured)
            if (!string.IsNullOrWhiteSpace(value)) Add(name, value);
    }

    public IReadOnlyCollection<string> Names => _connectionStrings.Keys;

    /// <summary>Adds (or replaces) a named database; throws when it would act as ControlPlane itself.</summary>
    public void Add(string name, string connectionString)
    {
        if (RefusalOf(connectionString) is { } why) throw new InvalidOperationException($"Schema database '{name}' is refused: {why}");
        _connectionStrings[name] = connectionString;
    }

    public string ConnectionStringOf(string name) =>
        _connectionStrings.TryGetValue(name, out var cs) ? cs
        : throw new InvalidOperationException($"no schema database named '{name}' is configured on this ControlPlane (ControlPlane:SchemaDatabases:{name})");

    public string? RefusalOf(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(b.Username)) return "it names no user (Username=…); give it a role of its own";
        if (_ownUsers.Contains(b.Username)) return $"it connects as '{b.Username}', a role ControlPlane itself uses";
        if (_ownDatabases.Contains((b.Host, b.Port, b.Database))) return $"it is ControlPlane's own database '{b.Database}'";
        return null;
    }
}
