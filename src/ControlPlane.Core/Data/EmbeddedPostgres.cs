using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ControlPlane.Core.Data;

/// <summary>
/// A PostgreSQL cluster run from the machine's server binaries: the product's default when no
/// <c>ConnectionStrings:ControlPlane</c> is configured, and the integration tests' throwaway database.
/// </summary>
public sealed partial class EmbeddedPostgres : IAsyncDisposable
{
    public const string SuperUser = "controlplane";
    private const string SystemUser = "postgres";
    private const string BinDirectoryKey = "ControlPlane:PostgresBinDirectory";
    private const int MaxSocketPathLength = 107;

    private static readonly TimeSpan InitDbTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan PgCtlTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan QuickTimeout = TimeSpan.FromSeconds(15);

    private readonly string _root;
    private readonly string _binDirectory;
    private readonly bool _runAsSystemUser;
    private readonly bool _ephemeral;
    private readonly string _password;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _stopLock = new(1, 1);
    private readonly ConcurrentDictionary<string, bool> _issuedConnectionStrings = new();
    private bool _stopped;

    private EmbeddedPostgres(string root, string binDirectory, bool runAsSystemUser, bool ephemeral,
        string password, int port, string database, ILogger logger)
    {
        _root = root;
        _binDirectory = binDirectory;
        _runAsSystemUser = runAsSystemUser;
        _ephemeral = ephemeral;
        _password = password;
        _logger = logger;
        Port = port;
        ConnectionString = ConnectionStringFor(database);
    }

    /// <summary>Superuser connection string to the configured database.</summary>
    public string ConnectionString { get; }

    public int Port { get; }

    /// <summary>The PGDATA directory in use (<c>&lt;DataDirectory&gt;/postgres</c>).</summary>
    public string DataDirectory => Path.Combine(_root, "postgres");

    private string LogFile => Path.Combine(_root, "postgres.log");

    public string ConnectionStringFor(string database) => ConnectionStringFor(database, SuperUser, _password);

    /// <summary>A connection string for another role of this cluster (see <see cref="DatabaseRoles"/>).</summary>
    public string ConnectionStringFor(string database, string userName, string password)
    {
        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = IPAddress.Loopback.ToString(),
            Port = Port,
            Username = userName,
            Password = password,
            Database = database,
        }.ConnectionString;
        _issuedConnectionStrings.TryAdd(connectionString, true);
        return connectionString;
    }

    public static async Task<EmbeddedPostgres> StartAsync(
        EmbeddedPostgresOptions options, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Database);
        if (!options.Ephemeral)
            ArgumentException.ThrowIfNullOrWhiteSpace(options.DataDirectory);

        var root = options.Ephemeral
            ? CreateEphemeralRoot(options.DataDirectory)
            : Path.GetFullPath(options.DataDirectory);
        var pgData = Path.Combine(root, "postgres");
        try
        {
            var clusterVersion = ReadClusterVersion(pgData);
            var binDirectory = await FindBinariesAsync(options.BinDirectory, clusterVersion, logger, cancellationToken);
            if (clusterVersion is not null)
                await EnsureBinariesMatchClusterAsync(binDirectory, clusterVersion, pgData, cancellationToken);

            // initdb and postgres refuse to run as root, so root hands the cluster to the postgres system user.
            var runAsSystemUser = !OperatingSystem.IsWindows() && Environment.UserName == "root";
            await PrepareDirectoriesAsync(root, pgData, clusterVersion is null, runAsSystemUser, logger, cancellationToken);

            var password = clusterVersion is null
                ? await InitDbAsync(root, pgData, binDirectory, runAsSystemUser, options.Ephemeral, logger, cancellationToken)
                : ReadPassword(root, pgData);

            var port = await StartOrReuseServerAsync(root, pgData, binDirectory, runAsSystemUser, options.Ephemeral, logger, cancellationToken);
            var server = new EmbeddedPostgres(root, binDirectory, runAsSystemUser, options.Ephemeral, password, port, options.Database, logger);
            try
            {
                await server.EnsureDatabaseAsync(options.Database, cancellationToken);
            }
            catch when (options.Ephemeral)
            {
                await server.StopAsync(CancellationToken.None);
                throw;
            }
            return server;
        }
        catch when (options.Ephemeral)
        {
            TryDeleteDirectory(root, logger);
            throw;
        }
    }

    /// <summary><c>pg_ctl stop -m fast</c>; safe to call twice. An ephemeral cluster's directory is deleted too.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        await _stopLock.WaitAsync(cancellationToken);
        try
        {
            if (_stopped)
                return;

            var stop = await RunToolAsync(_binDirectory, "pg_ctl", ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "60"],
                _runAsSystemUser, PgCtlTimeout, cancellationToken);
            if (stop.ExitCode != 0 && await IsRunningAsync(_binDirectory, DataDirectory, _runAsSystemUser, cancellationToken))
                throw new EmbeddedPostgresException(
                    $"pg_ctl stop failed for {DataDirectory} (exit code {stop.ExitCode}).{Environment.NewLine}{stop.Output}");

            _stopped = true;
            // A later server on the same port would otherwise be handed these dead pooled connections.
            foreach (var connectionString in _issuedConnectionStrings.Keys)
            {
                await using var connection = new NpgsqlConnection(connectionString);
                NpgsqlConnection.ClearPool(connection);
            }
            if (stop.ExitCode == 0)
                _logger.LogInformation("Stopped PostgreSQL on port {Port} (data {DataDirectory})", Port, DataDirectory);
            else
                _logger.LogInformation("PostgreSQL on port {Port} was already stopped (data {DataDirectory})", Port, DataDirectory);

            if (_ephemeral)
                TryDeleteDirectory(_root, _logger);
        }
        finally
        {
            _stopLock.Release();
        }
    }

    /// <summary>Whether this cluster's server runs (<c>pg_ctl status</c>); a stopped (SIGSTOP) server still counts as running.</summary>
    public Task<bool> IsRunningAsync(CancellationToken cancellationToken = default) =>
        IsRunningAsync(_binDirectory, DataDirectory, _runAsSystemUser, cancellationToken);

    /// <summary>
    /// Starts the server again on the same port (so every connection string stays valid) after it stopped underneath us:
    /// <c>pg_ctl stop</c>, a crash, an OOM kill. False when it already runs or we stopped it ourselves.
    /// </summary>
    public async Task<bool> StartAgainAsync(CancellationToken cancellationToken = default)
    {
        await _stopLock.WaitAsync(cancellationToken);
        try
        {
            if (_stopped || await IsRunningAsync(cancellationToken))
                return false;
            var logOffset = File.Exists(LogFile) ? new FileInfo(LogFile).Length : 0;
            var result = await RunToolAsync(_binDirectory, "pg_ctl",
                ["start", "-w", "-t", "60", "-D", DataDirectory, "-l", LogFile, "-o", ServerOptions(DataDirectory, Port, _ephemeral)],
                _runAsSystemUser, PgCtlTimeout, cancellationToken);
            if (result.ExitCode != 0)
                throw new EmbeddedPostgresException(
                    $"pg_ctl start failed for {DataDirectory} on port {Port} (exit code {result.ExitCode}).{Environment.NewLine}{result.Output}{ServerLogTail(LogFile, logOffset)}");
            return true;
        }
        finally
        {
            _stopLock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Could not stop PostgreSQL on port {Port} (data {DataDirectory})", Port, DataDirectory);
        }
    }

    private async Task EnsureDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        await using var connection = await OpenWhenReadyAsync(ConnectionStringFor("postgres"), cancellationToken);
        await using var exists = new NpgsqlCommand("select 1 from pg_database where datname = @name", connection);
        exists.Parameters.AddWithValue("name", database);
        if (await exists.ExecuteScalarAsync(cancellationToken) is not null)
            return;

        await using var create = new NpgsqlCommand($"create database {QuoteIdentifier(database)}", connection);
        await create.ExecuteNonQueryAsync(cancellationToken);
        _logger.LogInformation("Created database {Database} on port {Port}", database, Port);
    }

    // A reused server can still be finishing crash recovery ("the database system is starting up").
    private async Task<NpgsqlConnection> OpenWhenReadyAsync(string connectionString, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var connection = new NpgsqlConnection(connectionString);
            try
            {
                await connection.OpenAsync(cancellationToken);
                return connection;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.CannotConnectNow && DateTime.UtcNow < deadline)
            {
                await connection.DisposeAsync();
                await Task.Delay(200, cancellationToken);
            }
            catch (Exception ex) when (ex is NpgsqlException or SocketException && !cancellationToken.IsCancellationRequested)
            {
                await connection.DisposeAsync();
                throw new EmbeddedPostgresException(
                    $"Could not connect to the embedded PostgreSQL on 127.0.0.1:{Port} (data {DataDirectory}): {ex.Message}" +
                    ServerLogTail(LogFile, 0), ex);
            }
        }
    }

    private static string CreateEphemeralRoot(string parent)
    {
        // Short names keep the unix socket path (PGDATA/.s.PGSQL.port) under the 107-character limit.
        var baseDirectory = string.IsNullOrWhiteSpace(parent) ? Path.GetTempPath() : Path.GetFullPath(parent);
        Directory.CreateDirectory(baseDirectory);
        while (true)
        {
            var path = Path.Combine(baseDirectory, "cp-pg-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
            if (Directory.Exists(path))
                continue;
            Directory.CreateDirectory(path);
            return path;
        }
    }

    private static string? ReadClusterVersion(string pgData)
    {
        var file = Path.Combine(pgData, "PG_VERSION");
        return File.Exists(file) ? File.ReadAllText(file).Trim() : null;
    }

    private static async Task<string> FindBinariesAsync(
        string? configured, string? clusterVersion, ILogger logger, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var full = Path.GetFullPath(configured);
            if (!HasServerBinaries(full))
                throw new PostgresBinariesNotFoundException(
                    $"PostgreSQL server binaries (initdb, pg_ctl) were not found in {full}, the directory set by {BinDirectoryKey}. " +
                    $"Point {BinDirectoryKey} at the directory that contains initdb and pg_ctl (e.g. /usr/lib/postgresql/<version>/bin), " +
                    "install them (Debian/Ubuntu: apt-get install postgresql), or point ConnectionStrings:ControlPlane at an existing PostgreSQL.");
            logger.LogInformation("Using PostgreSQL binaries in {BinDirectory} (from {Key})", full, BinDirectoryKey);
            return full;
        }

        var versioned = VersionedBinDirectories();
        var looked = new List<string>();

        // An existing cluster can only be started by its own major version.
        if (clusterVersion is not null && versioned.FirstOrDefault(v => v.Major.ToString(CultureInfo.InvariantCulture) == clusterVersion) is { } match)
            return Found(match.Path, "the existing cluster's version");

        var fromPgConfig = await PgConfigBinDirectoryAsync(cancellationToken);
        looked.Add("pg_config --bindir" + (fromPgConfig is null ? "" : $" ({fromPgConfig})"));
        if (fromPgConfig is not null && HasServerBinaries(fromPgConfig))
            return Found(fromPgConfig, "pg_config --bindir");

        looked.Add("/usr/lib/postgresql/*/bin, /usr/pgsql-*/bin");
        if (versioned.Count > 0)
            return Found(versioned[0].Path, "the newest installed version");

        looked.Add("PATH");
        if (FindOnPath() is { } onPath)
            return Found(onPath, "PATH");

        throw new PostgresBinariesNotFoundException(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found (looked in: " + string.Join("; ", looked) + "). " +
            $"Install them (Debian/Ubuntu: apt-get install postgresql) or set {BinDirectoryKey} to the directory that contains them, " +
            "or point ConnectionStrings:ControlPlane at an existing PostgreSQL.");

        string Found(string path, string source)
        {
            logger.LogInformation("Using PostgreSQL binaries in {BinDirectory} (found via {Source})", path, source);
            return path;
        }
    }

    private static bool HasServerBinaries(string directory) =>
        File.Exists(Path.Combine(directory, ExecutableName("initdb"))) &&
        File.Exists(Path.Combine(directory, ExecutableName("pg_ctl")));

    private static string ExecutableName(string tool) => OperatingSystem.IsWindows() ? tool + ".exe" : tool;

    private static List<(int Major, string Path)> VersionedBinDirectories()
    {
        var found = new List<(int Major, string Path)>();
        foreach (var (parent, prefix, suffix) in new[] { ("/usr/lib/postgresql", "", "bin"), ("/usr", "pgsql-", "bin") })
        {
            if (!Directory.Exists(parent))
                continue;
            foreach (var directory in Directory.EnumerateDirectories(parent, prefix + "*"))
            {
                var name = Path.GetFileName(directory)[prefix.Length..];
                var bin = Path.Combine(directory, suffix);
                if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var major) && HasServerBinaries(bin))
                    found.Add((major, bin));
            }
        }
        return [.. found.OrderByDescending(v => v.Major)];
    }

    private static async Task<string?> PgConfigBinDirectoryAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await RunAsync("pg_config", ["--bindir"], QuickTimeout, cancellationToken);
            var path = result.StandardOutput.Trim();
            return result.ExitCode == 0 && path.Length > 0 ? path : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // pg_config is not installed
        }
    }

    private static string? FindOnPath()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var initDb = new FileInfo(Path.Combine(directory, ExecutableName("initdb")));
            if (!initDb.Exists)
                continue;
            // /usr/local/bin/initdb is often a symlink; the real directory also holds pg_ctl and postgres.
            var real = Path.GetDirectoryName(initDb.ResolveLinkTarget(returnFinalTarget: true)?.FullName);
            if (real is not null && HasServerBinaries(real))
                return real;
            if (HasServerBinaries(directory))
                return Path.GetFullPath(directory);
        }
        return null;
    }

    private static async Task EnsureBinariesMatchClusterAsync(
        string binDirectory, string clusterVersion, string pgData, CancellationToken cancellationToken)
    {
        var result = await RunAsync(Path.Combine(binDirectory, ExecutableName("pg_ctl")), ["--version"], QuickTimeout, cancellationToken);
        var match = PostgresVersion().Match(result.StandardOutput);
        if (match.Success && match.Groups[1].Value != clusterVersion)
            throw new EmbeddedPostgresException(
                $"The PostgreSQL cluster in {pgData} was created by PostgreSQL {clusterVersion}, but the binaries in {binDirectory} " +
                $"are PostgreSQL {match.Groups[1].Value}. Install the PostgreSQL {clusterVersion} server binaries or set {BinDirectoryKey} " +
                "to them, or upgrade the cluster with pg_upgrade.");
    }

    private static async Task PrepareDirectoriesAsync(
        string root, string pgData, bool willInit, bool runAsSystemUser, ILogger logger, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(root);
        if (willInit && !Directory.Exists(pgData))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(pgData);
            else
                Directory.CreateDirectory(pgData, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (!runAsSystemUser || OperatingSystem.IsWindows())
            return;

        // The postgres user must reach PGDATA through our own directory and write the server log in it.
        var rootMode = File.GetUnixFileMode(root);
        if (!rootMode.HasFlag(UnixFileMode.OtherExecute))
        {
            logger.LogInformation("Allowing the {User} user to traverse {Directory} (chmod o+x)", SystemUser, root);
            File.SetUnixFileMode(root, rootMode | UnixFileMode.OtherExecute);
        }
        var log = Path.Combine(root, "postgres.log");
        if (!File.Exists(log))
            await File.WriteAllTextAsync(log, "", cancellationToken);
        await ChownToSystemUserAsync(log, cancellationToken);
        if (willInit)
            await ChownToSystemUserAsync(pgData, cancellationToken);

        var reach = await RunAsync("runuser", ["-u", SystemUser, "--", "test", "-w", pgData], QuickTimeout, cancellationToken);
        if (reach.ExitCode == 0)
            return;

        var blocked = await FirstUntraversableAncestorAsync(pgData, cancellationToken);
        throw new EmbeddedPostgresException(blocked is null
            ? $"Running as root, the embedded PostgreSQL runs as the '{SystemUser}' system user, which cannot write to {pgData}. " +
              $"Choose a ControlPlane:DataDirectory that user can reach.{Environment.NewLine}{reach.Output}"
            : $"Running as root, the embedded PostgreSQL runs as the '{SystemUser}' system user, which cannot enter {blocked} " +
              $"(a parent of {pgData}). Choose a ControlPlane:DataDirectory outside {blocked} (e.g. /var/lib/controlplane), " +
              $"or allow traversal (chmod o+x {blocked}), or run ControlPlane as a non-root user.");
    }

    private static async Task<string?> FirstUntraversableAncestorAsync(string path, CancellationToken cancellationToken)
    {
        var chain = new List<string>();
        for (var dir = new DirectoryInfo(path).Parent; dir is not null; dir = dir.Parent)
            chain.Insert(0, dir.FullName);
        foreach (var dir in chain)
        {
            var result = await RunAsync("runuser", ["-u", SystemUser, "--", "test", "-x", dir], QuickTimeout, cancellationToken);
            if (result.ExitCode != 0)
                return dir;
        }
        return null;
    }

    private static async Task ChownToSystemUserAsync(string path, CancellationToken cancellationToken)
    {
        var result = await RunAsync("chown", [SystemUser + ":", path], QuickTimeout, cancellationToken);
        if (result.ExitCode != 0)
            throw new EmbeddedPostgresException(
                $"Running as root, the embedded PostgreSQL must run as the '{SystemUser}' system user, but chown of {path} failed. " +
                $"Create that user (Debian/Ubuntu: apt-get install postgresql creates it) or run ControlPlane as a non-root user." +
                $"{Environment.NewLine}{result.Output}");
    }

    private static async Task<string> InitDbAsync(
        string root, string pgData, string binDirectory, bool runAsSystemUser, bool ephemeral, ILogger logger, CancellationToken cancellationToken)
    {
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        var passwordFile = Path.Combine(root, "postgres.password");
        WritePrivateFile(passwordFile, password);

        // initdb reads the password as the postgres user, who must not read our copy.
        var initPasswordFile = passwordFile;
        if (runAsSystemUser)
        {
            initPasswordFile = Path.Combine(root, "postgres.password.initdb");
            WritePrivateFile(initPasswordFile, password);
            await ChownToSystemUserAsync(initPasswordFile, cancellationToken);
        }

        logger.LogInformation("Initializing PostgreSQL cluster in {DataDirectory}", pgData);
        try
        {
            string[] arguments = ["-D", pgData, "-U", SuperUser, "--auth=scram-sha-256", "--pwfile=" + initPasswordFile,
                "--encoding=UTF8", "--no-locale", "--no-instructions"];
            // Syncing every new file to disk costs seconds and buys nothing for a throwaway cluster.
            if (ephemeral)
                arguments = [.. arguments, "--no-sync"];
            var result = await RunToolAsync(binDirectory, "initdb", arguments,
                runAsSystemUser, InitDbTimeout, cancellationToken);
            if (result.ExitCode != 0)
                throw new EmbeddedPostgresException(
                    $"initdb failed for {pgData} (exit code {result.ExitCode}).{Environment.NewLine}{result.Output}");
        }
        finally
        {
            if (initPasswordFile != passwordFile)
                File.Delete(initPasswordFile);
        }
        return password;
    }

    private static void WritePrivateFile(string path, string content)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        // No byte-order mark: initdb and anyone who pastes the file take its bytes as the password.
        using var writer = new StreamWriter(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), options);
        writer.Write(content);
    }

    private static string ReadPassword(string root, string pgData)
    {
        var passwordFile = Path.Combine(root, "postgres.password");
        if (!File.Exists(passwordFile))
            throw new EmbeddedPostgresException(
                $"The PostgreSQL cluster in {pgData} exists but its password file {passwordFile} is missing. " +
                $"Restore the file, or delete {pgData} to start over with an empty cluster.");
        return File.ReadAllText(passwordFile).Trim();
    }

    private static async Task<int> StartOrReuseServerAsync(string root, string pgData, string binDirectory,
        bool runAsSystemUser, bool ephemeral, ILogger logger, CancellationToken cancellationToken)
    {
        var pidFile = Path.Combine(pgData, "postmaster.pid");
        if (await IsRunningAsync(binDirectory, pgData, runAsSystemUser, cancellationToken))
        {
            // postmaster.pid lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
            var lines = await File.ReadAllLinesAsync(pidFile, cancellationToken);
            if (lines.Length >= 4 && int.TryParse(lines[3], NumberStyles.None, CultureInfo.InvariantCulture, out var runningPort))
            {
                logger.LogInformation("Reusing PostgreSQL already running on 127.0.0.1:{Port} (pid {Pid}, data {DataDirectory})",
                    runningPort, lines[0], pgData);
                return runningPort;
            }
            throw new EmbeddedPostgresException(
                $"A PostgreSQL server is running on {pgData} but its postmaster.pid has no port. Stop it (pg_ctl stop -D {pgData}) and retry.");
        }

        // A stale postmaster.pid stays: postgres itself checks it, and its shared-memory key is what stops a new
        // postmaster from starting while orphaned backends of a killed one still write to the directory.
        if (File.Exists(pidFile))
            logger.LogWarning("Found postmaster.pid of a server that is no longer running in {DataDirectory}", pgData);

        var logFile = Path.Combine(root, "postgres.log");
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeLoopbackPort();
            var logOffset = File.Exists(logFile) ? new FileInfo(logFile).Length : 0;
            var result = await RunToolAsync(binDirectory, "pg_ctl",
                ["start", "-w", "-t", "60", "-D", pgData, "-l", logFile, "-o", ServerOptions(pgData, port, ephemeral)],
                runAsSystemUser, PgCtlTimeout, cancellationToken);
            if (result.ExitCode == 0)
            {
                logger.LogInformation("Started PostgreSQL on 127.0.0.1:{Port} (data {DataDirectory})", port, pgData);
                return port;
            }

            var log = ServerLogTail(logFile, logOffset);
            // Another process can take the port between probing it and postgres binding it.
            if (attempt < 3 && log.Contains("could not bind", StringComparison.Ordinal))
            {
                logger.LogWarning("Port {Port} was taken before PostgreSQL could bind it; retrying", port);
                continue;
            }
            throw new EmbeddedPostgresException(
                $"pg_ctl start failed for {pgData} on port {port} (exit code {result.ExitCode}).{Environment.NewLine}{result.Output}{log}");
        }
    }

    private static string ServerOptions(string pgData, int port, bool ephemeral)
    {
        // The value goes through /bin/sh inside pg_ctl, so only a plain path may be put in it.
        var socketDirectory = pgData.Length + $"/.s.PGSQL.{port}".Length <= MaxSocketPathLength && PlainPath().IsMatch(pgData)
            ? pgData
            : "''";
        var options = $"-p {port.ToString(CultureInfo.InvariantCulture)} -c listen_addresses=127.0.0.1 -c unix_socket_directories={socketDirectory}";
        if (ephemeral)
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300";
        return options;
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<bool> IsRunningAsync(string binDirectory, string pgData, bool runAsSystemUser, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(pgData, "postmaster.pid")))
            return false;
        // Exit code 0: running; 3: not running (no or stale postmaster.pid); 4: no accessible data directory.
        var status = await RunToolAsync(binDirectory, "pg_ctl", ["status", "-D", pgData], runAsSystemUser, QuickTimeout, cancellationToken);
        return status.ExitCode == 0;
    }

    private static string ServerLogTail(string logFile, long offset)
    {
        try
        {
            if (!File.Exists(logFile))
                return "";
            using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(Math.Max(offset, stream.Length - 4096), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            var tail = reader.ReadToEnd().Trim();
            return tail.Length == 0 ? "" : $"{Environment.NewLine}Server log ({logFile}):{Environment.NewLine}{tail}";
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static void TryDeleteDirectory(string path, ILogger logger)
    {
        try
        {
            if (!Directory.Exists(path))
                return;
            Directory.Delete(path, recursive: true);
            logger.LogInformation("Deleted ephemeral PostgreSQL directory {Directory}", path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not delete ephemeral PostgreSQL directory {Directory}", path);
        }
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static Task<ToolResult> RunToolAsync(string binDirectory, string tool, IReadOnlyList<string> arguments,
        bool runAsSystemUser, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var executable = Path.Combine(binDirectory, ExecutableName(tool));
        return runAsSystemUser
            ? RunAsync("runuser", ["-u", SystemUser, "--", executable, .. arguments], timeout, cancellationToken)
            : RunAsync(executable, arguments, timeout, cancellationToken);
    }

    private static async Task<ToolResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The postgres user may not be allowed into our working directory.
            WorkingDirectory = OperatingSystem.IsWindows() ? "" : "/",
        };
        foreach (var argument in arguments)
            startInfo.ArgumentList.Add(argument);
        // The server inherits the tools' environment: never ControlPlane's configuration or secrets.
        ControlPlane.Core.Deployers.ChildProcessEnvironment.Apply(startInfo);

        using var process = Process.Start(startInfo)
            ?? throw new EmbeddedPostgresException($"Could not start {fileName}.");
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var standardOutput = process.StandardOutput.ReadToEndAsync(timeoutSource.Token);
        var standardError = process.StandardError.ReadToEndAsync(timeoutSource.Token);
        try
        {
            await process.WaitForExitAsync(timeoutSource.Token);
            return new ToolResult(process.ExitCode, await standardOutput, await standardError);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            cancellationToken.ThrowIfCancellationRequested();
            throw new EmbeddedPostgresException(
                $"{fileName} {string.Join(' ', arguments)} did not finish within {timeout.TotalSeconds:0} s and was killed.");
        }
    }

    private sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError)
    {
        public string Output => (StandardOutput.Trim() + Environment.NewLine + StandardError.Trim()).Trim();
    }

    [GeneratedRegex(@"\(PostgreSQL\)\s+(\d+)")]
    private static partial Regex PostgresVersion();

    [GeneratedRegex("^[A-Za-z0-9/._-]+$")]
    private static partial Regex PlainPath();
}
