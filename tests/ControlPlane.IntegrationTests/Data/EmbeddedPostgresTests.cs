using ControlPlane.Core.Data;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging;
using Npgsql;
using Xunit;

namespace ControlPlane.IntegrationTests.Data;

public sealed class EmbeddedPostgresTests(PostgresFixture fixture) : IDisposable
{
    private readonly ILogger _logger = new TestOutputLogger();
    private readonly List<string> _directories = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Ephemeral_server_answers_queries_on_the_requested_database()
    {
        await using var server = await EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions("", Database: "cp_app", Ephemeral: true), _logger, Ct);

        Assert.StartsWith("PostgreSQL ", await ScalarAsync<string>(server.ConnectionString, "select version()"));
        Assert.Equal("cp_app", await ScalarAsync<string>(server.ConnectionString, "select current_database()"));
        Assert.Equal(server.Port.ToString(), await ScalarAsync<string>(server.ConnectionString, "show port"));
        Assert.True(File.Exists(Path.Combine(server.DataDirectory, "PG_VERSION")));
    }

    [Fact]
    public async Task Stopping_an_ephemeral_server_deletes_its_directory_and_is_idempotent()
    {
        var server = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions("", Ephemeral: true), _logger, Ct);
        var root = Path.GetDirectoryName(server.DataDirectory)!;
        Assert.True(Directory.Exists(server.DataDirectory));

        await server.StopAsync(Ct);
        await server.StopAsync(Ct);
        await server.DisposeAsync();

        Assert.False(Directory.Exists(root));
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync<int>(server.ConnectionString, "select 1"));
    }

    [Fact]
    public async Task A_persistent_cluster_keeps_its_data_across_restarts()
    {
        var options = new EmbeddedPostgresOptions(NewDirectory(), Database: "cp_app");

        await using (var first = await EmbeddedPostgres.StartAsync(options, _logger, Ct))
        {
            await ExecuteAsync(first.ConnectionString, "create table kept(value text); insert into kept values ('survives')");
            await first.StopAsync(Ct);
            Assert.False(File.Exists(Path.Combine(first.DataDirectory, "postmaster.pid")));
        }

        await using var second = await EmbeddedPostgres.StartAsync(options, _logger, Ct);
        Assert.Equal("survives", await ScalarAsync<string>(second.ConnectionString, "select value from kept"));
        Assert.Equal(Path.Combine(options.DataDirectory, "postgres"), second.DataDirectory);
    }

    [Fact]
    public async Task A_postmaster_left_running_on_the_directory_is_reused()
    {
        var options = new EmbeddedPostgresOptions(NewDirectory());
        await using var first = await EmbeddedPostgres.StartAsync(options, _logger, Ct);
        var pidBefore = PostmasterPid(first);

        // As after a kill -9 of ControlPlane: the daemonized postmaster survives and a new process starts.
        await using var second = await EmbeddedPostgres.StartAsync(options, _logger, Ct);

        Assert.Equal(first.Port, second.Port);
        Assert.Equal(pidBefore, PostmasterPid(second));
        Assert.Equal(1, await ScalarAsync<int>(second.ConnectionString, "select 1"));

        await second.StopAsync(Ct);
        await first.StopAsync(Ct); // already stopped by the second: must not throw
    }

    [Fact]
    public async Task A_stale_postmaster_pid_from_a_dead_server_does_not_block_start()
    {
        var options = new EmbeddedPostgresOptions(NewDirectory());
        string pidFile, staleContent;
        await using (var first = await EmbeddedPostgres.StartAsync(options, _logger, Ct))
        {
            pidFile = Path.Combine(first.DataDirectory, "postmaster.pid");
            staleContent = await File.ReadAllTextAsync(pidFile, Ct);
        }
        // The postmaster removes its pid file a moment before the process is gone.
        await WaitForExitAsync(int.Parse(staleContent.Split('\n')[0]));
        await File.WriteAllTextAsync(pidFile, staleContent, Ct);

        await using var second = await EmbeddedPostgres.StartAsync(options, _logger, Ct);

        Assert.Equal(1, await ScalarAsync<int>(second.ConnectionString, "select 1"));
        Assert.NotEqual(staleContent.Split('\n')[0], (await File.ReadAllTextAsync(pidFile, Ct)).Split('\n')[0]);
    }

    [Fact]
    public async Task An_empty_bin_directory_fails_with_a_message_saying_what_to_do()
    {
        var emptyBin = NewDirectory();

        var error = await Assert.ThrowsAsync<PostgresBinariesNotFoundException>(() => EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions(NewDirectory(), BinDirectory: emptyBin), _logger, Ct));

        Assert.Contains(emptyBin, error.Message);
        Assert.Contains("initdb", error.Message);
        Assert.Contains("apt-get install postgresql", error.Message);
        Assert.Contains("ControlPlane:PostgresBinDirectory", error.Message);
        Assert.Contains("ConnectionStrings:ControlPlane", error.Message);
    }

    [Fact]
    public async Task As_root_a_data_directory_the_postgres_user_cannot_reach_is_named_in_the_error()
    {
        Assert.SkipUnless(Environment.UserName == "root", "Only root hands the cluster to the postgres user.");
        var privateParent = NewDirectory(); // CreateTempSubdirectory makes it 0700, owned by root

        var error = await Assert.ThrowsAsync<EmbeddedPostgresException>(() => EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions(Path.Combine(privateParent, "data")), _logger, Ct));

        Assert.Contains($"cannot enter {privateParent}", error.Message);
        Assert.Contains("ControlPlane:DataDirectory", error.Message);
    }

    [Fact]
    public async Task The_fixture_creates_distinct_empty_databases()
    {
        var connectionStrings = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => fixture.CreateDatabaseAsync("Fixture Test")));

        var names = await Task.WhenAll(connectionStrings.Select(cs => ScalarAsync<string>(cs, "select current_database()")));
        Assert.Equal(4, names.Distinct().Count());
        Assert.All(names, name => Assert.StartsWith("fixture_test_", name));

        await ExecuteAsync(connectionStrings[0], "create table only_here(id int)");
        Assert.Equal(1L, await ScalarAsync<long>(connectionStrings[0], "select count(*) from pg_tables where schemaname = 'public'"));
        Assert.Equal(0L, await ScalarAsync<long>(connectionStrings[1], "select count(*) from pg_tables where schemaname = 'public'"));
        Assert.Equal(1, await ScalarAsync<int>(fixture.AdminConnectionString, "select 1"));
    }

    public void Dispose()
    {
        foreach (var directory in _directories.Where(Directory.Exists))
            Directory.Delete(directory, recursive: true);
    }

    private string NewDirectory()
    {
        var path = Directory.CreateTempSubdirectory("cp-t-").FullName;
        _directories.Add(path);
        return path;
    }

    private static async Task WaitForExitAsync(int pid)
    {
        for (var i = 0; i < 100; i++)
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                if (process.HasExited)
                    return;
            }
            catch (ArgumentException)
            {
                return;
            }
            await Task.Delay(100, Ct);
        }
        Assert.Fail($"Postmaster {pid} did not exit.");
    }

    private static string PostmasterPid(EmbeddedPostgres server) =>
        File.ReadAllLines(Path.Combine(server.DataDirectory, "postmaster.pid"))[0];

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private sealed class TestOutputLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            TestContext.Current.TestOutputHelper?.WriteLine($"{logLevel}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
    }
}
