using System.Net;
using System.Net.Http.Json;
using ControlPlane.Core.Security;
using ControlPlane.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>
/// Every role × every mutating action × {API, page, hub}. The expectation is written out here from PRODUCT.md §1/§6 — not
/// read from <see cref="Permissions"/> — so a drifted role table fails too.
/// </summary>
public sealed class AuthorizationMatrixTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly Dictionary<Permission, Role[]> Expected = new()
    {
        [Permission.RegisterApplication] = [Role.Admin],
        [Permission.StartRelease] = [Role.Admin, Role.ReleaseManager],
        [Permission.Approve] = [Role.Admin, Role.ReleaseManager],
        [Permission.Switch] = [Role.Admin, Role.ReleaseManager],
        [Permission.Abort] = [Role.Admin, Role.ReleaseManager, Role.OnCall],
        [Permission.Rollback] = [Role.Admin, Role.ReleaseManager, Role.OnCall],
        [Permission.ManageTokens] = [Role.Admin],
        [Permission.ManageUsers] = [Role.Admin],
        [Permission.ManageFreezeWindows] = [Role.Admin],
        [Permission.OverrideFreeze] = [Role.Admin],
        [Permission.ManageWebhooks] = [Role.Admin],
        [Permission.OverrideSchemaGuard] = [Role.Admin],
        [Permission.ReadAudit] = [Role.Admin, Role.Auditor],
        [Permission.ViewApplications] = [Role.Admin, Role.ReleaseManager, Role.OnCall, Role.Auditor, Role.Viewer],
    };

    private static readonly string Missing = Guid.NewGuid().ToString();

    /// <summary>One API request per action; allowed roles get past authorization (a 2xx/400/404/409), others a 403.</summary>
    private static readonly (Permission Permission, HttpMethod Method, string Path, object? Body)[] ApiActions =
    [
        (Permission.RegisterApplication, HttpMethod.Post, "/api/v1/applications", new { }),
        (Permission.StartRelease, HttpMethod.Post, "/api/v1/applications/no-such-app/deployments", new { version = "1.0.1" }),
        (Permission.StartRelease, HttpMethod.Post, $"/api/v1/deployments/{Missing}/hooks/resolve", new { decision = "done", reason = "test" }),
        (Permission.RegisterApplication, HttpMethod.Put, "/api/v1/applications/no-such-app", new { }),
        (Permission.RegisterApplication, HttpMethod.Delete, "/api/v1/applications/no-such-app", null),
        (Permission.Approve, HttpMethod.Post, $"/api/v1/deployments/{Missing}/approve", new { }),
        (Permission.Switch, HttpMethod.Post, $"/api/v1/deployments/{Missing}/switch", null),
        (Permission.Abort, HttpMethod.Post, $"/api/v1/deployments/{Missing}/abort", new { reason = "test" }),
        (Permission.Rollback, HttpMethod.Post, "/api/v1/applications/no-such-app/rollback", new { reason = "test" }),
        (Permission.Rollback, HttpMethod.Post, $"/api/v1/deployments/{Missing}/extend-hold", new { minutes = 30, reason = "test" }),
        (Permission.Switch, HttpMethod.Post, $"/api/v1/deployments/{Missing}/decommission-previous", new { reason = "test" }),
        (Permission.Switch, HttpMethod.Post, $"/api/v1/deployments/{Missing}/finish-monitoring", new { reason = "test" }),
        (Permission.StartRelease, HttpMethod.Post, $"/api/v1/deployments/{Missing}/retry", new { }),
        (Permission.ManageTokens, HttpMethod.Post, "/api/v1/tokens", new { name = "matrix", role = "Viewer" }),
        (Permission.ManageTokens, HttpMethod.Delete, $"/api/v1/tokens/{Missing}", null),
        (Permission.ManageUsers, HttpMethod.Post, "/api/v1/users", new { userName = "", role = "Viewer", password = "" }),
        (Permission.ManageUsers, HttpMethod.Put, "/api/v1/users/nobody/role", new { role = "Viewer" }),
        (Permission.ManageUsers, HttpMethod.Post, "/api/v1/users/nobody/lock", null),
        (Permission.ManageUsers, HttpMethod.Delete, "/api/v1/users/nobody", null),
        (Permission.ManageFreezeWindows, HttpMethod.Post, "/api/v1/applications/no-such-app/freeze-windows", new { }),
        (Permission.ManageFreezeWindows, HttpMethod.Delete, $"/api/v1/applications/no-such-app/freeze-windows/{Missing}", null),
        (Permission.ManageFreezeWindows, HttpMethod.Post, "/api/v1/freeze-windows", new { }),
        (Permission.ManageFreezeWindows, HttpMethod.Delete, $"/api/v1/freeze-windows/{Missing}", null),
        (Permission.ReadAudit, HttpMethod.Get, "/api/v1/audit/verify", null),
        (Permission.ReadAudit, HttpMethod.Get, $"/api/v1/deployments/{Missing}/evidence", null),
        (Permission.ManageWebhooks, HttpMethod.Get, "/api/v1/webhooks", null),
        (Permission.ManageWebhooks, HttpMethod.Post, "/api/v1/webhooks", new { }),
        (Permission.ManageWebhooks, HttpMethod.Delete, $"/api/v1/webhooks/{Missing}", null),
        (Permission.ManageWebhooks, HttpMethod.Post, $"/api/v1/webhooks/{Missing}/test", null),
        (Permission.ManageWebhooks, HttpMethod.Post, $"/api/v1/webhooks/deliveries/{Missing}/redeliver", null),
    ];

    private SecurityAppFactory _app = null!;

    public async ValueTask InitializeAsync() => _app = await SecurityAppFactory.StartAsync(postgres);
    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public void The_role_table_is_the_one_the_product_specifies()
    {
        Assert.Equal(Enum.GetValues<Permission>().Order(), Expected.Keys.Order());
        foreach (var (permission, roles) in Expected)
            Assert.Equal(roles.Order(), Permissions.RolesFor(permission).Order());
    }

    [Fact]
    public async Task Api_every_role_times_every_action_is_allowed_or_forbidden_as_specified()
    {
        var failures = new List<string>();
        foreach (var role in Enum.GetValues<Role>())
        {
            var (_, secret) = await _app.CreateTokenAsync($"matrix-{role}", role.ToString());
            using var client = _app.Api(secret);
            foreach (var (permission, method, path, body) in ApiActions)
            {
                using var response = await SendAsync(client, method, path, body);
                var allowed = Expected[permission].Contains(role);
                var ok = allowed
                    ? response.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden) && (int)response.StatusCode < 500
                    : response.StatusCode == HttpStatusCode.Forbidden && response.Content.Headers.ContentType?.MediaType == "application/problem+json";
                if (!ok) failures.Add($"{role} {method} {path} ({permission}, expected {(allowed ? "allowed" : "403")}) → {(int)response.StatusCode}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task Api_unauthenticated_gets_401_problem_on_every_action()
    {
        using var anonymous = _app.Api(token: null);
        foreach (var (_, method, path, body) in ApiActions)
        {
            using var response = await SendAsync(anonymous, method, path, body);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} → {(int)response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        using var wrong = _app.Api("cp_not-a-real-token");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task Pages_every_role_times_every_action_matches_the_table_for_a_real_session()
    {
        var failures = new List<string>();
        foreach (var role in Enum.GetValues<Role>())
        {
            var name = $"page-{role}".ToLowerInvariant();
            await _app.CreateUserAsync(name, role.ToString(), $"{name}-long-password");
            var (client, signIn) = await _app.SignInAsync(name, $"{name}-long-password");
            using var _ = client;
            Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
            Assert.Equal("/", signIn.Headers.Location?.OriginalString);

            // Admin pages are guarded per request by the same policies as the API.
            foreach (var (path, permission) in new[] { ("/admin/users", Permission.ManageUsers), ("/admin/tokens", Permission.ManageTokens), ("/admin/applications/new", Permission.RegisterApplication) })
            {
                using var page = await client.GetAsync(path, TestContext.Current.CancellationToken);
                var allowed = Expected[permission].Contains(role);
                var ok = allowed
                    ? page.StatusCode == HttpStatusCode.OK
                    : page.StatusCode == HttpStatusCode.Redirect && PathOf(page.Headers.Location).StartsWith("/forbidden", StringComparison.Ordinal);
                if (!ok) failures.Add($"{role} GET {path} → {(int)page.StatusCode} {page.Headers.Location}");
            }

            // The release actions on pages and components are shown and run by SignedInUser.Can on the session's principal.
            var me = await client.GetJsonAsync(SecurityAppFactory.WhoAmIPath);
            Assert.Equal(role.ToString(), me.GetProperty("role").GetString());
            var offered = me.GetProperty("allowed").EnumerateArray().Select(e => Enum.Parse<Permission>(e.GetString()!)).ToHashSet();
            foreach (var (permission, roles) in Expected)
                if (offered.Contains(permission) != roles.Contains(role))
                    failures.Add($"{role} page {permission}: offered={offered.Contains(permission)}");

            // The session cookie reads the API but never changes anything through it (CSRF).
            using var read = await client.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            using var change = await client.PostAsJsonAsync("/api/v1/tokens", new { name = "csrf", role = "Admin" }, TestContext.Current.CancellationToken);
            if (change.StatusCode != HttpStatusCode.Unauthorized) failures.Add($"{role} cookie POST /api/v1/tokens → {(int)change.StatusCode}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/audit")]
    [InlineData("/admin/users")]
    [InlineData("/admin/tokens")]
    public async Task Pages_unauthenticated_redirect_to_sign_in(string path)
    {
        using var anonymous = _app.Api(token: null);
        using var response = await anonymous.GetAsync(path, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        // Relative: the redirect is never built from the request's Host header.
        Assert.StartsWith("/signin?ReturnUrl=", response.Headers.Location!.OriginalString, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Hub_every_role_may_listen_no_role_may_change_anything_and_anonymous_is_refused()
    {
        foreach (var role in Enum.GetValues<Role>())
        {
            var (_, secret) = await _app.CreateTokenAsync($"hub-{role}", role.ToString());
            await using var hub = Connect(secret);
            await hub.StartAsync(TestContext.Current.CancellationToken); // ViewApplications: every role
            // The hub is a read-only feed: a mutating call is refused whatever the role.
            foreach (var method in new[] { "Approve", "Switch", "Rollback", "StartRelease" })
                await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync(method, Missing, TestContext.Current.CancellationToken));
        }
        await using var anonymous = Connect(token: null);
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => anonymous.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("401", refused.Message);
    }

    private static string PathOf(Uri? location) => location is null ? "" : location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;

    private HubConnection Connect(string? token) => new HubConnectionBuilder()
        .WithUrl(new Uri(_app.Server.BaseAddress, "hubs/controlplane"), o =>
        {
            o.HttpMessageHandlerFactory = _ => _app.Server.CreateHandler();
            o.Transports = HttpTransportType.LongPolling;
            if (token is not null) o.AccessTokenProvider = () => Task.FromResult<string?>(token);
        })
        .Build();

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body);
        return await client.SendAsync(request, TestContext.Current.CancellationToken);
    }
}
