using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Core.Deployments;

/// <summary>Field-by-field difference of two JSON documents, keyed by dotted path (<c>policy.holdWindowSeconds</c>, <c>checks[1].path</c>).</summary>
public static class ConfigurationDiff
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public sealed record Change(JsonNode? Before, JsonNode? After);

    public static IReadOnlyDictionary<string, Change> Between(JsonElement before, JsonElement after)
    {
        var changes = new SortedDictionary<string, Change>(StringComparer.Ordinal);
        Walk("", before, after, changes);
        return changes;
    }

    private static void Walk(string path, JsonElement? a, JsonElement? b, SortedDictionary<string, Change> changes)
    {
        if (a is { ValueKind: JsonValueKind.Object } oa && b is { ValueKind: JsonValueKind.Object } ob)
        {
            var names = oa.EnumerateObject().Select(p => p.Name).Union(ob.EnumerateObject().Select(p => p.Name));
            foreach (var name in names)
                Walk(path.Length == 0 ? name : $"{path}.{name}", Property(oa, name), Property(ob, name), changes);
            return;
        }
        if (a is { ValueKind: JsonValueKind.Array } aa && b is { ValueKind: JsonValueKind.Array } ab)
        {
            var left = aa.EnumerateArray().ToList();
            var right = ab.EnumerateArray().ToList();
            for (var i = 0; i < Math.Max(left.Count, right.Count); i++)
                Walk($"{path}[{i}]", i < left.Count ? left[i] : null, i < right.Count ? right[i] : null, changes);
            return;
        }
        var before = a is { ValueKind: not JsonValueKind.Undefined } x ? JsonNode.Parse(x.GetRawText()) : null;
        var after = b is { ValueKind: not JsonValueKind.Undefined } y ? JsonNode.Parse(y.GetRawText()) : null;
        if (!JsonNode.DeepEquals(before, after)) changes[path] = new Change(before, after);
    }

    private static JsonElement? Property(JsonElement o, string name) => o.TryGetProperty(name, out var v) ? v : null;
}
