using ControlPlane.Core;
using ControlPlane.Core.Audit;
using ControlPlane.Core.Data;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;
using ControlPlane.Core.Identity;
using ControlPlane.Core.Security;
using ControlPlane.Web.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace ControlPlane.Web.Security;

/// <summary>
/// <c>reset-admin [--user NAME]</c>: the way back into a locked-out installation, for whoever can run ControlPlane
/// with its configuration and data directory (that access already is full control). Sets a generated one-time password
/// on an Admin account, prints it once, ends the account's sessions, lifts a lockout from failed attempts and writes the
/// audit event in the same transaction. The web server need not (and with the embedded database must not) be running.
/// </summary>
public static class ResetAdminCommand
{
    public const string Name = "reset-admin";
    private const string Usage = "usage: dotnet run --project src/ControlPlane.Web -- reset-admin [--user NAME]";

    public static bool Matches(string[] args) => args.Length > 0 && args[0] == Name;

    public static async Task<int> RunAsync(IConfiguration configuration, string[] args, TextWriter output, TextWriter error)
    {
        var userName = IdentityRules.InitialAdminName;
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i] is "--user" && i + 1 < args.Length) userName = args[++i];
            else if (args[i].StartsWith("--user=", StringComparison.Ordinal)) userName = args[i]["--user=".Length..];
            // Configuration arguments (--ControlPlane:DataDirectory=...) are read by the host's configuration.
            else if (!args[i].StartsWith("--", StringComparison.Ordinal) || args[i] is "--help" or "-h")
            {
                error.WriteLine(Usage);
                return 64;
            }
            else if (!args[i].Contains('=') && i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) i++;
        }

        // The embedded cluster belongs to a running ControlPlane when its postmaster lives: using it from here and stopping
        // it afterwards would pull the database from under that server. (An external database needs no such guard: the
        // server re-checks sessions every 30 seconds, so the reset account's sessions end there too.)
        if (string.IsNullOrWhiteSpace(configuration.GetConnectionString(DatabaseHosting.ConnectionStringName))
            && RunningEmbeddedPostmaster(configuration) is { } running)
        {
            error.WriteLine($"reset-admin: refused. ControlPlane (or its embedded PostgreSQL, pid {running.Pid}) is running on {running.DataDirectory}. " +
                            "Stop it first, then run reset-admin again. (An admin who can still sign in can reset passwords under Admin > Users.)");
            return 3;
        }

        ResolvedDatabase database;
        try
        {
            database = await DatabaseHosting.ResolveAsync(configuration);
        }
        catch (Exception ex) when (ex is EmbeddedPostgresException or Npgsql.NpgsqlException or InvalidOperationException)
        {
            error.WriteLine($"reset-admin: cannot open ControlPlane's database: {ex.Message}");
            return 4;
        }
        await using (database)
        {
            var services = new ServiceCollection();
            services.AddSingleton(configuration);
            services.AddLogging();
            services.AddSingleton(TimeProvider.System);
            services.AddOptions<ControlPlaneOptions>().BindConfiguration(ControlPlaneOptions.Section);
            services.AddAuditTrail(); // the checkpoint key: this event is signed into the chain like any other
            services.AddDbContext<ControlPlaneDbContext>(o => DatabaseHosting.Configure(o, database.DataSource));
            services.AddIdentityCore<ControlPlaneUser>(IdentityRules.Apply).AddEntityFrameworkStores<ControlPlaneDbContext>();
            services.AddScoped<UserAdministration>();
            await using var provider = services.BuildServiceProvider();
            await using var scope = provider.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ControlPlaneDbContext>();

            // Only a database this build knows: not one never started (no accounts to reset) or one a newer version migrated.
            var applied = (await db.Database.GetAppliedMigrationsAsync()).ToHashSet();
            var known = db.Database.GetMigrations().ToList();
            if (applied.Count == 0 || known.Any(m => !applied.Contains(m)) || applied.Any(m => !known.Contains(m)))
            {
                error.WriteLine(applied.Count == 0
                    ? "reset-admin: refused. This database has never been set up; start ControlPlane once (it creates the admin account and prints its password)."
                    : "reset-admin: refused. The database schema is not the one this build of ControlPlane expects; run reset-admin from the version that last ran on it.");
                return 5;
            }

            var now = TimeProvider.System.GetUtcNow();
            var account = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.NormalizedUserName == userName.ToUpperInvariant());
            if (account is not { Role: Role.Admin } || account.LockoutEnd == DateTimeOffset.MaxValue)
            {
                var admins = await db.Users.AsNoTracking().Where(u => u.Role == Role.Admin && (u.LockoutEnd == null || u.LockoutEnd != DateTimeOffset.MaxValue))
                    .OrderBy(u => u.UserName).Select(u => u.UserName).ToListAsync();
                var why = account is null ? $"there is no account named '{userName}'"
                    : account.Role != Role.Admin ? $"'{account.UserName}' is a {account.Role}, not an Admin (an Admin resets other people's passwords under Admin > Users)"
                    : $"'{account.UserName}' was locked by an admin on purpose";
                error.WriteLine($"reset-admin: refused: {why}. Admin accounts: {(admins.Count == 0 ? "none" : string.Join(", ", admins))}. Use --user NAME.");
                return 6;
            }

            var by = Actor.System with { Via = $"{Name} run by {Environment.UserName}@{Environment.MachineName}" };
            var reset = await scope.ServiceProvider.GetRequiredService<UserAdministration>().ResetPasswordAsync(account.UserName!, null, by, CancellationToken.None);
            output.WriteLine($"""

                ==================== ControlPlane reset-admin ====================
                New one-time password for the Admin account '{reset.UserName}':

                    {reset.GeneratedPassword}

                It is shown only this once and stored only as a hash. Sign in with it; you will be asked to choose your own
                password before anything else. The account's sessions have ended{(account.LockoutEnd > now ? " and its lockout is lifted" : "")}.
                The reset is in the audit trail (user.password-reset by system via {Name}).
                ==================================================================
                """);
            return 0;
        }
    }

    private sealed record Postmaster(int Pid, string DataDirectory);

    private static Postmaster? RunningEmbeddedPostmaster(IConfiguration configuration)
    {
        var options = configuration.GetSection(ControlPlaneOptions.Section).Get<ControlPlaneOptions>() ?? new ControlPlaneOptions();
        var pgData = Path.Combine(options.FullDataDirectory, "postgres");
        var pidFile = Path.Combine(pgData, "postmaster.pid");
        try
        {
            if (!File.Exists(pidFile)) return null;
            var first = File.ReadLines(pidFile).FirstOrDefault();
            if (!int.TryParse(first, out var pid)) return null;
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return process.HasExited ? null : new Postmaster(pid, options.FullDataDirectory);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            return null; // no such process: a stale pid file, which the embedded start handles
        }
    }
}
