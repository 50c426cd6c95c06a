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

namespace Burnrate.Tests.Storage;

/// <summary>
/// The ingest and rating pipelines with a write-ahead log and a ClickHouse ledger, while the ClickHouse server is killed
/// and restarted: input keeps being acknowledged into the log, rated rows wait in the pipeline, and once the server is
/// back the ledger is the one an uninterrupted run on DuckDB writes — nothing lost, nothing doubled.
/// </summary>
public sealed class ClickHouseOutageTests(SingleClickHouse servers) : IClassFixture<SingleClickHouse>, IAsyncDisposable
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-outage-").FullName;
    private readonly List<Func<ValueTask>> _cleanup = [];

    [Fact]
    public async Task ClickHouse_down_for_minutes_during_ingest_loses_nothing_and_doubles_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var peer = await servers.GetAsync(ct);
        var options = peer.NewOptions();
        _cleanup.Add(() => new ValueTask(peer.DropAsync(options.Database)));
        var duck = await OpenAsync("duck", await DuckDbCostStore.OpenAsync(Path.Combine(_dir, "duck.duckdb"), ct: ct));
        var clickHouse = await OpenAsync("clickhouse", await ClickHouseCostStore.OpenAsync(options, ct: ct));

        var failedRatings = 0;
        for (var minute = 0; minute < 12; minute++)
        {
            if (minute == 3)
                peer.Stop(0);
            if (minute == 8)
                await peer.RestartAsync(0, ct);
            var events = Events(minute);
            foreach (var instance in new[] { duck, clickHouse })
            {
                // Acknowledged (logged and queued) whether or not the store is up.
                var record = new IngestRecord(IngestKind.Events, At(minute, 5), "", Encoding.UTF8.GetBytes(events));
                Assert.True(instance.Ingest.TryAccept(record, IngestDecoder.Decode(record)), "the queue refused an input");
            }
            var ratedAt = At(minute + 1, 31); // minute closes (grace 30 s)
            await duck.Ingest.RateAsync(ratedAt, ct);
            try
            {
                await clickHouse.Ingest.RateAsync(ratedAt, ct);
            }
            catch (ClickHouseException)
            {
                failedRatings++;
                Assert.InRange(minute, 3, 7);
                Assert.True(clickHouse.Cost.PendingRows > 0, "rated rows were dropped instead of kept for the next write");
            }
        }
        await duck.Ingest.RateAsync(s_noon.AddHours(1), ct);
        await clickHouse.Ingest.RateAsync(s_noon.AddHours(1), ct);

        Assert.Equal(5, failedRatings);
        Assert.Equal(0, clickHouse.Cost.PendingRows);
        var expected = await LedgerAsync(duck.Store);
        Assert.Equal(expected, await LedgerAsync(clickHouse.Store));
        Assert.Equal(await TotalAsync(duck.Store), await TotalAsync(clickHouse.Store));
        Assert.Equal(await duck.Store.GetLedgerSpanAsync(ct), await clickHouse.Store.GetLedgerSpanAsync(ct));
        Assert.Equal(
            (await duck.Store.GetWorkloadsAsync(cancellationToken: ct)).Select(w => $"{w.Workload.Id} {w.Started:O} {w.Ended:O}"),
            (await clickHouse.Store.GetWorkloadsAsync(cancellationToken: ct)).Select(w => $"{w.Workload.Id} {w.Started:O} {w.Ended:O}"));
    }

    private static async Task<long> TotalAsync(ICostStore store) =>
        (await store.QueryCostsAsync(new CostQuery { From = s_noon.AddHours(-1), To = s_noon.AddHours(2) }, TestContext.Current.CancellationToken)).Single().Cost.Nanos;

    // Two nodes from the start; a job per three minutes takes GPUs on one of them and ends two minutes later; a transfer
    // in most minutes. Each minute's input arrives 5 s into it.
    private static string Events(int minute)
    {
        var events = new List<string>();
        if (minute == 0)
        {
            events.Add(NodeStarted("i-a", At(0, 0)));
            events.Add(NodeStarted("i-b", At(0, 0)));
        }
        if (minute % 3 == 0)
        {
            var job = "job:" + minute.ToString(CultureInfo.InvariantCulture);
            events.Add($$"""{"type": "workload_started", "time": "{{Time(At(minute, 1))}}", "workload": {"id": "{{job}}", "team": "team-{{minute % 2}}"} }""");
            for (var gpu = 0; gpu < 3; gpu++)
                events.Add($$"""{"type": "gpu_allocated", "time": "{{Time(At(minute, 1))}}", "workload_id": "{{job}}", "node_id": "i-{{(minute % 2 == 0 ? "a" : "b")}}", "gpu_index": {{gpu + (minute % 4)}}}""");
        }
        if (minute % 3 == 2)
        {
            var job = "job:" + (minute - 2).ToString(CultureInfo.InvariantCulture);
            events.Add($$"""{"type": "workload_stopped", "time": "{{Time(At(minute, 2))}}", "workload_id": "{{job}}"}""");
        }
        if (minute % 3 != 2)
        {
            var running = "job:" + (minute - (minute % 3)).ToString(CultureInfo.InvariantCulture);
            events.Add($$"""{"type": "bytes_transferred", "time": "{{Time(At(minute, 3))}}", "workload_id": "{{running}}", "node_id": "i-a", "kind": "internet", "bytes": {{(minute + 1) * 100_000_000}}}""");
        }
        return "[" + string.Join(",\n", events) + "]";
    }

    private static DateTimeOffset At(int minute, int second) => s_noon.AddMinutes(minute).AddSeconds(second);

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string NodeStarted(string id, DateTimeOffset at) => $$"""
        {"type": "node_started", "time": "{{Time(at)}}", "node": {"id": "{{id}}", "provider": "aws", "region": "us-east-1",
         "zone": "us-east-1a", "instance_type": "p4d.24xlarge", "capacity": "on-demand", "gpus": 8, "gpu_model": "A100"} }
        """;

    /// <summary>Every ledger row by minute, resource, workload and component, exact to the nano-dollar.</summary>
    private static async Task<List<string>> LedgerAsync(ICostStore store)
    {
        var rows = await store.QueryCostsAsync(new CostQuery
        {
            From = s_noon.AddHours(-1),
            To = s_noon.AddHours(2),
            By = [CostDimension.Resource, CostDimension.Workload, CostDimension.Component],
            Step = TimeSpan.FromMinutes(1),
        }, TestContext.Current.CancellationToken);
        Assert.NotEmpty(rows);
        return [.. rows.Select(r => $"{r.BucketStart:HH:mm} {string.Join(" ", r.Keys)} {r.Cost.Nanos} {r.GpuSeconds:0.000000}").Order(StringComparer.Ordinal)];
    }

    private sealed record Instance(ICostStore Store, CostPipeline Cost, IngestPipeline Ingest);

    private Task<Instance> OpenAsync(string name, ICostStore store)
    {
        // Sub-nano-dollar remainders carry from minute to minute, so a minute written twice or lost shows.
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 21.957642m, 1.75524525m, 8));
        var cost = new CostPipeline(new RatingEngine(book, new FakeRateCard()), store);
        var wal = WriteAheadLog.Open(Path.Combine(_dir, name, "wal"));
        var ingest = new IngestPipeline(cost, new TelemetryMapper(), wal);
        var stop = new CancellationTokenSource();
        var reader = ingest.RunAsync(stop.Token);
        _cleanup.Add(async () =>
        {
            await stop.CancelAsync();
            await reader;
            stop.Dispose();
            ingest.Dispose();
            cost.Dispose();
            wal.Dispose();
            await store.DisposeAsync();
        });
        return Task.FromResult(new Instance(store, cost, ingest));
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
            await _cleanup[i]();
        Directory.Delete(_dir, recursive: true);
    }
}
