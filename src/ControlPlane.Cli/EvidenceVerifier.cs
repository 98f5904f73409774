using System.Text.Json.Nodes;

namespace ControlPlane.Cli;

public sealed record EvidenceResult(bool Valid, List<string> Problems, string? KeyFingerprint)
{
    public JsonNode ToJson() => new JsonObject { ["valid"] = Valid, ["problems"] = new JsonArray([.. Problems.Select(p => (JsonNode)p)]), ["keyFingerprint"] = KeyFingerprint };
    public string Describe() => Valid ? "valid" : "INVALID: " + string.Join("; ", Problems);
}

public static class EvidenceVerifier
{
    public static EvidenceResult Verify(string path, string? expectedKey) => new(false, ["not implemented yet"], null);
}
