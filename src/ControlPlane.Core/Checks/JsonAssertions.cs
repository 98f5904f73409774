using System.Globalization;
using System.Text.Json;

namespace ControlPlane.Core.Checks;

/// <summary>Judges a response body against a check's JSON assertions; every message names the path, the value seen and the bound.</summary>
public static class JsonAssertions
{
    /// <summary>Null when every assertion holds, otherwise why the first one that does not; <paramref name="seen"/> lists what was read.</summary>
    public static string? Evaluate(string body, IReadOnlyList<JsonAssertion> assertions, out string seen) =>
        Evaluate(body, assertions, out seen, null);

    /// <summary>As above; the numbers read on the way (also the one that failed) are added to <paramref name="numbers"/>.</summary>
    public static string? Evaluate(string body, IReadOnlyList<JsonAssertion> assertions, out string seen, List<CheckValue>? numbers)
    {
        seen = "";
        JsonDocument document;
        try { document = JsonDocument.Parse(body); }
        catch (JsonException)
        {
            var start = body.Length > 40 ? body[..40] + "…" : body;
            return $"the body is not JSON ({Quote(start)}), so {Bound(assertions[0], withPath: true)} cannot be judged";
        }
        using (document)
        {
            var values = new List<string>();
            foreach (var assertion in assertions)
            {
                if (!JsonPathSubset.TryParse(assertion.Path, out var steps, out _))
                    return $"{assertion.Path} is not a supported JSONPath";
                var value = JsonPathSubset.Select(document.RootElement, steps);
                if (value is null) return $"{assertion.Path} is missing from the body, needs {Bound(assertion, withPath: false)}";
                if (value.Value.ValueKind == JsonValueKind.Number && value.Value.TryGetDouble(out var number) && double.IsFinite(number))
                    numbers?.Add(new(assertion.Path, number));
                if (Judge(assertion, value.Value) is { } failure) return failure;
                values.Add($"{assertion.Path} = {Show(value.Value)}");
            }
            seen = string.Join(", ", values);
            return null;
        }
    }

    private static string? Judge(JsonAssertion a, JsonElement value)
    {
        if (a.ExpectedValue is { ValueKind: not JsonValueKind.Undefined } expected)
            return SameValue(expected, value) ? null : $"{a.Path} was {Show(value)}, needs {Show(expected)}";
        if (value.ValueKind != JsonValueKind.Number)
            return $"{a.Path} was {Show(value)} ({Kind(value)}), needs a number {Bound(a, withPath: false)}";
        var number = value.GetDouble();
        if (a.Min is { } min && number < min) return $"{a.Path} was {Show(value)}, needs ≥ {Number(min)}";
        if (a.Max is { } max && number > max) return $"{a.Path} was {Show(value)}, needs ≤ {Number(max)}";
        return null;
    }

    private static bool SameValue(JsonElement expected, JsonElement value) => (expected.ValueKind, value.ValueKind) switch
    {
        (JsonValueKind.Number, JsonValueKind.Number) => expected.GetDouble() == value.GetDouble(),
        (JsonValueKind.String, JsonValueKind.String) => expected.GetString() == value.GetString(),
        _ => expected.ValueKind == value.ValueKind && expected.ValueKind is JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null,
    };

    private static string Bound(JsonAssertion a, bool withPath)
    {
        var bound = a.ExpectedValue is { ValueKind: not JsonValueKind.Undefined } e ? Show(e)
            : a.Min is { } min && a.Max is { } max ? $"between {Number(min)} and {Number(max)}"
            : a.Min is { } lo ? $"≥ {Number(lo)}"
            : $"≤ {Number(a.Max ?? 0)}";
        return withPath ? $"{a.Path} needs {bound}" : bound;
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => "a number",
    };

    private static string Show(JsonElement value)
    {
        var text = value.ValueKind is JsonValueKind.Object or JsonValueKind.Array ? (value.ValueKind == JsonValueKind.Object ? "{…}" : "[…]") : value.GetRawText();
        return text.Length > 80 ? text[..80] + "…" : text;
    }

    private static string Number(double value) => value.ToString("0.################", CultureInfo.InvariantCulture);

    private static string Quote(string text) => $"\"{new string([.. text.Select(c => char.IsControl(c) ? ' ' : c)])}\"";
}
