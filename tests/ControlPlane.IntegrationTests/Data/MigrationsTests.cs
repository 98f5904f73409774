using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.IntegrationTests.Data;

public sealed class MigrationsTests
{
    [Fact]
    public void The_model_has_no_changes_without_a_migration()
    {
        // Building the model needs no server; the connection string is never opened.
        using var db = new ControlPlaneDbContext(new DbContextOptionsBuilder<ControlPlaneDbContext>()
            .UseNpgsql("Host=unused", o => o.MigrationsAssembly("ControlPlane.Migrations")).Options);
        Assert.False(db.Database.HasPendingModelChanges(),
            "The EF model changed without a migration: run `dotnet ef migrations add <Name> --project migrations --startup-project migrations`.");
        Assert.NotEmpty(db.Database.GetMigrations());
    }
}
