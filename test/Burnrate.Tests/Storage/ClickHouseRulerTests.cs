using System.Globalization;
using System.Text;
using Burnrate.Alerting;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.ClickHouse;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Alerting;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using static Burnrate.Tests.Storage.TwoIngesterEvents;

namespace Burnrate.Tests.Storage;

/// <summary>
/// Two ingesters and a ruler on a two-shard ClickHouse cluster (<c>serve --role ingest</c> twice, <c>--role ruler</c>
/// once, as library parts on one virtual clock): a workload whose GPUs report through both ingesters burns above a
/// spend rule's threshold only in total. Judged by each ingester alone it never would; the ruler, reading the shared
/// ledger, fires it exactly once.
/// </summary>
public sealed class ClickHouseRulerTests(ShardedClickHouse servers) : IClassFixture<ShardedClickHouse>, IAsyncDisposable
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly List<Func<ValueTask>> _cleanup = [];

    [Fact]
    public async Task The_ruler_fires_once_for_a_workload_whose_gpus_report_through_two_ingesters_and_neither_ingester_alone_would()
    {
        var ct = TestContext.Current.CancellationToken;
        var peer = await servers.GetAsync(ct);
        var options = peer.NewOptions();
        _cleanup.Add(() => new ValueTask(peer.DropAsync(options.Database)));
        var time = new FakeTimeProvider(s_noon);

        // First a dry run on a ledger of its own, to learn the job's cost per minute on each node (4 GPUs of i-east,
        // 2 of i-west): the threshold is put between the larger part and the whole.
        var probeOptions = peer.NewOptions();
        _cleanup.Add(() => new ValueTask(peer.DropAsync(probeOptions.Database)));
        var probe = Open(await ClickHouseCostStore.OpenAsync(probeOptions, ct: ct), rule: null);
        foreach (var (at, _, events) in Script())
            Post(probe, at, events);
        await probe.Ingest.RateAsync(At(10, 0), ct);
        var fullMinute = new CostQuery { From = At(3, 0), To = At(4, 0), By = [CostDimension.Workload, CostDimension.Resource] };
        var parts = (await probe.Store.QueryCostsAsync(fullMinute, ct)).Where(r => r.Keys[0] == "job:w").ToDictionary(r => r.Keys[1], r => r.Cost.Nanos);
        Assert.Equal(["i-east", "i-west"], parts.Keys.Order(StringComparer.Ordinal));
        var largest = parts.Values.Max();
        var total = parts.Values.Sum();
        var threshold = (decimal)(largest + total) / 2 * 60 / Money.NanosPerDollar; // $/h
        Assert.True(largest * 60m / Money.NanosPerDollar < threshold && threshold < total * 60m / Money.NanosPerDollar);
        var rule = new AlertRule { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = threshold };

        // The ingesters, each with the rule as a single process would have it (what it would fire alone), and the ruler.
        var eastSink = new RecordingAlertSink();
        var westSink = new RecordingAlertSink();
        var east = Open(await ClickHouseCostStore.OpenAsync(options, ct: ct), new AlertEngine([rule], eastSink));
        var west = Open(await ClickHouseCostStore.OpenAsync(options, ct: ct), new AlertEngine([rule], westSink));
        var rulerStore = await ClickHouseCostStore.OpenAsync(options, ct: ct);
        _cleanup.Add(() => rulerStore.DisposeAsync());
        var rulerSink = new RecordingAlertSink();
        var ruler = new AlertRuler(rulerStore, new AlertEngine([rule], rulerSink), new AlertRulerOptions(), time, startAt: s_noon);

        // Eleven minutes on the clock, 5 s at a time: each input reaches its ingester when it happens, both rate what has
        // closed (30 s grace), and the ruler ticks (settle 45 s), as the three serve loops do.
        var script = Script();
        var posted = 0;
        for (var now = s_noon; now <= At(11, 0); now = now.AddSeconds(5))
        {
            time.SetUtcNow(now);
            for (; posted < script.Count && script[posted].At <= now; posted++)
            {
                var (at, to, events) = script[posted];
                if (to != "west")
                    Post(east, at, events);
                if (to != "east")
                    Post(west, at, events);
            }
            await east.Ingest.RateAsync(now, ct);
            await west.Ingest.RateAsync(now, ct);
            await ruler.TickAsync(ct);
        }

        Assert.Empty(eastSink.All);
        Assert.Empty(westSink.All);
        var firing = Assert.Single(rulerSink.All, n => n.State == AlertState.Firing);
        Assert.Equal("job:w", firing.Labels["workload"]);
        Assert.Equal("research", firing.Labels["team"]);
        // The job stopped at 12:06: the ruler resolved it when that minute settled, and nothing else was sent.
        Assert.Equal([AlertState.Firing, AlertState.Resolved], rulerSink.All.Select(n => n.State));
        Assert.Equal(At(10, 0), ruler.EvaluatedThrough);
        Assert.Equal(10, ruler.MinutesEvaluated);
    }

    /// <summary>
    /// The input: job:w holds 4 GPUs of i-east (reported to one ingester) and 2 of i-west (the other), which hears of the
    /// job a minute later; the job stops at 12:06 (both hear it). Each entry is posted when it is sent, to the ingester
    /// it names (<c>east</c>, <c>west</c> or <c>both</c>).
    /// </summary>
    private static List<(DateTimeOffset At, string To, string[] Events)> Script() =>
    [
        (At(0, 5), "east", [Node("i-east", At(0, 0)), Started(At(0, 1)), Gpus("i-east", 0, 4, At(0, 1))]),
        (At(1, 15), "west", [Node("i-west", At(0, 0)), Started(At(1, 10)), Gpus("i-west", 0, 2, At(1, 10))]),
        (At(6, 5), "both", [$$"""{"type": "workload_stopped", "time": "{{Time(At(6, 0))}}", "workload_id": "job:w"}"""]),
    ];

    private static DateTimeOffset At(int minute, int second) => s_noon.AddMinutes(minute).AddSeconds(second);


    private Instance Open(ICostStore store, AlertEngine? rule)
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 21.957642m, 1.75524525m, 8));
        var cost = new CostPipeline(new RatingEngine(book, new FakeRateCard()), store) { Alerts = rule };
        var ingest = new IngestPipeline(cost, new TelemetryMapper());
        _cleanup.Add(async () =>
        {
            ingest.Dispose();
            cost.Dispose();
            await store.DisposeAsync();
        });
        return new Instance(store, ingest);
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
            await _cleanup[i]();
    }
}
