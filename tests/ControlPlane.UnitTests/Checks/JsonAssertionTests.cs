using System.Text.Json;
using ControlPlane.Core.Checks;

namespace ControlPlane.UnitTests.Checks;

/// <summary>Every failure names the JSONPath, the value seen and the bound.</summary>
public sealed class JsonAssertionTests
{
    private static JsonAssertion EqualsTo(string path, object value) => new() { Path = path, ExpectedValue = JsonSerializer.SerializeToElement(value) };

    private static string? Judge(string body, params JsonAssertion[] assertions) => JsonAssertions.Evaluate(body, assertions, out _);

    [Fact]
    public void Min_below_names_path_value_and_bound() =>
        Assert.Equal("$.hitRatio was 0.6, needs ≥ 0.85", Judge("""{"hitRatio":0.6}""", new JsonAssertion { Path = "$.hitRatio", Min = 0.85 }));

    [Fact]
    public void Max_above_names_path_value_and_bound() =>
        Assert.Equal("$.latency.p99 was 812, needs ≤ 250", Judge("""{"latency":{"p99":812}}""", new JsonAssertion { Path = "$.latency.p99", Max = 250 }));

    [Fact]
    public void Equals_string_mismatch_names_both_values() =>
        Assert.Equal("$.status was \"disconnected\", needs \"connected\"", Judge("""{"status":"disconnected"}""", EqualsTo("$.status", "connected")));

    [Theory]
    [InlineData("""{"ok":true}""", true, null)]
    [InlineData("""{"ok":false}""", true, "$.ok was false, needs true")]
    [InlineData("""{"ok":1}""", 1, null)]
    [InlineData("""{"ok":1.0}""", 1, null)]
    [InlineData("""{"ok":"1"}""", 1, "$.ok was \"1\", needs 1")]
    public void Equals_compares_kind_and_value(string body, object expected, string? failure) =>
        Assert.Equal(failure, Judge(body, EqualsTo("$.ok", expected)));

    [Fact]
    public void Range_holds_inside_and_fails_at_either_side()
    {
        var range = new JsonAssertion { Path = "$.v", Min = 1, Max = 2 };
        Assert.Null(Judge("""{"v":1}""", range));
        Assert.Null(Judge("""{"v":2}""", range));
        Assert.Equal("$.v was 0.5, needs ≥ 1", Judge("""{"v":0.5}""", range));
        Assert.Equal("$.v was 3, needs ≤ 2", Judge("""{"v":3}""", range));
    }

    [Fact]
    public void Array_index_and_quoted_names_select_values()
    {
        Assert.Null(Judge("""{"items":[{"state":"up"},{"state":"down"}]}""", EqualsTo("$.items[0].state", "up")));
        Assert.Equal("$.items[1].state was \"down\", needs \"up\"", Judge("""{"items":[{"state":"up"},{"state":"down"}]}""", EqualsTo("$.items[1].state", "up")));
        Assert.Null(Judge("""{"a b":{"c":3}}""", new JsonAssertion { Path = "$['a b'].c", Min = 3 }));
    }

    [Fact]
    public void Missing_path_names_path_and_bound()
    {
        Assert.Equal("$.hitRatio is missing from the body, needs ≥ 0.85", Judge("""{"ratio":0.9}""", new JsonAssertion { Path = "$.hitRatio", Min = 0.85 }));
        Assert.Equal("$.items[3] is missing from the body, needs \"x\"", Judge("""{"items":[1]}""", EqualsTo("$.items[3]", "x")));
    }

    [Fact]
    public void Non_json_body_names_what_came_and_the_bound() =>
        Assert.Equal("the body is not JSON (\"<html>oops</html>\"), so $.status needs \"connected\" cannot be judged",
            Judge("<html>oops</html>", EqualsTo("$.status", "connected")));

    [Fact]
    public void Wrong_type_for_a_bound_names_the_type()
    {
        Assert.Equal("$.hitRatio was \"high\" (a string), needs a number ≥ 0.85", Judge("""{"hitRatio":"high"}""", new JsonAssertion { Path = "$.hitRatio", Min = 0.85 }));
        Assert.Equal("$.hitRatio was null (null), needs a number between 0 and 1", Judge("""{"hitRatio":null}""", new JsonAssertion { Path = "$.hitRatio", Min = 0, Max = 1 }));
        Assert.Equal("$.hitRatio was {…} (an object), needs a number ≤ 1", Judge("""{"hitRatio":{"v":1}}""", new JsonAssertion { Path = "$.hitRatio", Max = 1 }));
    }

    [Fact]
    public void All_assertions_must_hold_and_the_first_failure_is_named()
    {
        string seen;
        Assert.Null(JsonAssertions.Evaluate("""{"a":1,"b":"x"}""", [new JsonAssertion { Path = "$.a", Min = 1 }, EqualsTo("$.b", "x")], out seen));
        Assert.Equal("$.a = 1, $.b = \"x\"", seen);
        Assert.Equal("$.b was \"y\", needs \"x\"", Judge("""{"a":1,"b":"y"}""", new JsonAssertion { Path = "$.a", Min = 1 }, EqualsTo("$.b", "x")));
    }

    [Fact]
    public void The_numbers_read_are_kept_for_the_chart_including_the_one_that_failed()
    {
        var numbers = new List<CheckValue>();
        var failure = JsonAssertions.Evaluate("""{"a":3,"status":"ok","hitRatio":0.6}""",
            [new JsonAssertion { Path = "$.a", Min = 1 }, EqualsTo("$.status", "ok"), new JsonAssertion { Path = "$.hitRatio", Min = 0.85 }], out _, numbers);
        Assert.Equal("$.hitRatio was 0.6, needs ≥ 0.85", failure);
        Assert.Equal([new CheckValue("$.a", 3), new CheckValue("$.hitRatio", 0.6)], numbers); // strings are not charted
    }
}
