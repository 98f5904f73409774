using System.Text.Json;
using ControlPlane.Core.Checks;

namespace ControlPlane.UnitTests.Checks;

public sealed class CheckValidationTests
{
    private static List<string> Fields(HttpCheck check) => [.. check.Validate("checks[0]").Select(e => e.Field)];

    [Fact]
    public void Seed_001_checks_are_valid()
    {
        Assert.Empty(Fields(new HttpCheck
        {
            Name = "db", Path = "/internal/db-check",
            Json = [new JsonAssertion { Path = "$.status", ExpectedValue = JsonSerializer.SerializeToElement("connected") }],
        }));
        Assert.Empty(Fields(new HttpCheck { Name = "cache", Path = "/metrics/cache-hit-ratio", Json = [new JsonAssertion { Path = "$.hitRatio", Min = 0.85 }] }));
        Assert.Empty(Fields(new HttpCheck { Name = "dep", Url = "https://payments.internal/{application}/{slot}/health?v={version}" }));
        Assert.Empty(Fields(new HttpCheck { Kind = "prometheus", Name = "p", Query = "up{slot=\"{slot}\"}", Min = 1, FailureLimit = 2 }));
    }

    [Fact]
    public void Unknown_kind_is_named() =>
        Assert.Equal(["checks[0].kind"], Fields(new HttpCheck { Kind = "datadog" }));

    [Theory]
    [InlineData("status")]
    [InlineData("$status")]
    [InlineData("$.")]
    [InlineData("$.a[")]
    [InlineData("$.a[x]")]
    [InlineData("$.a[-1]")]
    [InlineData("$..a")]
    [InlineData("$.a[*]")]
    [InlineData("$['a'")]
    [InlineData("")]
    public void Invalid_jsonpath_is_named(string path) =>
        Assert.Equal(["checks[0].json[0].path"], Fields(new HttpCheck { Json = [new JsonAssertion { Path = path, Min = 1 }] }));

    [Fact]
    public void Min_greater_than_max_is_named_on_assertions_and_prometheus_checks()
    {
        Assert.Equal(["checks[0].json[0].min"], Fields(new HttpCheck { Json = [new JsonAssertion { Path = "$.a", Min = 2, Max = 1 }] }));
        Assert.Equal(["checks[0].min"], Fields(new HttpCheck { Kind = "prometheus", Query = "up", Min = 2, Max = 1 }));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public void Empty_query_is_named(string? query) =>
        Assert.Equal(["checks[0].query"], Fields(new HttpCheck { Kind = "prometheus", Query = query, Max = 1 }));

    [Fact]
    public void An_assertion_needs_one_kind_of_bound()
    {
        Assert.Equal(["checks[0].json[0].equals"], Fields(new HttpCheck { Json = [new JsonAssertion { Path = "$.a" }] }));
        Assert.Equal(["checks[0].json[0].equals"], Fields(new HttpCheck
        {
            Json = [new JsonAssertion { Path = "$.a", Min = 1, ExpectedValue = JsonSerializer.SerializeToElement("x") }],
        }));
        Assert.Equal(["checks[0].json[0].equals"], Fields(new HttpCheck
        {
            Json = [new JsonAssertion { Path = "$.a", ExpectedValue = JsonSerializer.SerializeToElement(new[] { 1 }) }],
        }));
    }

    [Theory]
    [InlineData("ftp://x/y")]
    [InlineData("/relative")]
    [InlineData("http://user:pw@host/")]
    [InlineData("not a url")]
    public void Bad_urls_are_named(string url) => Assert.Equal(["checks[0].url"], Fields(new HttpCheck { Url = url }));

    [Fact]
    public void Fields_of_the_other_kind_are_refused()
    {
        Assert.Equal(["checks[0].path"], Fields(new HttpCheck { Url = "http://x/", Path = "/healthz" }));
        Assert.Equal(["checks[0].query", "checks[0].min"], Fields(new HttpCheck { Query = "up", Min = 1 }));
        Assert.Equal(["checks[0].path", "checks[0].json"], Fields(new HttpCheck
        {
            Kind = "prometheus", Query = "up", Max = 1, Path = "/x", Json = [new JsonAssertion { Path = "$.a", Min = 1 }],
        }));
        Assert.Equal(["checks[0].min"], Fields(new HttpCheck { Kind = "prometheus", Query = "up" }));
    }

    [Fact]
    public void Placeholders_in_a_prometheus_query_are_escaped_as_promql_strings() =>
        Assert.Equal("""up{version="a\"b\\c"}""", CheckPlaceholders.Fill("""up{version="{version}"}""", "blue", "a\"b\\c", "app", CheckPlaceholders.PromQlString));
}
