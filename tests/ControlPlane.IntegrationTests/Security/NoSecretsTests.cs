using System.Net;
using System.Net.Http.Json;
using ControlPlane.Core.Security;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>Passwords and tokens are used everywhere a person or pipeline would, then searched for in logs, audit and API answers.</summary>
public sealed class NoSecretsTests(PostgresFixture postgres)
{
    [Fact]
    public async Task No_password_or_token_appears_in_logs_audit_details_or_api_responses()
    {
        await using var app = await SecurityAppFactory.StartAsync(postgres);
        const string userPassword = "s3cret-user-password-7781";
        const string wrongPassword = "typo-of-the-password-9925";
        const string newUserPassword = "another-secret-password-4410";
        await app.CreateUserAsync("petra", "ReleaseManager", userPassword);
        var (session, _) = await app.SignInAsync("petra", userPassword);
        await app.SignInAsync("petra", wrongPassword);
        await app.SignInAsync(wrongPassword, wrongPassword); // a password typed into the user-name field
        await app.SignInAsync("admin", SecurityAppFactory.InitialAdminPassword);
        var (tokenId, token) = await app.CreateTokenAsync("ci-secret-test", "ReleaseManager");
        using (var ci = app.Api(token))
            await ci.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken);
        using var admin = app.Api();
        await admin.PostAsJsonAsync("/api/v1/users", new { userName = "quinn", role = "Viewer", password = newUserPassword }, TestContext.Current.CancellationToken);
        await admin.DeleteAsync($"/api/v1/tokens/{tokenId}", TestContext.Current.CancellationToken);
        using (var revoked = app.Api(token))
            Assert.Equal(HttpStatusCode.Unauthorized, (await revoked.GetAsync("/api/v1/applications", TestContext.Current.CancellationToken)).StatusCode);

        var answers = new List<string>
        {
            await admin.GetStringAsync("/api/v1/tokens", TestContext.Current.CancellationToken),
            await admin.GetStringAsync("/api/v1/users", TestContext.Current.CancellationToken),
            await admin.GetStringAsync("/api/v1/audit?limit=500", TestContext.Current.CancellationToken),
            await admin.GetStringAsync("/api/v1/audit/export?format=jsonl", TestContext.Current.CancellationToken),
            await session.GetStringAsync("/api/v1/applications", TestContext.Current.CancellationToken),
        };
        var audit = await admin.GetStringAsync("/api/v1/audit/export?format=jsonl", TestContext.Current.CancellationToken);
        Assert.Contains("user.sign-in-failed", audit); // the searched text really holds the events
        Assert.Contains("token.revoked", audit);
        Assert.NotEmpty(app.Logs.Lines);

        string[] secrets = [userPassword, wrongPassword, newUserPassword, SecurityAppFactory.InitialAdminPassword, SecurityAppFactory.AdminToken,
            token, ApiToken.Hash(token)];
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(app.Logs.Lines, l => l.Contains(secret, StringComparison.Ordinal));
            Assert.DoesNotContain(answers, a => a.Contains(secret, StringComparison.Ordinal));
        }
    }
}
