using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Core.Hooks;
using ControlPlane.IntegrationTests.Infrastructure;
using Npgsql;
using static ControlPlane.IntegrationTests.Hooks.LifecycleHookTests;

namespace ControlPlane.IntegrationTests.Hooks;

/// <summary>
/// SQL expand/contract against a real database named by the application (its own role, not ControlPlane's), the DDL
/// guard refusing destructive expands before anything runs, and the Admin-only override.
/// </summary>
public sealed class SchemaScriptTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly object Quick = new { requiredApprovals = 0, switchOnApproval = true, monitoringWindowSeconds = 1, monitoringIntervalSeconds = 1, holdWindowSeconds = 2 };
    private RecordingAppFactory _factory = null!;
    private string _orders = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _orders = (await postgres.CreateDatabaseWithRolesAsync("orders")).Owner;
        await ExecAsync("CREATE TABLE orders (id bigint PRIMARY KEY, customer_name text NOT NULL); CREATE TABLE legacy_orders (id bigint)");
        _factory = RecordingAppFactory.Start(await postgres.CreateDatabaseAsync("rec"),
            new Dictionary<string, string?> { ["ControlPlane:SchemaDatabases:orders"] = _orders });
    }

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private async Task ExecAsync(string sql)
    {
        await using var c = new NpgsqlConnection(_orders);
        await c.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private async Task<List<string>> ColumnsAsync(string table)
    {
        await using var c = new NpgsqlConnection(_orders);
        await c.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT column_name FROM information_schema.columns WHERE table_name = @t ORDER BY ordinal_position", c);
        cmd.Parameters.AddWithValue("t", table);
        var result = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct)) result.Add(reader.GetString(0));
        return result;
    }

    private static object Sql(string script) => new { kind = "sql", script };

    private async Task<HttpClient> ReleaseManagerAsync()
    {
        using var admin = _factory.Admin();
        var created = await (await admin.PostAsJsonAsync("/api/v1/tokens", new { name = "rm-ci", role = "ReleaseManager" }, Ct)).JsonAsync();
        var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.GetProperty("token").GetString());
        return client;
    }

    [Fact]
    public async Task Expand_and_contract_scripts_run_against_the_named_database_and_a_destructive_expand_is_refused_before_anything_runs()
    {
        using var admin = _factory.Admin();
        await RegisterAsync(_factory, admin, "s-shop", Quick, new { schemaDatabase = "orders" });

        // A destructive expand: 400 naming the statement; no release, nothing ran.
        var refused = await admin.PostJsonAsync("/api/v1/applications/s-shop/deployments", new
        {
            version = "2.0.0",
            schema = new { expand = Sql("ALTER TABLE orders ADD COLUMN customer_email text;\n-- the old name goes\nALTER TABLE orders DROP COLUMN customer_name;") },
        });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = await refused.JsonAsync();
        var message = Assert.Single(problem.GetProperty("errors").GetProperty("schema.expand.script").EnumerateArray()).GetString();
        Assert.Contains("statement 2 `ALTER TABLE orders DROP COLUMN customer_name`: DROP COLUMN", message);
        Assert.Empty((await admin.GetJsonAsync("/api/v1/applications/s-shop/deployments")).EnumerateArray());
        Assert.Equal(["id", "customer_name"], await ColumnsAsync("orders"));

        // Expand adds, contract removes — the contract after the hold window.
        var started = await admin.PostJsonAsync("/api/v1/applications/s-shop/deployments", new
        {
            version = "2.0.0",
            schema = new
            {
                expand = Sql("ALTER TABLE orders ADD COLUMN customer_email text; UPDATE orders SET customer_email = customer_name;"),
                contract = Sql("ALTER TABLE orders DROP COLUMN customer_name"),
            },
        });
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var id = (await started.JsonAsync()).GetProperty("id").GetString()!;
        var done = await WaitForAsync(admin, id, d => StepOf(d, "contract").GetProperty("state").GetString() == "Succeeded", "the contract");
        Assert.Contains("2 statement(s) applied in one transaction to 'orders'", StepOf(done, "expand").GetProperty("message").GetString());
        Assert.Equal(["id", "customer_email"], await ColumnsAsync("orders"));
    }

    [Fact]
    public async Task Only_an_Admin_may_override_the_guard_with_a_reason_and_the_override_is_audited()
    {
        using var admin = _factory.Admin();
        using var releaseManager = await ReleaseManagerAsync();
        await RegisterAsync(_factory, admin, "s-override", Quick, new { schemaDatabase = "orders" });
        var body = new { version = "2.0.0", schema = new { expand = Sql("DROP TABLE legacy_orders") }, ddlOverride = new { reason = "legacy_orders unused since 2024 (checked pg_stat)" } };

        var byReleaseManager = await releaseManager.PostJsonAsync("/api/v1/applications/s-override/deployments", body);
        Assert.Equal(HttpStatusCode.Forbidden, byReleaseManager.StatusCode);
        Assert.Contains("Only an Admin", (await byReleaseManager.JsonAsync()).GetProperty("detail").GetString());
        var noReason = await admin.PostJsonAsync("/api/v1/applications/s-override/deployments",
            new { version = "2.0.0", schema = new { expand = Sql("DROP TABLE legacy_orders") }, ddlOverride = new { reason = " " } });
        Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);
        Assert.True((await noReason.JsonAsync()).GetProperty("errors").TryGetProperty("ddlOverride.reason", out _));
        Assert.Empty((await admin.GetJsonAsync("/api/v1/applications/s-override/deployments")).EnumerateArray());

        var byAdmin = await admin.PostJsonAsync("/api/v1/applications/s-override/deployments", body);
        Assert.Equal(HttpStatusCode.Accepted, byAdmin.StatusCode);
        var id = (await byAdmin.JsonAsync()).GetProperty("id").GetString()!;
        await admin.WaitForStateAsync(id, "Succeeded");
        Assert.Empty(await ColumnsAsync("legacy_orders"));
        var overridden = Assert.Single((await admin.GetJsonAsync("/api/v1/audit?application=s-override&action=schema.guard-overridden")).GetProperty("items").EnumerateArray());
        Assert.Equal(("bootstrap", "legacy_orders unused since 2024 (checked pg_stat)"), (overridden.GetProperty("actor").GetString(), overridden.GetProperty("reason").GetString()));
        Assert.Contains("DROP TABLE legacy_orders", overridden.GetProperty("details").GetString());
    }

    [Fact]
    public async Task A_sql_script_needs_a_schema_database_and_a_failing_one_stops_the_release_with_nothing_applied()
    {
        using var admin = _factory.Admin();
        await RegisterAsync(_factory, admin, "s-nodb", Quick, new { });
        var noDb = await admin.PostJsonAsync("/api/v1/applications/s-nodb/deployments", new { version = "2.0.0", schema = new { expand = Sql("SELECT 1") } });
        Assert.Equal(HttpStatusCode.BadRequest, noDb.StatusCode);
        Assert.True((await noDb.JsonAsync()).GetProperty("errors").TryGetProperty("schema.expand.kind", out _));

        var unknown = await admin.PostAsJsonAsync("/api/v1/applications", new
        {
            name = "s-unknown", router = new { kind = "recording", settings = new { } }, deployer = new { kind = "recording", settings = new { } },
            policy = Quick, initialVersion = "1.0.0", hooks = new { schemaDatabase = "controlplane" },
        }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("must be one of the configured schema databases: orders",
            (await unknown.JsonAsync()).GetProperty("errors").GetProperty("hooks.schemaDatabase")[0].GetString());

        await RegisterAsync(_factory, admin, "s-fails", Quick, new { schemaDatabase = "orders" });
        var start = await admin.PostJsonAsync("/api/v1/applications/s-fails/deployments", new
        {
            version = "2.0.0",
            schema = new { expand = Sql("CREATE TABLE half_done (id int); ALTER TABLE no_such_table ADD COLUMN x int;") },
        });
        var failed = await admin.WaitForStateAsync((await start.JsonAsync()).GetProperty("id").GetString()!, "Failed");
        Assert.Contains("42P01", StepOf(failed, "expand").GetProperty("message").GetString());
        Assert.Empty(await ColumnsAsync("half_done"));
    }

    [Fact]
    public void ControlPlanes_own_roles_and_database_are_refused_as_schema_databases()
    {
        const string own = "Host=127.0.0.1;Port=5999;Database=controlplane;Username=app_role;Password=x";
        var databases = new SchemaDatabases([], [own]);
        Assert.Contains("a role ControlPlane itself uses", databases.RefusalOf("Host=db;Database=orders;Username=app_role;Password=y"));
        Assert.Contains("a role ControlPlane itself uses", databases.RefusalOf("Host=db;Database=orders;Username=controlplane_owner;Password=y"));
        Assert.Contains("ControlPlane's own database", databases.RefusalOf("Host=127.0.0.1;Port=5999;Database=controlplane;Username=other;Password=y"));
        Assert.Null(databases.RefusalOf("Host=db;Database=orders;Username=orders_migrator;Password=y"));
        Assert.Throws<InvalidOperationException>(() => new SchemaDatabases([new("x", own)], [own]));
    }
}
