using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using Microsoft.Playwright;

// One browser journey at a time: each starts real slot processes, and the machine has two cores.
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerAssembly)]

namespace ControlPlane.E2ETests.Infrastructure;

/// <summary>The machine's Chromium (never a downloaded browser), one per test, with a context per person.</summary>
public sealed class Browser : IAsyncDisposable
{
    public const string ChromiumPath = "/usr/bin/chromium";
    private static readonly string[] Args =
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;
    private readonly string _testName;
    private int _shot;

    private Browser(IPlaywright playwright, IBrowser browser, string testName)
    {
        _playwright = playwright;
        _browser = browser;
        _testName = testName;
    }

    public static async Task<Browser> LaunchAsync([CallerMemberName] string testName = "")
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        if (!File.Exists(ChromiumPath)) Assert.Fail($"{ChromiumPath} is missing: install Debian's chromium package (.ci/run does).");
        // Generous on a loaded 2-core CI machine; assertions still fail when the thing never shows.
        Assertions.SetDefaultExpectTimeout(15_000);
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true, Args = Args });
        return new Browser(playwright, browser, testName);
    }

    /// <summary>The password the E2E tests give every person they create (at least 12 characters, as the policy asks).</summary>
    public static string PasswordFor(string name) => $"{name}-e2e-Passw0rd!";

    /// <summary>
    /// A separate browser context (its own cookies), signed in through the real sign-in page as a local account with the
    /// role — created first through the users API with the bootstrap admin token, as an admin would.
    /// </summary>
    public async Task<IPage> SignInAsync(Uri server, string name, string role)
    {
        await EnsureUserAsync(server, name, role);
        var page = await NewPageAsync(server);
        await page.GotoAsync("/");
        // Not signed in: the dashboard sends people to the sign-in page.
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/signin"));
        await ScreenshotAsync(page, "signin");
        await page.Locator("#userName").FillAsync(name);
        await page.Locator("#password").FillAsync(PasswordFor(name));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync(name);
        await Assertions.Expect(page.GetByTestId("signed-in-role")).ToHaveTextAsync(role);
        return page;
    }

    /// <summary>A fresh browser context; every Content-Security-Policy violation it reports is kept in <see cref="CspViolations"/>.</summary>
    public async Task<IPage> NewPageAsync(Uri server)
    {
        var context = await _browser.NewContextAsync(new() { BaseURL = server.ToString(), ViewportSize = new() { Width = 1440, Height = 900 }, AcceptDownloads = true });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        page.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase)) CspViolations.Add(message.Text);
        };
        return page;
    }

    public List<string> CspViolations { get; } = [];

    private static async Task EnsureUserAsync(Uri server, string name, string role)
    {
        using var api = new HttpClient { BaseAddress = server };
        api.DefaultRequestHeaders.Authorization = new("Bearer", DashboardServer.AdminToken);
        var response = await api.PostAsJsonAsync("/api/v1/users", new { userName = name, role, password = PasswordFor(name) }, TestContext.Current.CancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.Conflict) return; // created earlier (e.g. through the other replica)
        Assert.True(response.IsSuccessStatusCode, $"creating {name} ({role}) → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
    }

    /// <summary>Saves a full-page screenshot under artifacts/e2e-screenshots (kept by CI with the test results).</summary>
    public async Task ScreenshotAsync(IPage page, string what)
    {
        var dir = Path.Combine(RepositoryRoot(), "artifacts", "e2e-screenshots");
        Directory.CreateDirectory(dir);
        await page.ScreenshotAsync(new() { Path = Path.Combine(dir, $"{_testName}-{++_shot:00}-{what}.png"), FullPage = true });
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln"))) return dir.FullName;
        return AppContext.BaseDirectory;
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }
}
