using System.Text;
using ControlPlane.Core.Data;
using ControlPlane.Core.Hooks;
using ControlPlane.Web.Hosting;
using Npgsql;

namespace ControlPlane.Web.Demo;

/// <summary>
/// The demo app's own orders database on the embedded PostgreSQL: database <c>demo_orders</c> owned by role
/// <c>demo_orders</c> (password in a private file next to the cluster) — not one of ControlPlane's roles. It is the schema
/// database <c>demo-orders</c> that demo releases' expand/contract scripts run against, and the demo app reads its
/// connection string from a private file (never from its settings, which the API shows) on every request, so a
/// restarted cluster on another port is picked up.
/// </summary>
public static class DemoOrdersDatabase
{
    public const string SchemaDatabaseName = "demo-orders";
    public const string EnvironmentVariable = "DEMO_ORDERS_DB_FILE";
    private const string Database = "demo_orders";
    private const string Role = "demo_orders";

    /// <summary>Creates (once) and registers the database; returns the connection file's path, or null without an embedded cluster.</summary>
    public static async Task<string?> EnsureAsync(IServiceProvider services, ILogger logger, CancellationToken cancellationToken = default)
    {
        if (services.GetRequiredService<ResolvedDatabase>().Embedded is not { } server) return null;
        var root = Path.GetDirectoryName(server.DataDirectory)!;
        var password = DatabaseRoles.ReadOrCreatePassword(Path.Combine(root, "postgres.demo-orders.password"));
        await using (var superuser = new NpgsqlConnection(server.ConnectionStringFor("postgres")))
        {
            await superuser.OpenAsync(cancellationToken);
            await ExecuteAsync(superuser, $"""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{Role}') THEN CREATE ROLE {Role}; END IF;
                END $$;
                ALTER ROLE {Role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{password}';
                """, cancellationToken);
            await using var exists = new NpgsqlCommand($"SELECT 1 FROM pg_database WHERE datname = '{Database}'", superuser);
            if (await exists.ExecuteScalarAsync(cancellationToken) is null)
                await ExecuteAsync(superuser, $"CREATE DATABASE {Database} OWNER {Role}", cancellationToken);
            NpgsqlConnection.ClearPool(superuser);
        }
        var connectionString = server.ConnectionStringFor(Database, Role, password);
        await using (var owner = new NpgsqlConnection(connectionString))
        {
            await owner.OpenAsync(cancellationToken);
            // Created and seeded once, in 1.0.0's shape. Later starts leave the table alone: releases' expand/contract
            // scripts own its shape from then on (after the README's 3.0.0 contract there is no customer_name to insert into).
            await ExecuteAsync(owner, """
                DO $$ BEGIN
                  IF to_regclass('orders') IS NULL THEN
                    CREATE TABLE orders (id bigserial PRIMARY KEY, customer_name text NOT NULL, amount numeric(10,2) NOT NULL DEFAULT 0);
                    INSERT INTO orders (customer_name, amount) VALUES ('Ada', 42.00), ('Grace', 17.50), ('Linus', 8.25);
                  END IF;
                END $$;
                """, cancellationToken);
        }
        services.GetRequiredService<SchemaDatabases>().Add(SchemaDatabaseName, connectionString);
        var file = Path.Combine(root, "demo-orders.connection");
        await WritePrivateAsync(file, connectionString, cancellationToken);
        logger.LogInformation("Demo orders database {Database} (role {Role}) ready as schema database {Name}", Database, Role, SchemaDatabaseName);
        return file;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task WritePrivateAsync(string path, string content, CancellationToken cancellationToken)
    {
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var writer = new StreamWriter(temporary, new UTF8Encoding(false), options)) await writer.WriteAsync(content.AsMemory(), cancellationToken);
        File.Move(temporary, path, overwrite: true);
    }
}
