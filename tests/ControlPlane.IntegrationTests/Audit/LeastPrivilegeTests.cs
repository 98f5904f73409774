using ControlPlane.Core.Data;
using ControlPlane.IntegrationTests.Infrastructure;
using ControlPlane.Web.Hosting;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ControlPlane.IntegrationTests.Audit;

/// <summary>ControlPlane serves as a role that cannot rewrite the audit trail — with an external database and embedded.</summary>
public sealed class LeastPrivilegeTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    public static TheoryData<string> Tampering => new()
    {
        "UPDATE audit_events SET reason = 'rewritten' WHERE sequence = 1",
        "DELETE FROM audit_events WHERE sequence = 1",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "ALTER TABLE audit_events ADD COLUMN note text",
        "DROP TRIGGER audit_events_no_truncate ON audit_events",
        "CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "UPDATE audit_checkpoints SET hash = 'x' WHERE sequence = 1",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
        "ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL",
        "DELETE FROM \"__EFMigrationsHistory\"",
        "CREATE TABLE mine (id int)",
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task The_serving_role_is_refused_by_its_privileges_not_only_by_a_trigger(string sql)
    {
        var ex = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(_factory.Database.Serving, sql));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, ex.SqlState);
        // A trigger raises the same code; the privilege system's own refusal is what a superuser-free role must meet.
        Assert.DoesNotContain("append-only", ex.MessageText);
        using var admin = _factory.Admin();
        Assert.True((await admin.GetJsonAsync("/api/v1/audit/verify")).GetProperty("valid").GetBoolean());
    }

    [Fact]
    public async Task ControlPlane_serves_as_the_serving_role_which_is_no_superuser_and_owns_nothing()
    {
        using var admin = _factory.Admin();
        (await admin.GetAsync("/api/v1/applications", Ct)).EnsureSuccessStatusCode();
        var role = _factory.Database.ServingRole;

        var usedRoles = await ScalarsAsync(_factory.ConnectionString,
            "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
        Assert.Equal([role], usedRoles);
        Assert.Equal(["false"], await ScalarsAsync(_factory.ConnectionString, $"SELECT rolsuper::text FROM pg_roles WHERE rolname = '{role}'"));
        Assert.Equal(["0"], await ScalarsAsync(_factory.ConnectionString,
            $"SELECT ((SELECT count(*) FROM pg_class WHERE relowner = r.oid) + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid))::text FROM pg_roles r WHERE rolname = '{role}'"));
        Assert.Equal(["INSERT", "SELECT"], await ScalarsAsync(_factory.ConnectionString,
            $"SELECT privilege_type::text FROM information_schema.role_table_grants WHERE grantee = '{role}' AND table_name = 'audit_events' ORDER BY 1"));
    }

    [Fact]
    public async Task The_embedded_default_creates_both_roles_and_serves_without_the_superuser()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("cp-lp-").FullName;
        try
        {
            await using (var embedded = new EmbeddedDefault(dataDirectory))
            {
                using var client = embedded.CreateClient();
                (await client.GetAsync("/healthz", Ct)).EnsureSuccessStatusCode();
                var database = embedded.Services.GetRequiredService<ResolvedDatabase>();
                // Unpooled, so that this test's own session is not one left idle by the bootstrap.
                var superuser = new NpgsqlConnectionStringBuilder(database.Embedded!.ConnectionStringFor("controlplane")) { Pooling = false }.ConnectionString;

                Assert.Equal([DatabaseRoles.ServingRole], await ScalarsAsync(superuser,
                    "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"));
                Assert.Equal([DatabaseRoles.OwnerRole], await ScalarsAsync(superuser,
                    "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class WHERE relnamespace = 'public'::regnamespace"));
                await using var cmd = database.DataSource.CreateCommand("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
                Assert.Equal(false, await cmd.ExecuteScalarAsync(Ct));
                foreach (var sql in new[] { "DELETE FROM audit_events", "ALTER TABLE audit_events DISABLE TRIGGER ALL", "TRUNCATE audit_checkpoints" })
                {
                    await using var tamper = database.DataSource.CreateCommand(sql);
                    var ex = await Assert.ThrowsAsync<PostgresException>(() => tamper.ExecuteNonQueryAsync(Ct));
                    Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, ex.SqlState);
                }
            }
        }
        finally
        {
            try { Directory.Delete(dataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private sealed class EmbeddedDefault(string dataDirectory) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseSetting("ControlPlane:DataDirectory", dataDirectory);
            builder.UseSetting("ControlPlane:Demo:Enabled", "false");
            builder.UseSetting("Logging:LogLevel:Default", "Warning");
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<List<string>> ScalarsAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        var values = new List<string>();
        while (await reader.ReadAsync(Ct)) values.Add(reader.GetValue(0).ToString()!);
        return values;
    }
}
