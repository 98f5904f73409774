using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Cli;

var urlOption = new Option<string?>("--url") { Description = "ControlPlane's address (default: $CONTROLPLANE_URL)", Recursive = true };
var tokenOption = new Option<string?>("--token") { Description = "API token (default: $CONTROLPLANE_TOKEN)", Recursive = true };
var jsonOption = new Option<bool>("--json") { Description = "Machine-readable JSON on stdout instead of lines for people", Recursive = true };

var root = new RootCommand("controlplane — start and follow blue-green releases, approve, switch, roll back, export and verify evidence.");
root.Options.Add(urlOption);
root.Options.Add(tokenOption);
root.Options.Add(jsonOption);

// ---- release ------------------------------------------------------------------------------------------------------------
var appArgument = new Argument<string>("app") { Description = "Application name" };
var versionArgument = new Argument<string>("version") { Description = "Version to release" };
var reasonOption = new Option<string?>("--reason") { Description = "Why (recorded in the audit trail)" };
var waitOption = new Option<bool>("--wait") { Description = "Follow the release until it ends; the exit code says how it ended" };
var timeoutOption = new Option<int>("--timeout") { Description = "With --wait: give up waiting after this many seconds (exit 6)", DefaultValueFactory = _ => 1800 };
var release = new Command("release", "Start a release of <app> at <version>") { appArgument, versionArgument, reasonOption, waitOption, timeoutOption };
release.SetAction((p, ct) => Run(p, ct, async (api, json, ct) =>
{
    var d = await api.PostAsync($"api/v1/applications/{Uri.EscapeDataString(p.GetValue(appArgument)!)}/deployments",
        new { version = p.GetValue(versionArgument), reason = p.GetValue(reasonOption) }, ct);
    var id = d["id"]!.GetValue<string>();
    if (!p.GetValue(waitOption))
    {
        Print(json, d, $"Started {ReleaseFollower.Name(d)}: deployment {id} ({d["state"]})\n  {new Uri(api.BaseAddress, $"deployments/{id}")}");
        return ExitCodes.Ok;
    }
    if (!json) Console.WriteLine($"Started {ReleaseFollower.Name(d)}: deployment {id}\n  {new Uri(api.BaseAddress, $"deployments/{id}")}");
    return await FollowAsync(api, json, id, TimeSpan.FromSeconds(p.GetValue(timeoutOption)), ct);
}));
root.Subcommands.Add(release);

// ---- wait / status ------------------------------------------------------------------------------------------------------
var idArgument = new Argument<string>("id") { Description = "Deployment id" };
var wait = new Command("wait", "Follow an existing release until it ends") { idArgument, timeoutOption };
wait.SetAction((p, ct) => Run(p, ct, (api, json, ct) => FollowAsync(api, json, p.GetValue(idArgument)!, TimeSpan.FromSeconds(p.GetValue(timeoutOption)), ct)));
root.Subcommands.Add(wait);

var status = new Command("status", "What is live for <app>, both slots, and the release in flight") { appArgument };
status.SetAction((p, ct) => Run(p, ct, async (api, json, ct) =>
{
    var a = await api.GetAsync($"api/v1/applications/{Uri.EscapeDataString(p.GetValue(appArgument)!)}", ct);
    var lines = new List<string> { $"{a["name"]}: {a["liveSlot"]} live with {a["liveVersion"]} at {a["publicUrl"]}" };
    foreach (var slot in new[] { "blue", "green" })
    {
        var s = a["slots"]![slot]!;
        lines.Add($"  {slot,-5} {s["version"] ?? "-",-20} {s["state"],-10} {((bool?)s["healthy"] == true ? "healthy" : "unhealthy")}");
    }
    lines.Add(a["inFlight"] is { } f ? $"  in flight: {f["version"]} {f["state"]} (deployment {f["id"]})" : "  no release in flight");
    if (a["rollbackAvailableUntil"] is { } until) lines.Add($"  instant rollback possible until {until}");
    Print(json, a, string.Join('\n', lines));
    return ExitCodes.Ok;
}));
root.Subcommands.Add(status);

// ---- approve / switch / abort / rollback ------------------------------------------------------------------------------
var commentOption = new Option<string?>("--comment") { Description = "Comment recorded with the approval" };
var approve = new Command("approve", "Approve a release awaiting approval") { idArgument, commentOption };
approve.SetAction((p, ct) => Act(p, ct, $"approve", new { comment = p.GetValue(commentOption) }, idArgument));
root.Subcommands.Add(approve);

var switchCommand = new Command("switch", "Switch traffic to a release that is ReadyToSwitch") { idArgument };
switchCommand.SetAction((p, ct) => Act(p, ct, "switch", new { }, idArgument));
root.Subcommands.Add(switchCommand);

var requiredReason = new Option<string>("--reason") { Description = "Why (required; recorded in the audit trail)", Required = true };
var abort = new Command("abort", "Abort a release in flight") { idArgument, requiredReason };
abort.SetAction((p, ct) => Act(p, ct, "abort", new { reason = p.GetValue(requiredReason) }, idArgument));
root.Subcommands.Add(abort);

var rollback = new Command("rollback", "Roll <app> back to its warm previous slot") { appArgument, requiredReason };
rollback.SetAction((p, ct) => Run(p, ct, async (api, json, ct) =>
{
    var r = await api.PostAsync($"api/v1/applications/{Uri.EscapeDataString(p.GetValue(appArgument)!)}/rollback", new { reason = p.GetValue(requiredReason) }, ct);
    Print(json, r, r["message"]?.GetValue<string>() ?? r.ToJsonString());
    return ExitCodes.Ok;
}));
root.Subcommands.Add(rollback);

// ---- audit ------------------------------------------------------------------------------------------------------------
var audit = new Command("audit", "Export or verify the audit trail (Auditor, Admin)");
var formatOption = new Option<string>("--format") { Description = "csv or jsonl", DefaultValueFactory = _ => "jsonl" };
formatOption.AcceptOnlyFromAmong("csv", "jsonl");
var outputOption = new Option<FileInfo?>("--output", "-o") { Description = "Write to this file instead of stdout" };
var filterApplication = new Option<string?>("--application");
var filterActor = new Option<string?>("--actor");
var filterAction = new Option<string?>("--action");
var filterFrom = new Option<string?>("--from") { Description = "ISO 8601 time" };
var filterTo = new Option<string?>("--to") { Description = "ISO 8601 time" };
var export = new Command("export", "Stream the audit trail (filtered) as CSV or JSON Lines")
    { formatOption, outputOption, filterApplication, filterActor, filterAction, filterFrom, filterTo };
export.SetAction((p, ct) => Run(p, ct, async (api, json, ct) =>
{
    var query = new List<string> { "format=" + p.GetValue(formatOption) };
    foreach (var (name, option) in new[] { ("application", filterApplication), ("actor", filterActor), ("action", filterAction), ("from", filterFrom), ("to", filterTo) })
        if (p.GetValue(option) is { } value) query.Add($"{name}={Uri.EscapeDataString(value)}");
    var path = "api/v1/audit/export?" + string.Join('&', query);
    if (p.GetValue(outputOption) is { } file)
    {
        await using var stream = file.Create();
        var bytes = await api.DownloadAsync(path, stream, ct);
        if (!json) Console.Error.WriteLine($"Wrote {bytes} bytes to {file.FullName}");
    }
    else
    {
        await using var stdout = Console.OpenStandardOutput();
        await api.DownloadAsync(path, stdout, ct);
    }
    return ExitCodes.Ok;
}));
audit.Subcommands.Add(export);
var verifyAudit = new Command("verify", "Ask the server to recompute the hash chain and check the signed checkpoints");
verifyAudit.SetAction((p, ct) => Run(p, ct, async (api, json, ct) =>
{
    var v = await api.GetAsync("api/v1/audit/verify", ct);
    var valid = (bool?)v["valid"] == true;
    Print(json, v, valid
        ? $"The audit trail is intact: {v["events"]} events, hash chain and signed checkpoints check out."
        : $"The audit trail is NOT intact: first invalid event {v["firstInvalidSequence"]}: {v["problem"] ?? v["reason"]}");
    return valid ? ExitCodes.Ok : ExitCodes.VerificationFailed;
}));
audit.Subcommands.Add(verifyAudit);
root.Subcommands.Add(audit);

// ---- evidence ---------------------------------------------------------------------------------------------------------
var evidence = new Command("evidence", "Download one release's signed evidence bundle (Auditor, Admin), or verify one offline") { };
var evidenceId = new Argument<string>("id") { Description = "Deployment id" };
evidence.Arguments.Add(evidenceId);
evidence.Options.Add(outputOption);
evidence.SetAction((p, ct) => Run(p, ct, async (api, json, ct) =>
{
    var id = p.GetValue(evidenceId)!;
    var file = p.GetValue(outputOption) ?? new FileInfo($"evidence-{id}.zip");
    await using (var stream = file.Create())
        await api.DownloadAsync($"api/v1/deployments/{Uri.EscapeDataString(id)}/evidence", stream, ct);
    Print(json, new JsonObject { ["file"] = file.FullName, ["bytes"] = file.Length }, $"Wrote {file.FullName} ({file.Length} bytes)");
    return ExitCodes.Ok;
}));
var bundleArgument = new Argument<FileInfo>("file") { Description = "The evidence zip" };
var keyOption = new Option<string?>("--key-fingerprint")
{
    Description = "Expected SHA-256 of the signing public key (hex, as `controlplane evidence verify` prints it, or the 16-digit key id); " +
                  "without it the bundle is only checked to be consistent with the key inside it",
};
var verifyEvidence = new Command("verify", "Check an evidence bundle offline: file hashes, manifest signature, audit hash chain and checkpoint")
    { bundleArgument, keyOption };
// The command's own argument would swallow "verify"; a subcommand is matched first.
verifyEvidence.SetAction(p =>
{
    var json = p.GetValue(jsonOption);
    var result = EvidenceVerifier.Verify(p.GetValue(bundleArgument)!.FullName, p.GetValue(keyOption));
    Print(json, result.ToJson(), result.Describe());
    return result.Valid ? ExitCodes.Ok : ExitCodes.VerificationFailed;
});
evidence.Subcommands.Add(verifyEvidence);
root.Subcommands.Add(evidence);

return await root.Parse(args).InvokeAsync();

// ---- helpers ----------------------------------------------------------------------------------------------------------

// Output for terminals and jq: indented, and "don't" rather than "don\u0027t" (it is never embedded in HTML).
static JsonSerializerOptions OutputOptions() => new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

async Task<int> Run(ParseResult p, CancellationToken ct, Func<ApiClient, bool, CancellationToken, Task<int>> work)
{
    var json = p.GetValue(jsonOption);
    var url = p.GetValue(urlOption) ?? Environment.GetEnvironmentVariable("CONTROLPLANE_URL");
    var token = p.GetValue(tokenOption) ?? Environment.GetEnvironmentVariable("CONTROLPLANE_TOKEN");
    if (string.IsNullOrWhiteSpace(url) || !Uri.TryCreate(url.TrimEnd('/') + "/", UriKind.Absolute, out var baseAddress) || baseAddress.Scheme is not ("http" or "https"))
        return Fail(json, ExitCodes.Usage, "Set CONTROLPLANE_URL (or --url) to ControlPlane's http(s) address.");
    if (string.IsNullOrWhiteSpace(token))
        return Fail(json, ExitCodes.Usage, "Set CONTROLPLANE_TOKEN (or --token) to an API token.");
    using var api = new ApiClient(baseAddress, token);
    try { return await work(api, json, ct); }
    catch (CliException ex) { return Fail(json, ex.ExitCode, ex.Message); }
}

Task<int> Act(ParseResult p, CancellationToken ct, string verb, object body, Argument<string> id) => Run(p, ct, async (api, json, ct) =>
{
    var d = await api.PostAsync($"api/v1/deployments/{Uri.EscapeDataString(p.GetValue(id)!)}/{verb}", body, ct);
    Print(json, d, $"{ReleaseFollower.Name(d)}: {d["state"]}");
    return ExitCodes.Ok;
});

async Task<int> FollowAsync(ApiClient api, bool json, string id, TimeSpan timeout, CancellationToken ct)
{
    var (d, code, message) = await new ReleaseFollower(api, Console.Out, quiet: json).FollowAsync(id, timeout, ct);
    if (json)
    {
        var result = d.DeepClone().AsObject();
        result["exitCode"] = code;
        result["result"] = message;
        Console.WriteLine(result.ToJsonString(OutputOptions()));
    }
    else (code == ExitCodes.Ok ? Console.Out : Console.Error).WriteLine(message);
    return code;
}

static void Print(bool json, JsonNode node, string text) =>
    Console.WriteLine(json ? node.ToJsonString(OutputOptions()) : text);

static int Fail(bool json, int code, string message)
{
    if (json) Console.WriteLine(new JsonObject { ["error"] = message, ["exitCode"] = code }.ToJsonString());
    Console.Error.WriteLine("error: " + message);
    return code;
}
