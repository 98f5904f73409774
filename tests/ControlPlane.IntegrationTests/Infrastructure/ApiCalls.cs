using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace ControlPlane.IntegrationTests.Infrastructure;

/// <summary>Small helpers for driving the REST API and reading the public URL like a user would.</summary>
public static class ApiCalls
{
    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    public static async Task<JsonElement> GetJsonAsync(this HttpClient client, string url)
    {
        var response = await client.GetAsync(url);
        Assert.True(response.IsSuccessStatusCode, $"GET {url} → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return await response.JsonAsync();
    }

    public static async Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string url, object? body) =>
        await client.PostAsJsonAsync(url, body ?? new { });

    public static async Task<JsonElement> StartReleaseAsync(this HttpClient client, string app, string version, string? reason = null)
    {
        var response = await client.PostJsonAsync($"/api/v1/applications/{app}/deployments", new { version, reason });
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"start release → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return await response.JsonAsync();
    }

    /// <summary>Polls the deployment until it reaches <paramref name="state"/>; fails with the last state seen otherwise.</summary>
    public static async Task<JsonElement> WaitForStateAsync(this HttpClient client, string deploymentId, string state, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = await client.GetJsonAsync($"/api/v1/deployments/{deploymentId}");
            var current = last.GetProperty("state").GetString();
            if (current == state) return last;
            if (current is "Failed" or "Aborted" or "RolledBack" or "Succeeded" && current != state)
                Assert.Fail($"deployment reached {current} instead of {state}: {last}");
            await Task.Delay(100);
        }
        Assert.Fail($"deployment did not reach {state} within {seconds} s; last seen: {last}");
        return last;
    }

    /// <summary>What the application's public URL answers right now (a fresh connection each time).</summary>
    public static async Task<(string Version, string Slot)> PublicAnswerAsync(string publicUrl)
    {
        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        var body = JsonDocument.Parse(await http.GetStringAsync(publicUrl)).RootElement;
        return (body.GetProperty("version").GetString()!, body.GetProperty("slot").GetString()!);
    }

    public static async Task<string> PublicUrlAsync(this HttpClient client, string app)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var json = await client.GetJsonAsync($"/api/v1/applications/{app}");
            if (json.GetProperty("publicUrl").GetString() is { } url) return url;
            if (DateTime.UtcNow > deadline) Assert.Fail($"{app} has no public URL yet: {json}");
            await Task.Delay(100);
        }
    }
}
