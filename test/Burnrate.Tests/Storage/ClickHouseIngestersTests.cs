using System.Globalization;
using System.Text;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.ClickHouse;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Support;
using static Burnrate.Tests.Storage.TwoIngesterEvents;

namespace Burnrate.Tests.Storage;

/// <summary>
/// Two ingesters (each its own rating pipeline and store object) write one ledger on a two-shard ClickHouse cluster: a
/// workload whose GPUs are on nodes that report to different ingesters is one workload with one total, equal to what a
/// single process rating all the input writes.
/// </summary>
public sealed class ClickHouseIngestersTests(ShardedClickHouse servers) : IClassFixture<ShardedClickHouse>, IAsyncDisposable
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly List<Func<ValueTask>> _cleanup = [];

    [Fact]
    public async Task A_workload_on_nodes_of_two_ingesters_is_one_workload_with_the_single_process_total()
    {
        var ct = TestContext.Current.CancellationToken;
        var peer = await servers.GetAsync(ct);
        var options = peer.NewOptions();
        _cleanup.Add(() => new ValueTask(peer.DropAsync(options.Database)));
        var single = Open(await DuckDbCostStore.OpenAsync(":memory:", ct: ct));
        var east = Open(await ClickHouseCostStore.OpenAsync(options, ct: ct));
        var west = Open(await ClickHouseCostStore.OpenAsync(options, ct: ct));

        // job:w holds 4 GPUs of i-east (reported to one ingester) and 2 of i-west (the other); i-west's ingester hears
        // of the job a minute later. The job stops at 12:06.
        var forEast = new[] { Node("i-east", At(0, 0)), Started(At(0, 1)), Gpus("i-east", 0, 4, At(0, 1)) };
        var forWest = new[] { Node("i-west", At(0, 0)), Started(At(1, 10)), Gpus("i-west", 0, 2, At(1, 10)) };
        Post(single, At(0, 5), forEast);
        Post(single, At(1, 15), forWest);
        Post(east, At(0, 5), forEast);
        Post(west, At(1, 15), forWest);
        var stop = $$"""{"type": "workload_stopped", "time": "{{Time(At(6, 0))}}", "workload_id": "job:w"}""";
        Post(single, At(6, 5), [stop]);
        Post(east, At(6, 5), [stop]);
        Post(west, At(6, 5), [stop]);
        var end = At(10, 0);
        foreach (var instance in new[] { single, east, west })
            await instance.Ingest.RateAsync(end, ct);

        var query = new CostQuery { From = s_noon, To = s_noon.AddHours(1), By = [CostDimension.Workload, CostDimension.Resource, CostDimension.Component], Step = TimeSpan.FromMinutes(1) };
        Assert.Equal(Render(await single.Store.QueryCostsAsync(query, ct)), Render(await east.Store.QueryCostsAsync(query, ct)));
        var byWorkload = new CostQuery { From = s_noon, To = s_noon.AddHours(1), By = [CostDimension.Workload] };
        var expected = await single.Store.QueryCostsAsync(byWorkload, ct);
        Assert.Equal(Render(expected), Render(await west.Store.QueryCostsAsync(byWorkload, ct)));
        Assert.Contains(expected, r => r.Keys[0] == "job:w" && r.Cost.Nanos > 0);
        var workload = Assert.Single(await east.Store.GetWorkloadsAsync(cancellationToken: ct));
        Assert.Equal("job:w", workload.Workload.Id);
        Assert.Equal(At(0, 1), workload.Started);
        Assert.Equal(At(6, 0), workload.Ended);
    }

    private static List<string> Render(IEnumerable<CostReportRow> rows) =>
        [.. rows.Select(r => $"{r.BucketStart:HH:mm} {string.Join(" ", r.Keys)} {r.Cost.Nanos} {r.IdleCost.Nanos} {r.GpuSeconds:0.000000}").Order(StringComparer.Ordinal)];

    private static DateTimeOffset At(int minute, int second) => s_noon.AddMinutes(minute).AddSeconds(second);


    private Instance Open(ICostStore store)
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 21.957642m, 1.75524525m, 8));
        var cost = new CostPipeline(new RatingEngine(book, new FakeRateCard()), store);
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
