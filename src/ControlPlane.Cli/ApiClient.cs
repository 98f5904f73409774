using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Cli;

/// <summary>The server refused or could not be reached; the message is what to tell the person.</summary>
public sealed class CliException(string message, int exitCode = ExitCodes.ApiError) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>A thin client of the REST API: bearer token, JSON in and out, problem+json turned into one readable line.</summary>
public sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    public ApiClient(Uri baseAddress, string token)
    {
        BaseAddress = baseAddress;
        Token = token;
        _http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(100) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("controlplane-cli/" + typeof(ApiClient).Assembly.GetName().Version);
    }

    public Uri BaseAddress { get; }
    public string Token { get; }

    public Task<JsonNode> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, ct);

    public Task<JsonNode> PostAsync(string path, object? body, CancellationToken ct) => SendAsync(HttpMethod.Post, path, body ?? new { }, ct);

    public async Task<JsonNode> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null)
            request.Content = new StringContent(JsonSerializer.Serialize(body, JsonSerializerOptions.Web), Encoding.UTF8, "application/json");
        using var response = await SendRawAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        return text.Length == 0 ? new JsonObject() : JsonNode.Parse(text) ?? new JsonObject();
    }

    /// <summary>Downloads to <paramref name="target"/>; returns the bytes written.</summary>
    public async Task<long> DownloadAsync(string path, Stream target, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path.TrimStart('/'));
        using var response = await SendRawAsync(request, ct, HttpCompletionOption.ResponseHeadersRead);
        await using var source = await response.Content.ReadAsStreamAsync(ct);
        var before = target.CanSeek ? target.Position : 0;
        await source.CopyToAsync(target, ct);
        return target.CanSeek ? target.Position - before : -1;
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken ct, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage response;
        try { response = await _http.SendAsync(request, completion, ct); }
        catch (HttpRequestException ex) { throw new CliException($"Cannot reach ControlPlane at {BaseAddress}: {ex.Message}"); }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested) { throw new CliException($"ControlPlane at {BaseAddress} did not answer in time."); }
        if (response.IsSuccessStatusCode) return response;
        using (response)
            throw new CliException(Describe(request, response, await response.Content.ReadAsStringAsync(ct)));
    }

    private static string Describe(HttpRequestMessage request, HttpResponseMessage response, string body)
    {
        var what = $"{request.Method} {request.RequestUri} → {(int)response.StatusCode}";
        try
        {
            if (JsonNode.Parse(body) is JsonObject problem)
            {
                var detail = problem["detail"]?.GetValue<string>() ?? problem["title"]?.GetValue<string>() ?? "";
                if (problem["errors"] is JsonObject errors)
                    detail += " (" + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value!.AsArray().Select(m => m?.GetValue<string>()))}")) + ")";
                return $"{what}: {detail}";
            }
        }
        catch (JsonException) { }
        return $"{what}{(body.Length > 0 ? ": " + body[..Math.Min(body.Length, 300)] : "")}";
    }

    public void Dispose() => _http.Dispose();
}
