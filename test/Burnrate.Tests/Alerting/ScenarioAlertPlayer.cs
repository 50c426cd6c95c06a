using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Simulation;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Alerting;

/// <summary>Keeps every notification published, in order.</summary>
public sealed class RecordingAlertSink : IAlertSink
{
    private readonly List<AlertNotification> _all = [];

    public IReadOnlyList<AlertNotification> All
    {
        get
        {
            lock (_all)
                return [.. _all];
        }
    }

    public void Publish(IReadOnlyList<AlertNotification> notifications)
    {
        lock (_all)
            _all.AddRange(notifications);
    }
}

/// <summary>Plays simulator scenarios through the real rating pipeline with an alert engine, as ScenarioLedgerTests does.</summary>
internal static class ScenarioAlertPlayer
{
    /// <summary>A Monday 08:00 UTC.</summary>
    public static readonly DateTimeOffset Monday = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    public static async Task<IReadOnlyList<AlertNotification>> PlayAsync(string scenario, TimeSpan span, DateTimeOffset? epoch = null,
        IReadOnlyList<AlertRule>? rules = null, TimeSpan? sampleEvery = null, TimeSpan? tick = null)
    {
        var ct = TestContext.Current.CancellationToken;
        var start = epoch ?? Monday;
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var options = new RatingOptions();
        var sample = sampleEvery ?? TimeSpan.FromMinutes(1);
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve(scenario), new FleetSimulatorOptions
        {
            Epoch = start,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, start),
            HeartbeatInterval = sample,
            UtilizationInterval = sample,
            CounterInterval = sample,
        });
        var clock = new FakeTimeProvider(start);
        var sink = new RecordingAlertSink();
        using var pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), store, options)
        {
            Alerts = new AlertEngine(rules ?? AlertRules.Defaults, sink),
        };
        var replay = new FleetReplay(simulator, pipeline, clock);
        var end = start + span;
        var step = tick ?? TimeSpan.FromMinutes(10);
        while (clock.GetUtcNow() < end)
        {
            clock.Advance(step);
            await replay.TickAsync(end, ct);
        }
        await replay.FinishAsync(end, options.Grace, ct);
        return sink.All;
    }

    public static string Show(IEnumerable<AlertNotification> notifications, DateTimeOffset start) =>
        string.Join("\n", notifications.Select(n =>
            $"{n.EvidenceAt - start} {n.State} {n.Rule} since={n.StartsAt - start} {string.Join(",", n.Labels.Where(l => l.Key is not ("alertname" or "severity")).Select(l => l.Key + "=" + l.Value))} | {n.Annotations["summary"]} | $/h={n.Annotations["usd_per_hour"]} so_far={n.Annotations["cost_so_far_usd"]}"));
}
