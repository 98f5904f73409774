using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Core.Data;

/// <summary>The two connections ControlPlane uses: one that serves requests and one that migrates the schema.</summary>
public sealed record DatabaseConnections(string Serving, string? Migrations);

/// <summary>
/// Least privilege in PostgreSQL. Migrations run as an owner role; ControlPlane serves as a role that is not a superuser,
/// owns nothing and may only INSERT and SELECT on the audit tables — so it cannot UPDATE, DELETE or TRUNCATE them, nor
/// ALTER them or switch off their append-only triggers (which only an owner or a superuser may do).
/// </summary>
public static class DatabaseRoles
{
    public const string OwnerRole = "controlplane_owner";
    public const string ServingRole = "controlplane_app";

    /// <summary>The append-only tables: the serving role may only add and read rows.</summary>
    public static readonly string[] AppendOnlyTables = ["audit_events", "audit_checkpoints"];

    /// <summary>
    /// On the embedded cluster the superuser creates both roles (passwords in private files next to the cluster), hands
    /// the database and everything in it to the owner role, and is not used again for serving.
    /// </summary>
    public static async Task<DatabaseConnections> BootstrapEmbeddedAsync(
        EmbeddedPostgres server, string database, ILogger logger, CancellationToken cancellationToken = default)
    {
        var root = Path.GetDirectoryName(server.DataDirectory)!;
        var ownerPassword = ReadOrCreatePassword(Path.Combine(root, "postgres.owner.password"));
        var servingPassword = ReadOrCreatePassword(Path.Combine(root, "postgres.app.password"));

        await using (var maintenance = new NpgsqlConnection(server.ConnectionStringFor("postgres")))
        {
            await maintenance.OpenAsync(cancellationToken);
            await ExecuteAsync(maintenance, $"""
                DO $$
                BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{OwnerRole}') THEN CREATE ROLE {OwnerRole}; END IF;
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ServingRole}') THEN CREATE ROLE {ServingRole}; END IF;
                END $$;
                ALTER ROLE {OwnerRole} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {Literal(ownerPassword)};
                ALTER ROLE {ServingRole} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {Literal(servingPassword)};
                ALTER DATABASE {Identifier(database)} OWNER TO {OwnerRole};
                """, cancellationToken);
            NpgsqlConnection.ClearPool(maintenance); // no idle superuser session stays behind
        }

        // Clusters made before the roles existed hold tables owned by the superuser: they move to the owner role.
        await using (var inDatabase = new NpgsqlConnection(server.ConnectionStringFor(database)))
        {
            await inDatabase.OpenAsync(cancellationToken);
            await ExecuteAsync(inDatabase, $"""
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                GRANT USAGE, CREATE ON SCHEMA public TO {OwnerRole};
                DO $$
                DECLARE r record;
                BEGIN
                  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                             AND pg_get_userbyid(c.relowner) <> '{OwnerRole}' LOOP
                    EXECUTE format('ALTER TABLE %s OWNER TO {OwnerRole}', r.name);
                  END LOOP;
                  -- Sequences of identity columns moved with their table above.
                  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'public' AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) <> '{OwnerRole}'
                             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i') LOOP
                    EXECUTE format('ALTER SEQUENCE %s OWNER TO {OwnerRole}', r.name);
                  END LOOP;
                  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                           WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{OwnerRole}' LOOP
                    EXECUTE format('ALTER FUNCTION %s OWNER TO {OwnerRole}', r.name);
                  END LOOP;
                END $$;
                """, cancellationToken);
            NpgsqlConnection.ClearPool(inDatabase);
        }

        logger.LogInformation("PostgreSQL roles: migrations run as {Owner}, ControlPlane serves as {Serving} (not a superuser, owns nothing)",
            OwnerRole, ServingRole);
        return new(server.ConnectionStringFor(database, ServingRole, servingPassword),
            server.ConnectionStringFor(database, OwnerRole, ownerPassword));
    }

    /// <summary>
    /// Run as the owner after every migration (idempotent, and covers tables later migrations add): the serving role may
    /// read and write the working tables, only INSERT and SELECT the append-only ones, and only read the migrations history.
    /// </summary>
    public static async Task GrantServingRoleAsync(NpgsqlDataSource owner, NpgsqlDataSource serving, ILogger logger, CancellationToken cancellationToken = default)
    {
        var servingRole = await CurrentUserAsync(serving, cancellationToken);
        await using var connection = await owner.OpenConnectionAsync(cancellationToken);
        var ownerRole = (string)(await new NpgsqlCommand("SELECT current_user", connection).ExecuteScalarAsync(cancellationToken))!;
        if (ownerRole == servingRole)
            return;
        var role = Identifier(servingRole);
        var appendOnly = string.Join(", ", AppendOnlyTables);
        await ExecuteAsync(connection, $"""
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
            REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {appendOnly} FROM {role};
            REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "__EFMigrationsHistory" FROM {role};
            """, cancellationToken);
        logger.LogInformation("Granted {Serving} INSERT and SELECT only on {Tables}", servingRole, appendOnly);
    }

    /// <summary>Says plainly when the serving connection could rewrite history (a single connection string for everything).</summary>
    public static async Task WarnIfOverPrivilegedAsync(NpgsqlDataSource serving, ILogger logger, CancellationToken cancellationToken = default)
    {
        await using var connection = await serving.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("""
            SELECT current_user, r.rolsuper,
                   has_table_privilege('audit_events', 'UPDATE') OR has_table_privilege('audit_events', 'DELETE')
                     OR has_table_privilege('audit_events', 'TRUNCATE'),
                   pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'audit_events'::regclass), 'USAGE')
            FROM pg_roles r WHERE r.rolname = current_user
            """, connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return;
        var (user, super, change, owns) = (reader.GetString(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3));
        if (super || change || owns)
            logger.LogWarning(
                "ControlPlane serves as PostgreSQL role {Role}, which {What}: whoever holds its password can rewrite the audit trail " +
                "(the signed checkpoints still reveal it). Serve as a role with INSERT and SELECT only on the audit tables: set " +
                "ConnectionStrings:ControlPlaneMigrations to the owner role and ConnectionStrings:ControlPlane to the serving role (docs/security.md).",
                user, super ? "is a superuser" : owns ? "owns the audit table" : "may change or remove audit rows");
    }

    private static async Task<string> CurrentUserAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("SELECT current_user");
        return (string)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>A role's password, kept in an owner-only file of the data directory; created once (random, 192 bits).</summary>
    public static string ReadOrCreatePassword(string path)
    {
        if (File.Exists(path)) return File.ReadAllText(path).Trim();
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(path, new UTF8Encoding(false), options)) writer.Write(password);
        return password;
    }

    internal static string Identifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
