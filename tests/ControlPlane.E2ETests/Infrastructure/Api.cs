using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace ControlPlane.E2ETests.Infrastructure;

/// <summary>Setting the scene through the REST API, and reading the public URL like a user would.</summary>
public static class Api
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<JsonElement> GetJsonAsync(this HttpClient client, string url)
    {
        var response = await client.GetAsync(url, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"GET {url} → {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public static async Task<JsonElement> PostOkAsync(this HttpClient client, string url, object body)
    {
        var response = await client.PostAsJsonAsync(url, body, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"POST {url} → {(int)response.StatusCode}: {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    public static async Task<string> StartReleaseAsync(this HttpClient client, string app, string version, string reason) =>
        (await client.PostOkAsync($"/api/v1/applications/{app}/deployments", new { version, reason })).GetProperty("id").GetString()!;

    public static async Task<JsonElement> WaitForStateAsync(this HttpClient client, string id, string state, int seconds = 90)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = await client.GetJsonAsync($"/api/v1/deployments/{id}");
            var current = last.GetProperty("state").GetString();
            if (current == state) return last;
            if (current is "Failed" or "Aborted" or "RolledBack" or "Succeeded") Assert.Fail($"deployment reached {current} instead of {state}: {last}");
            await Task.Delay(200, Ct);
        }
        Assert.Fail($"deployment did not reach {state} within {seconds} s; last seen: {last}");
        return last;
    }

    public static async Task<string> PublicUrlAsync(this HttpClient client, string app)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var json = await client.GetJsonAsync($"/api/v1/applications/{app}");
            if (json.GetProperty("publicUrl").GetString() is { } url) return url;
            if (DateTime.UtcNow > deadline) Assert.Fail($"{app} has no public URL yet: {json}");
            await Task.Delay(200, Ct);
        }
    }

    /// <summary>The version the public URL answers right now, on a fresh connection.</summary>
    public static async Task<string> PublicVersionAsync(string publicUrl)
    {
        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        var body = JsonDocument.Parse(await http.GetStringAsync(publicUrl, Ct)).RootElement;
        return body.GetProperty("version").GetString()!;
    }

    public static bool IsSuccess(HttpStatusCode code) => (int)code is >= 200 and < 300;
}
