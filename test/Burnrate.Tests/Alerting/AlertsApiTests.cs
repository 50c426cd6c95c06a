using System.Text.Json;
using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Alerting;

/// <summary><c>GET /api/v1/alerts</c> lists what is firing now, with the numbers a person needs.</summary>
public sealed class AlertsApiTests
{
    [Fact]
    public async Task The_alerts_api_lists_the_runaway_job_of_s1_firing_with_its_workload_and_rate()
    {
        var ct = TestContext.Current.CancellationToken;
        var start = ScenarioAlertPlayer.Monday;
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var options = new RatingOptions();
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve("s1"), new FleetSimulatorOptions
        {
            Epoch = start,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, start),
        });
        var clock = new FakeTimeProvider(start);
        var engine = new AlertEngine(AlertRules.Defaults, new RecordingAlertSink());
        using var pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), store, options) { Alerts = engine };
        var replay = new FleetReplay(simulator, pipeline, clock);
        var end = start.AddMinutes(30);
        while (clock.GetUtcNow() < end)
        {
            clock.Advance(TimeSpan.FromMinutes(5));
            await replay.TickAsync(end, ct);
        }

        await using var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = store,
            Time = clock,
            ConfigureServices = s => s.AddSingleton(engine),
        });
        await app.StartAsync(ct);
        using var http = new HttpClient();
        using var body = JsonDocument.Parse(await http.GetStringAsync(app.Urls.First() + "/api/v1/alerts", ct));

        Assert.Equal(AlertRules.Defaults.Count, body.RootElement.GetProperty("rules").GetInt32());
        var runaway = body.RootElement.GetProperty("alerts").EnumerateArray().Single(a => a.GetProperty("rule").GetString() == "runaway-spend");
        Assert.Equal("firing", runaway.GetProperty("state").GetString());
        Assert.Equal("skypilot:managed-4711", runaway.GetProperty("labels").GetProperty("workload").GetString());
        Assert.Equal("495.36", runaway.GetProperty("annotations").GetProperty("usd_per_hour").GetString());
        await app.StopAsync(ct);
    }
}
