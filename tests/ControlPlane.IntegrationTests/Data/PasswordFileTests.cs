using ControlPlane.Core.Data;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace ControlPlane.IntegrationTests.Data;

/// <summary>The generated superuser password file is plain text an operator can paste: no byte-order mark, no line break.</summary>
public sealed class PasswordFileTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cp-pw-").FullName;

    [Fact]
    public async Task The_generated_password_file_has_no_byte_order_mark_and_its_bytes_are_the_password()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions(_root, Database: "cp_app"), NullLogger.Instance, ct);

        var bytes = await File.ReadAllBytesAsync(Path.Combine(_root, "postgres.password"), ct);
        Assert.False(bytes is [0xEF, 0xBB, 0xBF, ..], "the password file starts with a UTF-8 byte-order mark");
        var password = System.Text.Encoding.ASCII.GetString(bytes);
        Assert.Matches("^[0-9a-f]{48}$", password);

        // Exactly those bytes sign in (what psql or another tool reading the file would send).
        var builder = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Password = password };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(ct);
        await server.StopAsync(ct);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
