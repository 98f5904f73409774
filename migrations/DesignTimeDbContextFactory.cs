using ControlPlane.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ControlPlane.Migrations;

/// <summary>Lets <c>dotnet ef migrations add</c> build the model without starting the web host (it never connects).</summary>
public sealed class DesignTimeDbContextFactory : IDesignTimeDbContextFactory<ControlPlaneDbContext>
{
    public ControlPlaneDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<ControlPlaneDbContext>()
            .UseNpgsql("Host=localhost;Database=design_time_only", o => o.MigrationsAssembly("ControlPlane.Migrations"))
            .Options);
}
