using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Billing;

/// <summary>A ledger played from a simulator scenario through the real rating pipeline, for billing tests.</summary>
internal static class ScenarioBill
{
    public static readonly DateTimeOffset T0 = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    public static async Task<DuckDbCostStore> PlayAsync(string scenario, TimeSpan span)
    {
        var ct = TestContext.Current.CancellationToken;
        var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var options = new RatingOptions();
        var sample = TimeSpan.FromMinutes(5);
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve(scenario), new FleetSimulatorOptions
        {
            Epoch = T0,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, T0),
            HeartbeatInterval = sample,
            UtilizationInterval = sample,
            CounterInterval = sample,
        });
        var clock = new FakeTimeProvider(T0);
        using var pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), store, options);
        var replay = new FleetReplay(simulator, pipeline, clock);
        var end = T0 + span;
        while (clock.GetUtcNow() < end)
        {
            clock.Advance(TimeSpan.FromMinutes(10));
            await replay.TickAsync(end, ct);
        }
        await replay.FinishAsync(end, options.Grace, ct);
        return store;
    }
}
