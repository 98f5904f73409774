using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ControlPlane.Benchmarks;

/// <summary>
/// The loaded database, shared by every benchmark. Benchmarks run in-process (see the job configs), so the
/// million-row load happens once in <see cref="Program"/> instead of once per benchmark process.
/// </summary>
public static class BenchmarkDatabase
{
    private static DbContextOptions<ControlPlaneDbContext>? _options;

    public static void Use(NpgsqlDataSource dataSource) => _options = Options(dataSource);

    public static DbContextOptions<ControlPlaneDbContext> Options(NpgsqlDataSource dataSource) =>
        new DbContextOptionsBuilder<ControlPlaneDbContext>()
            .UseNpgsql(dataSource, o => o.MigrationsAssembly("ControlPlane.Migrations"))
            .Options;

    /// <summary>A fresh context per operation, as the pages get from <c>IDbContextFactory</c>.</summary>
    public static ControlPlaneDbContext CreateContext() =>
        new(_options ?? throw new InvalidOperationException("Run the benchmarks through Program: it starts and loads the database."));
}
