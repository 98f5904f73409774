using Npgsql;

/// <summary>
/// GET /orders reads the demo's orders database the way each version's code would: 1.x reads <c>customer_name</c>, 2.x
/// reads <c>customer_email</c> falling back to <c>customer_name</c> (it works before and after the 2.0.0 expand), 3.x and
/// later read only <c>customer_email</c>. A column the version needs that is gone answers 500 — which is what the demo's
/// "orders" check sees. Without DEMO_ORDERS_DB_FILE (no orders database) it answers 200 with a note.
/// </summary>
internal static class Orders
{
    private static int MajorOf(DemoInfo info) => int.TryParse(info.Version.Split('.', '-')[0], out var m) ? m : 1;

    private static string CustomerColumnOf(int major) =>
        major >= 3 ? "customer_email" : major == 2 ? "coalesce(customer_email, customer_name)" : "customer_name";

    /// <summary>
    /// Opens the orders database and runs this version's query once, as GET /orders would, so that its first request does not
    /// pay for loading Npgsql and opening the pool. What it finds does not matter (a missing column is GET /orders' answer to
    /// give); a database that does not answer is given up on after <paramref name="bound"/>.
    /// </summary>
    public static async Task WarmUpAsync(DemoInfo info, TimeSpan bound)
    {
        var file = Environment.GetEnvironmentVariable("DEMO_ORDERS_DB_FILE");
        if (string.IsNullOrEmpty(file)) return;
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await using var connection = new NpgsqlConnection((await File.ReadAllTextAsync(file, timeout.Token)).Trim());
            await connection.OpenAsync(timeout.Token);
            await ReadAsync(connection, CustomerColumnOf(MajorOf(info)), timeout.Token);
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or OperationCanceledException or ArgumentException or UnauthorizedAccessException) { }
    }

    public static void MapOrders(this WebApplication app, DemoInfo info)
    {
        var major = MajorOf(info);
        var customer = CustomerColumnOf(major);
        app.MapGet("/orders", async Task<IResult> (CancellationToken cancellationToken) =>
        {
            var file = Environment.GetEnvironmentVariable("DEMO_ORDERS_DB_FILE");
            if (string.IsNullOrEmpty(file)) return TypedResults.Ok(new DemoOrders(info.Version, customer, [], "no orders database configured"));
            try
            {
                // Read on every request: the file is rewritten when ControlPlane's embedded cluster comes back on another port.
                await using var connection = new NpgsqlConnection((await File.ReadAllTextAsync(file, cancellationToken)).Trim());
                await connection.OpenAsync(cancellationToken);
                var reads = customer;
                List<DemoOrder> orders;
                try { orders = await ReadAsync(connection, reads, cancellationToken); }
                catch (PostgresException ex) when (major == 2 && ex.SqlState == PostgresErrorCodes.UndefinedColumn)
                {
                    // 2.x before the 2.0.0 expand: no customer_email yet, so it falls back to customer_name as its code does.
                    reads = "customer_name";
                    orders = await ReadAsync(connection, reads, cancellationToken);
                }
                return TypedResults.Ok(new DemoOrders(info.Version, reads, orders, null));
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException)
            {
                return TypedResults.Json(new DemoError($"demo: {info.Version} cannot read orders: {(ex as PostgresException)?.MessageText ?? ex.Message}"), statusCode: 500);
            }
        });
    }

    private static async Task<List<DemoOrder>> ReadAsync(NpgsqlConnection connection, string customer, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT id, {customer} FROM orders ORDER BY id LIMIT 20", connection);
        var orders = new List<DemoOrder>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) orders.Add(new(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
        return orders;
    }
}

internal sealed record DemoOrder(long Id, string? Customer);
internal sealed record DemoOrders(string Version, string Reads, IReadOnlyList<DemoOrder> Orders, string? Note);
