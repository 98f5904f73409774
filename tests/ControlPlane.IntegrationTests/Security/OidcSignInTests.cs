using System.Security.Claims;
using ControlPlane.Core.Security;
using ControlPlane.IntegrationTests.Infrastructure;
using ControlPlane.Web.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.IntegrationTests.Security;

/// <summary>No identity provider can run here: the claim → role mapping and the configuration switch are what is tested.</summary>
public sealed class OidcSignInTests(PostgresFixture postgres)
{
    private static readonly OidcSignInOptions Options = new()
    {
        RoleClaim = "groups",
        RoleMap = new(StringComparer.OrdinalIgnoreCase) { ["cp-admins"] = "Admin", ["release-team"] = "ReleaseManager", ["sre"] = "OnCall" },
    };

    private static Claim[] Groups(string values) => [.. values.Split('|', StringSplitOptions.RemoveEmptyEntries).Select(v => new Claim("groups", v)), new Claim("roles", "Admin")];

    [Theory]
    [InlineData("release-team", Role.ReleaseManager)]
    [InlineData("CP-ADMINS", Role.Admin)]                    // map keys are case-insensitive
    [InlineData("sre|release-team", Role.ReleaseManager)] // several: the most privileged
    [InlineData("Auditor", Role.Auditor)]                     // a value that is a role name maps to it
    [InlineData("[\"sre\",\"cp-admins\"]", Role.Admin)]       // a JSON array in one claim
    public void Claims_map_to_the_configured_role(string groups, Role expected) =>
        Assert.Equal(expected, OidcSignIn.MapRole(Groups(groups), Options));

    [Theory]
    [InlineData("")]
    [InlineData("marketing")]
    [InlineData("auditor")] // role names are exact; only the map is case-insensitive
    public void Without_a_mapped_value_there_is_no_role_even_if_another_claim_says_Admin(string groups) =>
        Assert.Null(OidcSignIn.MapRole(Groups(groups), Options));

    [Fact]
    public async Task The_oidc_scheme_exists_only_when_configured()
    {
        await using (var plain = await SecurityAppFactory.StartAsync(postgres))
        {
            var schemes = plain.Services.GetRequiredService<IAuthenticationSchemeProvider>();
            Assert.Null(await schemes.GetSchemeAsync(OidcSignIn.Scheme));
            using var client = plain.Api(token: null);
            Assert.DoesNotContain("oidc-signin", await client.GetStringAsync("/signin", TestContext.Current.CancellationToken));
        }

        await using var configured = await SecurityAppFactory.StartAsync(postgres, new Dictionary<string, string?>
        {
            ["ControlPlane:Oidc:Authority"] = "https://idp.example.test/realms/ops",
            ["ControlPlane:Oidc:ClientId"] = "controlplane",
            ["ControlPlane:Oidc:ClientSecret"] = "oidc-client-secret-value",
            ["ControlPlane:Oidc:RoleClaim"] = "groups",
            ["ControlPlane:Oidc:RoleMap:release-team"] = "ReleaseManager",
        });
        var scheme = await configured.Services.GetRequiredService<IAuthenticationSchemeProvider>().GetSchemeAsync(OidcSignIn.Scheme);
        Assert.NotNull(scheme);
        var options = configured.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<OidcSignInOptions>>().Value;
        Assert.Equal(Role.ReleaseManager, OidcSignIn.MapRole([new Claim("groups", "release-team")], options));
        using var anonymous = configured.Api(token: null);
        Assert.Contains("oidc-signin", await anonymous.GetStringAsync("/signin", TestContext.Current.CancellationToken));
        Assert.DoesNotContain(configured.Logs.Lines, l => l.Contains("oidc-client-secret-value", StringComparison.Ordinal));
    }
}
