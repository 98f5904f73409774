using ControlPlane.Core.Checks;
using ControlPlane.Core.Deployments;
using ControlPlane.Core.Execution;

namespace ControlPlane.UnitTests.Validation;

public sealed class ValidationTests
{
    [Theory]
    [InlineData("1.0.0")]
    [InlineData("2.0.0-fail-verify")]
    [InlineData("1.2.3+build.5")]
    [InlineData("v7")]
    [InlineData("release_2026.03")]
    public void VersionError_accepts_ordinary_versions(string version) => Assert.Null(ReleaseCommands.VersionError(version));

    [Theory]
    [InlineData("../etc")]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("..")]
    [InlineData("1..2")]
    [InlineData(" 1.0")]
    [InlineData("1.0 ")]
    [InlineData("-1.0")]
    [InlineData(".hidden")]
    [InlineData("1.0;rm")]
    public void VersionError_rejects_paths_and_odd_characters(string version) =>
        Assert.Equal("must be 1-64 characters of letters, digits, '.', '_', '+' or '-', starting with a letter or digit (no slashes or '..')",
            ReleaseCommands.VersionError(version));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public void VersionError_requires_a_value(string? version) => Assert.Equal("is required", ReleaseCommands.VersionError(version));

    [Fact]
    public void VersionError_allows_64_characters_but_not_65()
    {
        Assert.Null(ReleaseCommands.VersionError(new string('a', 64)));
        Assert.NotNull(ReleaseCommands.VersionError(new string('a', 65)));
    }

    // Regex '$' also matches before a final '\n', so these pass the patterns today (Core bug, see the unit-test report).
    // Versions and names end up in process arguments, file names and audit text.
    [Fact]
    public void VersionError_rejects_a_trailing_newline() => Assert.NotNull(ReleaseCommands.VersionError("1.0.0\n"));

    [Fact]
    public void NameError_rejects_a_trailing_newline() => Assert.NotNull(ReleaseCommands.NameError("shop\n"));

    [Theory]
    [InlineData("shop")]
    [InlineData("a")]
    [InlineData("billing-api-2")]
    [InlineData("0day")]
    public void NameError_accepts_dns_labels(string name) => Assert.Null(ReleaseCommands.NameError(name));

    [Theory]
    [InlineData("Shop")]
    [InlineData("-shop")]
    [InlineData("shop-")]
    [InlineData("shop_api")]
    [InlineData("shop.api")]
    [InlineData("shop api")]
    public void NameError_rejects_what_is_not_a_dns_label(string name) =>
        Assert.Equal("must be a DNS label: 1-63 lower-case letters, digits or '-', not starting or ending with '-'", ReleaseCommands.NameError(name));

    [Fact]
    public void NameError_allows_63_characters_but_not_64()
    {
        Assert.Null(ReleaseCommands.NameError(new string('a', 63)));
        Assert.NotNull(ReleaseCommands.NameError(new string('a', 64)));
        Assert.Equal("is required", ReleaseCommands.NameError(""));
    }

    [Fact]
    public void Default_check_and_policy_are_valid()
    {
        Assert.Empty(new HttpCheck().Validate("checks[0]"));
        Assert.Empty(new ReleasePolicy().Validate("policy"));
    }

    [Fact]
    public void HttpCheck_Validate_names_every_bad_field_under_the_prefix()
    {
        var check = new HttpCheck { Name = " ", Path = "healthz", ExpectedStatus = 99, TimeoutSeconds = 0, Retries = 11 };

        var fields = check.Validate("checks[2]").Select(e => e.Field);

        Assert.Equal(["checks[2].name", "checks[2].path", "checks[2].expectedStatus", "checks[2].timeoutSeconds", "checks[2].retries"], fields);
    }

    [Theory]
    [InlineData("//evil.example/x")]
    [InlineData("/a/../admin")]
    [InlineData("")]
    public void HttpCheck_path_must_stay_on_the_slot(string path)
    {
        var error = Assert.Single(new HttpCheck { Path = path }.Validate("c"));

        Assert.Equal(new("c.path", "must be an absolute path such as /healthz"), error);
    }

    [Fact]
    public void HttpCheck_accepts_the_edges_of_its_ranges()
    {
        var low = new HttpCheck { Name = new string('n', 64), ExpectedStatus = 100, TimeoutSeconds = 1, Retries = 0 };
        var high = new HttpCheck { ExpectedStatus = 599, TimeoutSeconds = 120, Retries = 10 };

        Assert.Empty(low.Validate("c"));
        Assert.Empty(high.Validate("c"));
        Assert.Single(new HttpCheck { Name = new string('n', 65) }.Validate("c"));
    }

    [Fact]
    public void ReleasePolicy_Validate_names_every_bad_field_under_the_prefix()
    {
        var policy = new ReleasePolicy
        {
            RequiredApprovals = 11, AutoPromoteAfterSeconds = -1, MonitoringWindowSeconds = 86401,
            MonitoringIntervalSeconds = 0, HoldWindowSeconds = 604801,
        };

        var fields = policy.Validate("policy").Select(e => e.Field);

        Assert.Equal(["policy.requiredApprovals", "policy.autoPromoteAfterSeconds", "policy.monitoringWindowSeconds",
            "policy.monitoringIntervalSeconds", "policy.holdWindowSeconds"], fields);
    }

    [Fact]
    public void ReleasePolicy_accepts_the_edges_of_its_ranges()
    {
        var low = new ReleasePolicy { RequiredApprovals = 0, AutoPromoteAfterSeconds = 0, MonitoringWindowSeconds = 0, MonitoringIntervalSeconds = 1, HoldWindowSeconds = 0 };
        var high = new ReleasePolicy { RequiredApprovals = 10, AutoPromoteAfterSeconds = 604800, MonitoringWindowSeconds = 86400, MonitoringIntervalSeconds = 3600, HoldWindowSeconds = 604800 };

        Assert.Empty(low.Validate("policy"));
        Assert.Empty(high.Validate("policy"));
        Assert.Equal("must be between 0 and 10", Assert.Single(new ReleasePolicy { RequiredApprovals = -1 }.Validate("policy")).Message);
    }
}
