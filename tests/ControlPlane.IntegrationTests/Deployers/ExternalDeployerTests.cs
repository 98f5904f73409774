using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Core.Deployers;
using ControlPlane.Core.Deployments;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ControlPlane.IntegrationTests.Aws;
using ControlPlane.IntegrationTests.Infrastructure;

namespace ControlPlane.IntegrationTests.Deployers;

/// <summary>The <c>external</c> deployer against real slot servers on loopback whose version endpoint the test controls.</summary>
public sealed class ExternalDeployerTests : IAsyncLifetime
{
    private readonly ServiceProvider services = new ServiceCollection().AddHttpClient().BuildServiceProvider();
    private readonly CapturingLoggerProvider logs = new();
    private readonly ILoggerFactory loggerFactory;
    private readonly ManualClock clock = new();
    private SlotServer blue = null!;
    private SlotServer green = null!;

    public ExternalDeployerTests() => loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        blue = await SlotServer.StartAsync(Ct);
        green = await SlotServer.StartAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await blue.DisposeAsync();
        await green.DisposeAsync();
        await services.DisposeAsync();
        loggerFactory.Dispose();
    }

    [Fact]
    public async Task Deploy_is_pending_until_the_slot_reports_the_version_then_ready()
    {
        var deployer = NewDeployer();
        var binding = Binding();
        green.Answer(HttpStatusCode.OK, "1.4.0\n");

        var first = await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct);
        Assert.Equal(SlotDeployStatus.Pending, first.Status);
        Assert.Contains("it reports 1.4.0", first.Message);
        Assert.Contains("600s left", first.Message);
        Assert.Equal(TimeSpan.FromSeconds(5), first.RetryAfter);

        clock.Advance(TimeSpan.FromSeconds(30));
        green.Answer(HttpStatusCode.ServiceUnavailable, "starting");
        var second = await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct);
        Assert.Equal(SlotDeployStatus.Pending, second.Status);
        Assert.Contains("answers HTTP 503", second.Message);
        Assert.Contains("570s left", second.Message);

        green.Answer(HttpStatusCode.OK, """{"app":"shop","version":"1.5.0","commit":"4f2a9c1"}""");
        var ready = await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct);
        Assert.Equal(SlotDeployStatus.Ready, ready.Status);
        Assert.Contains($"reports 1.5.0 at {green.Url}version", ready.Message);
        Assert.All(green.Paths, p => Assert.Equal("/version", p));
        Assert.Empty(blue.Paths);
    }

    [Theory]
    [InlineData("2.0.0", true)]
    [InlineData("  2.0.0\r\n", true)]
    [InlineData("\"2.0.0\"", true)]
    [InlineData("""{"Version":"2.0.0"}""", true)]
    [InlineData("12.0.0", false)]
    [InlineData("2.0.0-rc1", false)]
    [InlineData("""{"version":"2.0.1","previous":"2.0.0"}""", false)]
    [InlineData("""{"build":"2.0.0"}""", false)]
    public async Task The_version_must_match_exactly_as_plain_text_or_json(string body, bool ready)
    {
        blue.Answer(HttpStatusCode.OK, body);

        var result = await NewDeployer().DeployAsync(Binding(), Slot.Blue, "2.0.0", Ct);

        Assert.Equal(ready ? SlotDeployStatus.Ready : SlotDeployStatus.Pending, result.Status);
    }

    [Fact]
    public async Task Deploy_fails_after_the_deadline_and_a_later_attempt_gets_a_whole_deadline_again()
    {
        var deployer = NewDeployer();
        var binding = Binding(s => s["deadlineSeconds"] = 60);
        green.Answer(HttpStatusCode.OK, "1.4.0");

        Assert.Equal(SlotDeployStatus.Pending, (await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct)).Status);
        clock.Advance(TimeSpan.FromSeconds(59));
        var last = await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct);
        Assert.Equal(SlotDeployStatus.Pending, last.Status);
        Assert.Equal(TimeSpan.FromSeconds(1), last.RetryAfter);

        clock.Advance(TimeSpan.FromSeconds(1));
        var failed = await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct);
        Assert.Equal(SlotDeployStatus.Failed, failed.Status);
        Assert.Equal($"The green slot did not report 1.5.0 at {green.Url}version within 60s: it reports 1.4.0. " +
                     "ControlPlane does not deploy this slot itself; check the pipeline that deploys shop to green.", failed.Message);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("Deploying 1.5.0 to shop/green failed"));

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(SlotDeployStatus.Pending, (await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct)).Status);
    }

    [Fact]
    public async Task Another_version_for_the_slot_starts_its_own_deadline()
    {
        var deployer = NewDeployer();
        var binding = Binding(s => s["deadlineSeconds"] = 60);
        green.Answer(HttpStatusCode.OK, "1.4.0");
        await deployer.DeployAsync(binding, Slot.Green, "1.5.0", Ct);
        clock.Advance(TimeSpan.FromSeconds(50));

        var other = await deployer.DeployAsync(binding, Slot.Green, "1.6.0", Ct);
        clock.Advance(TimeSpan.FromSeconds(50));
        var still = await deployer.DeployAsync(binding, Slot.Green, "1.6.0", Ct);

        Assert.Contains("60s left", other.Message);
        Assert.Equal(SlotDeployStatus.Pending, still.Status);
    }

    [Fact]
    public async Task An_unreachable_slot_is_pending_then_failed_and_observed_as_not_running()
    {
        var deployer = NewDeployer();
        var binding = Binding(s =>
        {
            s["greenUrl"] = green.Url.AbsoluteUri;
            s["blueUrl"] = "http://127.0.0.1:1/";
            s["deadlineSeconds"] = 10;
        });

        var pending = await deployer.DeployAsync(binding, Slot.Blue, "1.0.0", Ct);
        Assert.Equal(SlotDeployStatus.Pending, pending.Status);
        Assert.Contains("not reachable", pending.Message);
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(SlotDeployStatus.Failed, (await deployer.DeployAsync(binding, Slot.Blue, "1.0.0", Ct)).Status);

        var observed = await deployer.ObserveAsync(binding, Slot.Blue, Ct);
        Assert.False(observed.Running);
        Assert.Contains("Nothing answers at http://127.0.0.1:1/version", observed.Message);
    }

    [Fact]
    public async Task Observe_reports_the_version_and_health_from_the_version_endpoint()
    {
        var deployer = NewDeployer();
        blue.Answer(HttpStatusCode.OK, """{"version":"1.0.0"}""");
        green.Answer(HttpStatusCode.InternalServerError, "boom");

        Assert.Equal(new SlotObservation(true, "1.0.0", true, $"{blue.Url}version reports 1.0.0."), await deployer.ObserveAsync(Binding(), Slot.Blue, Ct));
        var broken = await deployer.ObserveAsync(Binding(), Slot.Green, Ct);
        Assert.True(broken.Running);
        Assert.False(broken.Healthy);
        Assert.Contains("answers HTTP 500", broken.Message);
    }

    [Fact]
    public async Task Stop_changes_nothing_and_says_so_once()
    {
        var deployer = NewDeployer();
        blue.Answer(HttpStatusCode.OK, "1.0.0");

        await deployer.StopAsync(Binding(), Slot.Blue, Ct);
        await deployer.StopAsync(Binding(), Slot.Blue, Ct);

        Assert.True((await deployer.ObserveAsync(Binding(), Slot.Blue, Ct)).Running);
        var said = logs.Entries.Where(e => e.Message.StartsWith("Not stopping shop/blue: the external deployer does not own the slot", StringComparison.Ordinal)).ToList();
        Assert.Equal([LogLevel.Information, LogLevel.Debug], said.Select(e => e.Level));
        Assert.All(blue.Paths, p => Assert.Equal("/version", p));
    }

    [Fact]
    public void Endpoints_come_from_the_settings()
    {
        var deployer = NewDeployer();
        Assert.Equal(blue.Url, deployer.EndpointOf(Binding(), Slot.Blue));
        Assert.Equal(green.Url, deployer.EndpointOf(Binding(), Slot.Green));
        var parsed = ExternalDeployerSettings.TryParse(JsonDocument.Parse("""{"blueUrl":"http://a/app/","greenUrl":"http://b/app"}""").RootElement, out var settings);
        Assert.Empty(parsed);
        Assert.Equal(new Uri("http://a/app/version"), settings!.VersionUrlOf(Slot.Blue));
        Assert.Equal(new Uri("http://b/app/version"), settings.VersionUrlOf(Slot.Green));
        Assert.Equal(600, settings.DeadlineSeconds);
    }

    [Theory]
    [InlineData("blueUrl", "null", "blueUrl", "is required")]
    [InlineData("blueUrl", "\"shop-blue:8080\"", "blueUrl", "must be an absolute http or https URL")]
    [InlineData("blueUrl", "\"ftp://shop-blue/\"", "blueUrl", "must be an absolute http or https URL")]
    [InlineData("greenUrl", "\"SAME\"", "greenUrl", "must differ from blueUrl")]
    [InlineData("versionPath", "\"version\"", "versionPath", "must be a path starting with '/'")]
    [InlineData("deadlineSeconds", "0", "deadlineSeconds", "from 1 to 86400")]
    [InlineData("deadlineSeconds", "\"600\"", "deadlineSeconds", "from 1 to 86400")]
    [InlineData("bluePort", "8080", "bluePort", "is not a setting of the external deployer")]
    public async Task Invalid_settings_are_reported_per_field_and_deploy_fails_without_calling_the_slot(string field, string json, string errorField, string message)
    {
        var settings = Settings(s => s[field] = json == "\"SAME\"" ? s["blueUrl"]!.GetValue<string>() : JsonNode.Parse(json));
        var deployer = NewDeployer();

        var errors = deployer.ValidateSettings(settings);
        var result = await deployer.DeployAsync(new DeployerBinding("shop", settings), Slot.Blue, "1.0.0", Ct);

        Assert.Contains(errors, e => e.Field == errorField && e.Message.Contains(message, StringComparison.Ordinal));
        Assert.Equal(SlotDeployStatus.Failed, result.Status);
        Assert.StartsWith("Invalid external deployer settings: ", result.Message);
        Assert.Empty(blue.Paths);
    }

    private ExternalDeployer NewDeployer() =>
        new(services.GetRequiredService<IHttpClientFactory>(), loggerFactory.CreateLogger<ExternalDeployer>(), clock);

    private DeployerBinding Binding(Action<JsonObject>? change = null) => new("shop", Settings(change));

    private JsonElement Settings(Action<JsonObject>? change = null)
    {
        var settings = new JsonObject
        {
            ["blueUrl"] = blue.Url.AbsoluteUri,
            ["greenUrl"] = green.Url.AbsoluteUri,
            ["versionPath"] = "/version",
        };
        change?.Invoke(settings);
        return JsonDocument.Parse(settings.ToJsonString()).RootElement;
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => now;
        public void Advance(TimeSpan by) => now += by;
    }

    /// <summary>A real Kestrel server standing in for a slot deployed by someone else; its answer is set by the test.</summary>
    private sealed class SlotServer : IAsyncDisposable
    {
        private readonly WebApplication app;
        private readonly List<string> paths = [];
        private (HttpStatusCode Status, string Body) answer = (HttpStatusCode.NotFound, "");

        private SlotServer(WebApplication app) => this.app = app;

        public Uri Url { get; private set; } = null!;
        public IReadOnlyList<string> Paths { get { lock (paths) return paths.ToList(); } }

        public void Answer(HttpStatusCode status, string body) => answer = (status, body);

        public static async Task<SlotServer> StartAsync(CancellationToken cancellationToken)
        {
            var app = LoopbackServer.Create();
            var server = new SlotServer(app);
            app.Run(async context =>
            {
                lock (server.paths) server.paths.Add(context.Request.Path.Value ?? "");
                var (status, body) = server.answer;
                context.Response.StatusCode = (int)status;
                await context.Response.WriteAsync(body, context.RequestAborted);
            });
            var url = await LoopbackServer.StartAsync(app, cancellationToken);
            server.Url = url;
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
