using ControlPlane.Core;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Web.Hosting;

/// <summary>The database ControlPlane runs on: the configured one, or an embedded cluster it owns.</summary>
public sealed class ResolvedDatabase(NpgsqlDataSource dataSource, EmbeddedPostgres? embedded, NpgsqlDataSource? migrationsDataSource = null)
    : IAsyncDisposable
{
    private int _disposed;

    /// <summary>The serving role's connections: everything ControlPlane does while it runs.</summary>
    public NpgsqlDataSource DataSource { get; } = dataSource;

    /// <summary>The owner role, for migrations only; null when one connection string does everything.</summary>
    public NpgsqlDataSource? MigrationsDataSource { get; } = migrationsDataSource;
    public EmbeddedPostgres? Embedded { get; } = embedded;
    public bool IsEmbedded => Embedded is not null;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await DataSource.DisposeAsync();
        if (MigrationsDataSource is not null) await MigrationsDataSource.DisposeAsync();
        if (Embedded is not null) await Embedded.DisposeAsync();
    }
}

public static class DatabaseHosting
{
    public const string ConnectionStringName = "ControlPlane";
    public const string MigrationsConnectionStringName = "ControlPlaneMigrations";

    public static async Task<ResolvedDatabase> ResolveAsync(IConfiguration configuration)
    {
        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        var migrationsConnectionString = configuration.GetConnectionString(MigrationsConnectionStringName);
        EmbeddedPostgres? embedded = null;
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            if (!string.IsNullOrWhiteSpace(migrationsConnectionString))
                throw new InvalidOperationException(
                    $"ConnectionStrings:{MigrationsConnectionStringName} (the owner role, for migrations) is set but ConnectionStrings:{ConnectionStringName} " +
                    "(the role ControlPlane serves as) is not. Set both, or neither for the embedded PostgreSQL.");
            var options = configuration.GetSection(ControlPlaneOptions.Section).Get<ControlPlaneOptions>() ?? new ControlPlaneOptions();
            using var loggerFactory = LoggerFactory.Create(b => b.AddConfiguration(configuration.GetSection("Logging")).AddSimpleConsole(o => o.SingleLine = true));
            var embeddedOptions = new EmbeddedPostgresOptions(options.FullDataDirectory, BinDirectory: configuration["ControlPlane:PostgresBinDirectory"]);
            embedded = await EmbeddedPostgres.StartAsync(embeddedOptions, loggerFactory.CreateLogger("ControlPlane.EmbeddedPostgres"));
            // The superuser only creates the roles; ControlPlane never serves with it.
            var roles = await DatabaseRoles.BootstrapEmbeddedAsync(embedded, embeddedOptions.Database,
                loggerFactory.CreateLogger("ControlPlane.EmbeddedPostgres"));
            (connectionString, migrationsConnectionString) = (roles.Serving, roles.Migrations);
        }
        var migrations = string.IsNullOrWhiteSpace(migrationsConnectionString) ? null : new NpgsqlDataSourceBuilder(migrationsConnectionString).Build();
        return new ResolvedDatabase(new NpgsqlDataSourceBuilder(connectionString).Build(), embedded, migrations);
    }

    public static void Configure(DbContextOptionsBuilder options, NpgsqlDataSource dataSource) =>
        // Split queries: a deployment auto-includes two collections (steps, approvals); one JOIN would multiply rows.
        options.UseNpgsql(dataSource, o => o.MigrationsAssembly("ControlPlane.Migrations").UseQuerySplittingBehavior(QuerySplittingBehavior.SplitQuery));

    /// <summary>
    /// Migrates as the owner role and grants the serving role what it needs, when the two are separate; with one
    /// connection string (compatible with earlier versions) that role does both, and a warning says what it could do.
    /// </summary>
    public static async Task MigrateAsync(IServiceProvider services)
    {
        var database = services.GetRequiredService<ResolvedDatabase>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("ControlPlane.Database");
        if (database.MigrationsDataSource is { } owner)
        {
            var options = new DbContextOptionsBuilder<ControlPlaneDbContext>();
            Configure(options, owner);
            await using (var db = new ControlPlaneDbContext(options.Options))
                await db.Database.MigrateAsync();
            await DatabaseRoles.GrantServingRoleAsync(owner, database.DataSource, logger);
            owner.Clear(); // the owner's sessions end here: nothing else runs as the owner role

        }
        else
        {
            await using var scope = services.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Database.MigrateAsync();
        }
        await DatabaseRoles.WarnIfOverPrivilegedAsync(database.DataSource, logger);
    }
}

/// <summary>Stops the embedded PostgreSQL on a clean shutdown (registered first, so it stops after everything using it).</summary>
public sealed class EmbeddedPostgresLifetime(ResolvedDatabase database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (database.Embedded is not null) await database.Embedded.StopAsync(cancellationToken);
    }
}
