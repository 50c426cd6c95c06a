using System.Text.Json;
using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Alerting;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Playwright;

namespace Burnrate.Tests.Dashboard;

/// <summary>
/// One server and one headless Chromium per test class: the server rates scenario S1 (a runaway job) from the
/// simulator on a fake clock, starting Monday 08:00 UTC with 30 minutes played; tests can play more minutes. Chromium
/// is Debian's <c>/usr/bin/chromium</c> driven by Microsoft.Playwright (no browser download); it is launched on first
/// use, after the test has checked (<see cref="RealPeer.Require"/>) that it is installed.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    private readonly SemaphoreSlim _launch = new(1, 1);
    private DuckDbCostStore? _store;
    private CostPipeline? _pipeline;
    private FleetReplay? _replay;
    private WebApplication? _app;
    private WebApplication? _keyedApp;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public FakeTimeProvider Clock { get; } = new(ScenarioAlertPlayer.Monday);

    public string Url { get; private set; } = "";

    public HttpClient Http { get; } = new();

    /// <summary>A second server over the same ledger and pipeline that asks for API keys: only <see cref="ReadKey"/> is known.</summary>
    public string KeyedUrl { get; private set; } = "";

    /// <summary>The secret of the keyed server's one read key (its config holds only the SHA-256).</summary>
    public string ReadKey { get; } = "k-" + Guid.NewGuid().ToString("N");

    /// <summary>Where screenshots go: TestResults/screenshots under the test binaries (kept as CI artifacts).</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    public async ValueTask InitializeAsync()
    {
        var start = ScenarioAlertPlayer.Monday;
        _store = await DuckDbCostStore.OpenAsync(":memory:");
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var options = new RatingOptions();
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve("s1"), new FleetSimulatorOptions
        {
            Epoch = start,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, start),
        });
        var engine = new AlertEngine(AlertRules.Defaults, new RecordingAlertSink());
        _pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), _store, options) { Alerts = engine };
        _replay = new FleetReplay(simulator, _pipeline, Clock);
        await PlayAsync(TimeSpan.FromMinutes(30));

        var pipeline = _pipeline;
        _app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = _store,
            Time = Clock,
            ConfigureServices = s => s.AddSingleton(engine).AddSingleton(pipeline),
        });
        await _app.StartAsync();
        Url = _app.Urls.First();
        var keys = BurnrateConfig.Parse($"auth:\n  keys:\n    - {{ name: dashboard-test, scopes: [read], sha256: {ApiKey.HashHex(ReadKey)} }}\n").ToApiKeys();
        _keyedApp = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            ApiKeys = keys,
            Store = _store,
            Time = Clock,
            ConfigureServices = s => s.AddSingleton(engine).AddSingleton(pipeline),
        });
        await _keyedApp.StartAsync();
        KeyedUrl = _keyedApp.Urls.First();
    }

    /// <summary>Advances the fake clock by <paramref name="span"/> in 5-minute ticks, rating what the simulator produced.</summary>
    public async Task PlayAsync(TimeSpan span)
    {
        var end = Clock.GetUtcNow() + span;
        while (Clock.GetUtcNow() < end)
        {
            Clock.Advance(TimeSpan.FromMinutes(5));
            await _replay!.TickAsync(end);
        }
    }

    /// <summary>The browser (launched once for the class). Call <see cref="RealPeer.Require"/> before.</summary>
    public async Task<IBrowser> BrowserAsync(string executable)
    {
        await _launch.WaitAsync();
        try
        {
            if (_browser is null)
            {
                _playwright = await Playwright.CreateAsync();
                _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
                {
                    ExecutablePath = executable,
                    Headless = true,
                    Timeout = 60_000,
                    Args =
                    [
                        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run", "--no-default-browser-check",
                        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
                    ],
                });
            }
            return _browser;
        }
        finally
        {
            _launch.Release();
        }
    }

    /// <summary>GETs an API path and parses it.</summary>
    public async Task<JsonDocument> GetJsonAsync(string path, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, (key is null ? Url : KeyedUrl) + path);
        if (key is not null)
            request.Headers.Authorization = new("Bearer", key);
        using var response = await Http.SendAsync(request, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
            await _browser.CloseAsync();
        _playwright?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        if (_keyedApp is not null)
        {
            await _keyedApp.StopAsync();
            await _keyedApp.DisposeAsync();
        }
        _pipeline?.Dispose();
        if (_store is not null)
            await _store.DisposeAsync();
        Http.Dispose();
        _launch.Dispose();
    }
}
