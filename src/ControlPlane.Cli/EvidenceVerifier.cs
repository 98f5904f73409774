using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Cli;

public sealed record EvidenceResult(bool Valid, List<string> Problems, List<string> Checked, string? KeyFingerprint, bool KeyPinned, JsonNode? Manifest)
{
    public JsonNode ToJson() => new JsonObject
    {
        ["valid"] = Valid,
        ["keyFingerprint"] = KeyFingerprint,
        ["keyPinned"] = KeyPinned,
        ["deployment"] = Manifest?["deployment"]?.DeepClone(),
        ["application"] = Manifest?["application"]?.DeepClone(),
        ["version"] = Manifest?["version"]?.DeepClone(),
        ["problems"] = new JsonArray([.. Problems.Select(p => (JsonNode)p)]),
        ["checked"] = new JsonArray([.. Checked.Select(p => (JsonNode)p)]),
    };

    public string Describe()
    {
        var text = new StringBuilder();
        if (Valid)
        {
            text.AppendLine($"VALID: evidence of {Manifest?["application"]} {Manifest?["version"]} (deployment {Manifest?["deployment"]}, {Manifest?["state"]} when exported)");
            foreach (var c in Checked) text.AppendLine("  ✓ " + c);
            text.AppendLine(KeyPinned
                ? $"Signed by the key you pinned ({KeyFingerprint})."
                : $"WARNING: no --key-fingerprint given. The bundle is consistent with the key inside it ({KeyFingerprint}), which proves nothing " +
                  "about who made it: compare that fingerprint with the server's public key (checkpoint-key.pem.pub) obtained separately.");
            text.Append("Proves: these files are what the holder of that key exported, and the release's audit events are links of the hash " +
                        "chain up to a checkpoint signed with it. Does not prove: that nothing happened outside ControlPlane, that the key was " +
                        "not stolen, or that the trail was complete before the checkpoint (audit verify on the server checks the whole chain).");
        }
        else
        {
            text.AppendLine("INVALID evidence bundle:");
            foreach (var p in Problems) text.AppendLine("  ✗ " + p);
        }
        return text.ToString().TrimEnd();
    }
}

/// <summary>
/// Offline check of an evidence bundle (<c>GET /api/v1/deployments/{id}/evidence</c>): the manifest's signature with the
/// public key in the bundle (and that key's fingerprint against the one the operator pins), every file's SHA-256, the
/// audit chain recomputed from the release's first event to the signed checkpoint, and the release's events in it.
/// </summary>
public static class EvidenceVerifier
{
    private static readonly string[] Signed = ["manifest.json", "manifest.sig"];

    public static EvidenceResult Verify(string path, string? pinnedKey)
    {
        var problems = new List<string>();
        var ok = new List<string>();
        Dictionary<string, byte[]> files;
        try
        {
            using var zip = ZipFile.OpenRead(path);
            files = zip.Entries.ToDictionary(e => e.FullName, e =>
            {
                using var s = e.Open();
                using var m = new MemoryStream();
                s.CopyTo(m);
                return m.ToArray();
            });
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return new(false, [$"{path}: not a readable zip ({ex.Message})"], ok, null, false, null);
        }
        foreach (var required in new[] { "manifest.json", "manifest.sig", "public-key.pem", "checkpoint.json", "audit-chain.jsonl", "audit-events.jsonl" })
            if (!files.ContainsKey(required)) problems.Add($"{required}: missing");
        if (problems.Count > 0) return new(false, problems, ok, null, false, null);

        using var key = ECDsa.Create();
        string fingerprint;
        try
        {
            key.ImportFromPem(Encoding.UTF8.GetString(files["public-key.pem"]));
            fingerprint = Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            return new(false, [$"public-key.pem: not an EC public key ({ex.Message})"], ok, null, false, null);
        }
        var pinned = !string.IsNullOrWhiteSpace(pinnedKey);
        if (pinned)
        {
            var expected = pinnedKey!.Trim().Replace(":", "").ToLowerInvariant();
            if (!(expected.Length >= 16 && fingerprint.StartsWith(expected, StringComparison.Ordinal)))
                problems.Add($"public-key.pem: its fingerprint {fingerprint} is not the pinned {pinnedKey}");
            else ok.Add("the public key is the pinned one");
        }

        JsonNode? manifest = null;
        var signature = new byte[files["manifest.sig"].Length];
        if (!Convert.TryFromBase64String(Encoding.ASCII.GetString(files["manifest.sig"]).Trim(), signature, out var length)
            || !key.VerifyData(files["manifest.json"], signature.AsSpan(0, length), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence))
            problems.Add("manifest.json: the signature in manifest.sig does not match (manifest or signature changed, or another key)");
        else ok.Add("manifest.json is signed by the bundle's key");
        try { manifest = JsonNode.Parse(files["manifest.json"]); }
        catch (JsonException ex) { problems.Add($"manifest.json: not JSON ({ex.Message})"); }
        if (manifest is null) return new(false, problems, ok, fingerprint, pinned, null);
        if (manifest["keyId"]?.GetValue<string>() is { } keyId && !fingerprint.StartsWith(keyId, StringComparison.Ordinal))
            problems.Add($"manifest.json: keyId {keyId} is not the bundle key's ({fingerprint[..16]})");

        var listed = new HashSet<string>();
        foreach (var f in manifest["files"]?.AsArray() ?? [])
        {
            var name = f!["path"]!.GetValue<string>();
            listed.Add(name);
            if (!files.TryGetValue(name, out var bytes)) { problems.Add($"{name}: listed in the manifest but missing"); continue; }
            if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != f["sha256"]!.GetValue<string>())
                problems.Add($"{name}: SHA-256 does not match the manifest (the file was changed)");
        }
        foreach (var extra in files.Keys.Where(n => !listed.Contains(n) && !Signed.Contains(n)))
            problems.Add($"{extra}: not listed in the manifest");
        if (problems.Count == 0) ok.Add($"{listed.Count} files match their SHA-256 in the manifest");

        CheckChain(files, key, fingerprint, problems, ok);
        return new(problems.Count == 0, problems, ok, fingerprint, pinned, manifest);
    }

    private static void CheckChain(Dictionary<string, byte[]> files, ECDsa key, string fingerprint, List<string> problems, List<string> ok)
    {
        JsonNode checkpoint;
        List<JsonNode> chain, own;
        try
        {
            checkpoint = JsonNode.Parse(files["checkpoint.json"])!;
            chain = ReadLines(files["audit-chain.jsonl"]);
            own = ReadLines(files["audit-events.jsonl"]);
        }
        catch (JsonException ex)
        {
            problems.Add($"audit files: not JSON ({ex.Message})");
            return;
        }
        // The checkpoint: five lines joined by '\n' (AuditCheckpoint.Payload on the server), ECDSA P-256 / SHA-256, DER.
        var sequence = checkpoint["sequence"]!.GetValue<long>();
        var head = checkpoint["hash"]!.GetValue<string>();
        var payload = Encoding.UTF8.GetBytes(string.Join('\n', "controlplane-audit-checkpoint/v1", sequence.ToString(CultureInfo.InvariantCulture),
            head, checkpoint["signedAt"]!.GetValue<string>(), checkpoint["keyId"]!.GetValue<string>()));
        var signature = new byte[256];
        if (checkpoint["keyId"]!.GetValue<string>() != fingerprint[..16]
            || !Convert.TryFromBase64String(checkpoint["signature"]!.GetValue<string>(), signature, out var length)
            || !key.VerifyData(payload, signature.AsSpan(0, length), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence))
        {
            problems.Add("checkpoint.json: not signed by the bundle's key");
            return;
        }
        ok.Add($"checkpoint of event {sequence} is signed by the bundle's key");

        string? previous = null;
        foreach (var e in chain)
        {
            var seq = e["sequence"]!.GetValue<long>();
            if (previous is not null && e["previousHash"]?.GetValue<string>() != previous)
            {
                problems.Add($"audit-chain.jsonl: event {seq} does not link to the event before it");
                return;
            }
            var hash = Hash(e);
            if (hash != e["hash"]?.GetValue<string>())
            {
                problems.Add($"audit-chain.jsonl: event {seq}'s hash does not match its fields (the event was changed)");
                return;
            }
            previous = hash;
        }
        if (chain.Count == 0 || chain[^1]["sequence"]!.GetValue<long>() != sequence || previous != head)
        {
            problems.Add($"audit-chain.jsonl: does not end at the signed checkpoint (event {sequence})");
            return;
        }
        ok.Add($"audit chain of {chain.Count} events recomputed and linked up to the signed checkpoint");
        var bySequence = chain.ToDictionary(e => e["sequence"]!.GetValue<long>(), e => e["hash"]!.GetValue<string>());
        foreach (var e in own)
            if (!bySequence.TryGetValue(e["sequence"]!.GetValue<long>(), out var h) || h != e["hash"]?.GetValue<string>())
            {
                problems.Add($"audit-events.jsonl: event {e["sequence"]} is not in the signed chain");
                return;
            }
        ok.Add($"the release's {own.Count} audit events are in the signed chain");
    }

    private static List<JsonNode> ReadLines(byte[] bytes) =>
        [.. Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!)];

    /// <summary>The server's AuditHash.Compute over the exported fields (a JSON array is the canonical encoding).</summary>
    private static string Hash(JsonNode e)
    {
        string? S(string name) => e[name]?.GetValue<string>();
        var canonical = JsonSerializer.Serialize(new object?[]
        {
            e["sequence"]!.GetValue<long>(), S("occurredAt"), S("actor"), S("actorKind"), S("sourceIp"), S("action"), S("application"),
            S("deploymentId"), S("before"), S("after"), S("reason"), S("details"), S("previousHash"),
        });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }
}
