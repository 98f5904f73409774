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

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
    }

    [GeneratedRegex("[^a-z0-9_]")]
    private static partial Regex NotIdentifierCharacters();
}
