using System.Text.RegularExpressions;
using ControlPlane.Core.Data;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit;

[assembly: AssemblyFixture(typeof(PostgresFixture))]

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>
/// One ephemeral PostgreSQL for the whole test assembly, started from the machine's binaries.
/// Tests take it through their constructor and ask for a fresh database each.
/// </summary>
public sealed partial class PostgresFixture : IAsyncLifetime
{
    private EmbeddedPostgres? _server;

    public EmbeddedPostgres Server => _server ?? throw new InvalidOperationException("The PostgreSQL fixture has not started.");

    /// <summary>Superuser connection string to the <c>postgres</c> maintenance database.</summary>
    public string AdminConnectionString => Server.ConnectionStringFor("postgres");

    public async ValueTask InitializeAsync() =>
        _server = await EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions(DataDirectory: "", Ephemeral: true), NullLogger.Instance, TestContext.Current.CancellationToken);

    /// <summary>Creates an empty database with a unique name and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string? prefix = null)
    {
        var cleaned = NotIdentifierCharacters().Replace((prefix ?? "test").ToLowerInvariant(), "_");
        var name = $"{cleaned[..Math.Min(cleaned.Length, 30)]}_{Guid.NewGuid():N}";

        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var create = new NpgsqlCommand($"create database \"{name}\"", connection);
        await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        return Server.ConnectionStringFor(name);
    }

    /// <summary>
    /// A fresh database set up as docs/security.md tells operators of an external PostgreSQL to: an owner role that owns
    /// the database (migrations) and a serving role with nothing of its own (ControlPlane grants it what it needs).
    /// </summary>
    public async Task<RoleDatabase> CreateDatabaseWithRolesAsync(string? prefix = null)
    {
        var cleaned = NotIdentifierCharacters().Replace((prefix ?? "test").ToLowerInvariant(), "_");
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var name = $"{cleaned[..Math.Min(cleaned.Length, 30)]}_{suffix}";
        var (owner, serving) = ($"owner_{suffix}", $"app_{suffix}");
        var (ownerPassword, servingPassword) = (Guid.NewGuid().ToString("N"), Guid.NewGuid().ToString("N"));

        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        foreach (var sql in new[]
                 {
                     $"create role {owner} login password '{ownerPassword}'",
                     $"create role {serving} login password '{servingPassword}'",
                     $"create database \"{name}\" owner {owner}",
                 })
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
        return new(Server.ConnectionStringFor(name), Server.ConnectionStringFor(name, owner, ownerPassword),
            Server.ConnectionStringFor(name, serving, servingPassword), serving);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
    }

    [GeneratedRegex("[^a-z0-9_]")]
    private static partial Regex NotIdentifierCharacters();
}

/// <summary>Connection strings to one database: the superuser (tests tamper with it), the owner and the serving role.</summary>
public sealed record RoleDatabase(string SuperUser, string Owner, string Serving, string ServingRole);
