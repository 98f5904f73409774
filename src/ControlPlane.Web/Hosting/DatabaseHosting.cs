using ControlPlane.Core;
using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Web.Hosting;

/// <summary>The database ControlPlane runs on: the configured one, or an embedded cluster it owns.</summary>
public sealed class ResolvedDatabase(NpgsqlDataSource dataSource, EmbeddedPostgres? embedded) : IAsyncDisposable
{
    private int _disposed;

    public NpgsqlDataSource DataSource { get; } = dataSource;
    public EmbeddedPostgres? Embedded { get; } = embedded;
    public bool IsEmbedded => Embedded is not null;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await DataSource.DisposeAsync();
        if (Embedded is not null) await Embedded.DisposeAsync();
    }
}

public static class DatabaseHosting
{
    public const string ConnectionStringName = "ControlPlane";

    public static async Task<ResolvedDatabase> ResolveAsync(IConfiguration configuration)
    {
        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        EmbeddedPostgres? embedded = null;
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            var options = configuration.GetSection(ControlPlaneOptions.Section).Get<ControlPlaneOptions>() ?? new ControlPlaneOptions();
            using var loggerFactory = LoggerFactory.Create(b => b.AddConfiguration(configuration.GetSection("Logging")).AddSimpleConsole(o => o.SingleLine = true));
            embedded = await EmbeddedPostgres.StartAsync(
                new EmbeddedPostgresOptions(options.FullDataDirectory, BinDirectory: configuration["ControlPlane:PostgresBinDirectory"]),
                loggerFactory.CreateLogger("ControlPlane.EmbeddedPostgres"));
            connectionString = embedded.ConnectionString;
        }
        return new ResolvedDatabase(new NpgsqlDataSourceBuilder(connectionString).Build(), embedded);
    }

    public static void Configure(DbContextOptionsBuilder options, NpgsqlDataSource dataSource) =>
        // Split queries: a deployment auto-includes two collections (steps, approvals); one JOIN would multiply rows.
        options.UseNpgsql(dataSource, o => o.MigrationsAssembly("ControlPlane.Migrations").UseQuerySplittingBehavior(QuerySplittingBehavior.SplitQuery));

    public static async Task MigrateAsync(IServiceProvider services)
    {
        await using var scope = services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>().Database.MigrateAsync();
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
