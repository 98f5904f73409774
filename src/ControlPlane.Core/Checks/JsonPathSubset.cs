using System.Globalization;
using System.Text.Json;

namespace ControlPlane.Core.Checks;

/// <summary>
/// The JSONPath subset checks accept: <c>$</c>, then <c>.name</c>, <c>['name']</c> and <c>[index]</c> steps
/// (<c>$.status</c>, <c>$.data[0].value</c>). No wildcards, filters or recursion: an assertion names one value.
/// </summary>
public static class JsonPathSubset
{
    public abstract record Step;
    public sealed record Property(string Name) : Step;
    public sealed record Index(int Value) : Step;

    public static string? ParseError(string? path) => TryParse(path, out _, out var error) ? null : error;

    public static bool TryParse(string? path, out IReadOnlyList<Step> steps, out string error)
    {
        var list = new List<Step>();
        steps = list;
        error = "";
        const string Expected = "must be a JSONPath such as $.status or $.data[0].value ($ then .name, ['name'] or [index] steps)";
        if (string.IsNullOrEmpty(path) || path[0] != '$' || path.Length > 256)
        {
            error = Expected;
            return false;
        }
        var i = 1;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                var start = ++i;
                while (i < path.Length && (char.IsLetterOrDigit(path[i]) || path[i] is '_' or '-')) i++;
                if (i == start) { error = $"{Expected}; a name is missing after '.' at {start}"; return false; }
                list.Add(new Property(path[start..i]));
            }
            else if (path[i] == '[' && i + 1 < path.Length && path[i + 1] == '\'')
            {
                var end = path.IndexOf("']", i + 2, StringComparison.Ordinal);
                if (end < 0) { error = $"{Expected}; ['…'] is not closed"; return false; }
                list.Add(new Property(path[(i + 2)..end]));
                i = end + 2;
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i);
                if (end < 0 || !int.TryParse(path.AsSpan(i + 1, end - i - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    error = $"{Expected}; [...] must hold an index such as [0] or a quoted name such as ['a b']";
                    return false;
                }
                list.Add(new Index(index));
                i = end + 1;
            }
            else
            {
                error = $"{Expected}; unexpected '{path[i]}' at {i}";
                return false;
            }
        }
        return true;
    }

    /// <summary>The value the path names, or null when the document has no such value.</summary>
    public static JsonElement? Select(JsonElement root, IReadOnlyList<Step> steps)
    {
        var current = root;
        foreach (var step in steps)
        {
            switch (step)
            {
                case Property p when current.ValueKind == JsonValueKind.Object && current.TryGetProperty(p.Name, out var next):
                    current = next;
                    break;
                case Index x when current.ValueKind == JsonValueKind.Array && x.Value < current.GetArrayLength():
                    current = current[x.Value];
                    break;
                default:
                    return null;
            }
        }
        return current;
    }
}
