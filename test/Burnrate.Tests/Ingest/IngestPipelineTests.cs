using System.Globalization;
using System.Text;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// The ingest pipeline with its write-ahead log and a DuckDB ledger, each on a temp directory, on a fake clock. A crash is
/// simulated by abandoning a pipeline (nothing disposed, nothing flushed) and opening a new log and pipeline on the same
/// directories: the ledger must come out exactly as if nothing had happened.
/// </summary>
public sealed class IngestPipelineTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-ingest-").FullName;
    private readonly FakeTimeProvider _time = new(s_noon);
    private readonly List<Instance> _instances = [];

    // ---- replay --------------------------------------------------------------------------------------------

    /// <summary>
    /// Inputs as they arrive (received at, body) and the points where the server rated (body null). Several arrive late
    /// for their minute: they take effect from the first minute not yet rated, and a replay must rate at the same points
    /// for them to land there again. Transfers show it most plainly: a late transfer is booked in the minute it was
    /// clamped to; rated at other points, it would fall into a minute the ledger already holds, and be lost.
    /// </summary>
    private static readonly (DateTimeOffset At, string? Events)[] s_stream =
    [
        (At(0, 5), $$"""
            [{{NodeStarted("i-a", At(0, 0))}}, {{NodeStarted("i-b", At(0, 0))}},
             {"type": "workload_started", "time": "{{Time(At(0, 0))}}", "workload": {"id": "job:w", "name": "w", "team": "research"} },
             {{Allocated("job:w", "i-a", 0, At(0, 0))}}, {{Allocated("job:w", "i-a", 1, At(0, 0))}},
             {{Allocated("job:w", "i-a", 2, At(0, 0))}}, {{Allocated("job:w", "i-a", 3, At(0, 0))}}]
            """),
        (At(1, 31), null), // minute 12:00 closes (grace 30 s)
        (At(1, 40), $$"""
            [{{Transfer("job:w", "i-a", 1_000_000_000, At(0, 50))}},
             {"type": "gpu_released", "time": "{{Time(At(0, 40))}}", "workload_id": "job:w", "node_id": "i-a", "gpu_index": 2},
             {"type": "node_stopped", "time": "{{Time(At(0, 45))}}", "node_id": "i-b"}]
            """),
        (At(1, 50), $"[{Allocated("job:w", "i-a", 5, At(1, 20))}, {Transfer("job:w", "i-a", 500_000_000, At(1, 30))}]"),
        (At(2, 31), null),
        (At(2, 40), $$"""
            [{"type": "workload_stopped", "time": "{{Time(At(1, 45))}}", "workload_id": "job:w"},
             {{Transfer("job:w", "i-a", 2_000_000_000, At(1, 55))}}]
            """),
        (At(3, 31), null),
        (At(3, 40), $$"""[{"type": "node_stopped", "time": "{{Time(At(3, 30))}}", "node_id": "i-a"}]"""),
        (At(10, 0), null),
    ];

    [Theory]
    [InlineData(0, false)] // before anything was rated: no checkpoint
    [InlineData(1, false)] // right after a checkpoint
    [InlineData(2, false)] // late inputs logged after the checkpoint, their minute not yet rated
    [InlineData(3, false)]
    [InlineData(5, false)]
    [InlineData(7, false)]
    [InlineData(2, true)]  // the checkpoint was lost: every minute is rated and written again
    [InlineData(5, true)]
    public async Task A_replay_after_a_crash_gives_the_ledger_of_an_uninterrupted_run_with_late_inputs_in_the_same_minutes(int crashAfter, bool loseCheckpoint)
    {
        var ct = TestContext.Current.CancellationToken;
        var uninterrupted = await OpenAsync("uninterrupted");
        foreach (var step in s_stream)
            await StepAsync(uninterrupted, step);
        await uninterrupted.Ingest.RateAsync(s_noon.AddHours(1), ct);
        var expected = await LedgerAsync(uninterrupted.Store);

        // The late transfers landed in the first minute not yet rated when they arrived (12:01, 12:02), the on-time one
        // in its own minute (12:01): $0.09/GB.
        Assert.Equal([(At(1, 0), 0.135m), (At(2, 0), 0.18m)], await NetworkByMinuteAsync(uninterrupted.Store));

        var crashed = await OpenAsync("crashed");
        for (var i = 0; i <= crashAfter; i++)
            await StepAsync(crashed, s_stream[i]);
        // kill -9: nothing disposed or flushed. What the ledger committed stays committed.
        if (loseCheckpoint)
            File.Delete(Path.Combine(crashed.Directory, "wal", "checkpoint"));

        var restarted = await OpenAsync("crashed");
        var replayed = await restarted.Ingest.ReplayAsync(s_stream[crashAfter].At.AddSeconds(5), ct);
        Assert.Equal(s_stream[..(crashAfter + 1)].Count(s => s.Events is not null), replayed);
        for (var i = crashAfter + 1; i < s_stream.Length; i++)
            await StepAsync(restarted, s_stream[i]);
        await restarted.Ingest.RateAsync(s_noon.AddHours(1), ct);

        Assert.Equal(expected, await LedgerAsync(restarted.Store));
    }

    [Fact]
    public async Task A_replay_from_a_checkpoint_rates_the_minutes_before_it_only_to_rebuild_state_and_writes_the_rest()
    {
        var ct = TestContext.Current.CancellationToken;
        var crashed = await OpenAsync("crashed");
        for (var i = 0; i <= 5; i++)
            await StepAsync(crashed, s_stream[i]);
        Assert.Equal(At(2, 0), crashed.Wal.ReadCheckpoint()); // minutes 12:00 and 12:01 are in the ledger
        var before = await LedgerAsync(crashed.Store);

        var writes = new List<CostLine>();
        var restarted = await OpenAsync("crashed", wrap: store => new RecordingStore(store, writes));
        await restarted.Ingest.ReplayAsync(At(3, 31), ct);

        // Minute 12:02 is written (with the late workload stop and transfer at its start); nothing before the checkpoint.
        Assert.NotEmpty(writes);
        Assert.All(writes, l => Assert.Equal(At(2, 0), l.Minute));
        Assert.Contains(writes, l => l.Component == CostComponent.Network && l.Cost == Money.FromDollars(0.18m));
        Assert.Equal(At(3, 0), restarted.Cost.RatedThrough);
        Assert.Equal(At(3, 0), restarted.Wal.ReadCheckpoint());
        // Running totals count what this run wrote, not the minutes the ledger already held.
        Assert.Equal(new Money(writes.Sum(l => l.Cost.Nanos)), restarted.Cost.Total);
        var after = await LedgerAsync(restarted.Store);
        Assert.Equal(before, after.Where(row => !row.StartsWith("12:02 ", StringComparison.Ordinal)));
    }

    // ---- compaction ----------------------------------------------------------------------------------------

    [Fact]
    public async Task Compaction_keeps_the_start_of_a_running_workload_past_the_retention_so_a_restart_still_charges_its_gpus()
    {
        var ct = TestContext.Current.CancellationToken;
        // $72/h: 8 GPUs × $7.20/h ($0.12 a minute each) + $14.40/h compute. Input is kept 10 minutes after it is rated;
        // segments span a minute, so old ones can be freed.
        var options = new IngestOptions { WalRetention = TimeSpan.FromMinutes(10) };
        var walOptions = new WriteAheadLogOptions { SegmentSpan = TimeSpan.FromMinutes(1) };
        var first = await OpenAsync("data", options, walOptions, price: Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        await PostAsync(first, At(0, 5), $"[{NodeStarted("i-a", At(0, 0))}]");
        // The long runner holds GPUs 0–3; a short job holds 4 and 5 until 12:05. Separate requests, as hooks send them.
        await PostAsync(first, At(0, 6), $$"""
            [{"type": "workload_started", "time": "{{Time(At(0, 0))}}", "workload": {"id": "job:long", "team": "research"} },
             {{Allocated("job:long", "i-a", 0, At(0, 0))}}, {{Allocated("job:long", "i-a", 1, At(0, 0))}},
             {{Allocated("job:long", "i-a", 2, At(0, 0))}}, {{Allocated("job:long", "i-a", 3, At(0, 0))}}]
            """);
        await PostAsync(first, At(0, 7), $$"""
            [{"type": "workload_started", "time": "{{Time(At(0, 0))}}", "workload": {"id": "job:short", "team": "infra"} },
             {{Allocated("job:short", "i-a", 4, At(0, 0))}}, {{Allocated("job:short", "i-a", 5, At(0, 0))}}]
            """);
        await PostAsync(first, At(5, 10), $$"""[{"type": "workload_stopped", "time": "{{Time(At(5, 0))}}", "workload_id": "job:short"}]""");

        // Two hours and twenty minutes of rating every five minutes. The engine forgets the short job at 14:00 (it ended
        // more than an hour before); compaction then frees its events with the old segments.
        for (var now = At(1, 31); now <= At(141, 31); now = now.AddMinutes(5))
            await first.Ingest.RateAsync(now, ct);
        Assert.Equal(At(141, 0), first.Wal.ReadCheckpoint());
        Assert.InRange(first.Wal.SegmentCount, 3, 6); // 140 minutes of marks, but only the last 10 minutes' segments and the kept records

        // kill -9, and restart on the same directories.
        var restarted = await OpenAsync("data", options, walOptions, price: Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        var kept = restarted.Wal.ReadAll().Where(r => r.Kind == IngestKind.Events).SelectMany(r => IngestDecoder.Decode(r).Events).ToList();
        Assert.Contains(kept, e => e is NodeStarted { Node.Id: "i-a" });
        Assert.Contains(kept, e => e is WorkloadStarted { Workload.Id: "job:long" });
        Assert.Equal(4, kept.Count(e => e is GpuAllocated { WorkloadId: "job:long" }));
        Assert.DoesNotContain(kept, e => e is WorkloadStarted { Workload.Id: "job:short" } or GpuAllocated { WorkloadId: "job:short" } or WorkloadStopped { WorkloadId: "job:short" });
        Assert.DoesNotContain(restarted.Wal.ReadAll(), r => r.ReceivedAt < At(131, 0) && r.Kind != IngestKind.Events);

        await restarted.Ingest.ReplayAsync(At(141, 40), ct);
        await restarted.Ingest.RateAsync(At(151, 31), ct);

        // After the restart the long runner still pays its 4 GPUs ($0.48 a minute) and half the compute part ($0.12):
        // exactly what it paid before the crash, minute for minute.
        var byWorkload = await CostByWorkloadAndMinuteAsync(restarted.Store, At(131, 0), At(151, 0));
        foreach (var minute in Enumerable.Range(131, 20).Select(m => At(m, 0)))
        {
            Assert.Equal(Money.FromDollars(0.60m), byWorkload.GetValueOrDefault((minute, "job:long")));
            Assert.Equal(Money.FromDollars(0.60m), byWorkload.GetValueOrDefault((minute, "")));
        }
        Assert.DoesNotContain(byWorkload.Keys, k => k.Workload == "job:short");
    }

    // ---- backpressure --------------------------------------------------------------------------------------

    [Fact]
    public async Task A_full_queue_refuses_without_logging_and_accepts_again_once_applied()
    {
        var instance = await OpenAsync("data", new IngestOptions { QueueCapacity = 3 }, runReader: false);
        var two = $"[{NodeStarted("i-a", At(0, 0))}, {NodeStarted("i-b", At(0, 0))}]";

        await PostAsync(instance, At(0, 1), two);
        var record = Record(At(0, 2), two);
        Assert.False(instance.Ingest.TryAccept(record, IngestDecoder.Decode(record))); // 2 queued + 2 > 3
        Assert.Equal(1, instance.Wal.AppendedRecords);
        Assert.Equal(2, instance.Ingest.QueuedItems);
        Assert.Equal(1, instance.Ingest.Stats.BusyRejections(IngestKind.Events));

        Assert.Equal(1, instance.Ingest.ApplyQueued());
        Assert.Equal(0, instance.Ingest.QueuedItems);
        Assert.True(instance.Ingest.TryAccept(record, IngestDecoder.Decode(record)));
        Assert.Equal(2, instance.Wal.AppendedRecords);
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    private static DateTimeOffset At(int minute, int second) => s_noon.AddMinutes(minute).AddSeconds(second);

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string NodeStarted(string id, DateTimeOffset at) => $$"""
        {"type": "node_started", "time": "{{Time(at)}}", "node": {"id": "{{id}}", "provider": "aws", "region": "us-east-1",
         "zone": "us-east-1a", "instance_type": "p4d.24xlarge", "capacity": "on-demand", "gpus": 8, "gpu_model": "A100"} }
        """;

    private static string Allocated(string workload, string node, int gpu, DateTimeOffset at) =>
        $$"""{"type": "gpu_allocated", "time": "{{Time(at)}}", "workload_id": "{{workload}}", "node_id": "{{node}}", "gpu_index": {{gpu}}}""";

    private static string Transfer(string workload, string node, long bytes, DateTimeOffset at) =>
        $$"""{"type": "bytes_transferred", "time": "{{Time(at)}}", "workload_id": "{{workload}}", "node_id": "{{node}}", "kind": "internet", "bytes": {{bytes}}}""";

    private static IngestRecord Record(DateTimeOffset receivedAt, string json) => new(IngestKind.Events, receivedAt, "", Encoding.UTF8.GetBytes(json));

    /// <summary>What <c>POST /api/v1/events</c> does with a valid body: decode, then log and queue.</summary>
    private static Task PostAsync(Instance instance, DateTimeOffset receivedAt, string json)
    {
        var record = Record(receivedAt, json);
        Assert.True(instance.Ingest.TryAccept(record, IngestDecoder.Decode(record)), "the queue refused an input");
        return Task.CompletedTask;
    }

    private static async Task StepAsync(Instance instance, (DateTimeOffset At, string? Events) step)
    {
        if (step.Events is null)
        {
            await instance.Ingest.RateAsync(step.At, TestContext.Current.CancellationToken);
        }
        else
        {
            await PostAsync(instance, step.At, step.Events);
        }
    }

    /// <summary>Every ledger row by minute, resource, workload and component, exact to the nano-dollar.</summary>
    private static async Task<List<string>> LedgerAsync(ICostStore store)
    {
        var rows = await store.QueryCostsAsync(new CostQuery
        {
            From = s_noon.AddHours(-1),
            To = s_noon.AddHours(4),
            By = [CostDimension.Resource, CostDimension.Workload, CostDimension.Component],
            Step = TimeSpan.FromMinutes(1),
        }, TestContext.Current.CancellationToken);
        Assert.NotEmpty(rows);
        return [.. rows.Select(r => $"{r.BucketStart:HH:mm} {string.Join(" ", r.Keys)} {r.Cost.Nanos}").Order(StringComparer.Ordinal)];
    }

    private static async Task<List<(DateTimeOffset Minute, decimal Dollars)>> NetworkByMinuteAsync(ICostStore store)
    {
        var rows = await store.QueryCostsAsync(new CostQuery
        {
            From = s_noon.AddHours(-1),
            To = s_noon.AddHours(4),
            By = [CostDimension.Component],
            Filters = new Dictionary<CostDimension, IReadOnlyList<string>> { [CostDimension.Component] = ["network"] },
            Step = TimeSpan.FromMinutes(1),
        }, TestContext.Current.CancellationToken);
        return [.. rows.Where(r => r.Cost.Nanos != 0).Select(r => (r.BucketStart!.Value, r.Cost.Nanos / 1_000_000_000m)).Order()];
    }

    private static async Task<Dictionary<(DateTimeOffset Minute, string Workload), Money>> CostByWorkloadAndMinuteAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to)
    {
        var rows = await store.QueryCostsAsync(new CostQuery { From = from, To = to, By = [CostDimension.Workload], Step = TimeSpan.FromMinutes(1) }, TestContext.Current.CancellationToken);
        return rows.ToDictionary(r => (r.BucketStart!.Value, r.Keys[0]), r => r.Cost);
    }

    /// <summary>A server's state: ledger, log, rating and ingest pipelines, and the running reader.</summary>
    private sealed class Instance(string directory, DuckDbCostStore store, ICostStore ledger, WriteAheadLog wal, CostPipeline cost, IngestPipeline ingest, CancellationTokenSource stop, Task reader)
    {
        public string Directory { get; } = directory;
        public DuckDbCostStore Store { get; } = store;
        public ICostStore Ledger { get; } = ledger;
        public WriteAheadLog Wal { get; } = wal;
        public CostPipeline Cost { get; } = cost;
        public IngestPipeline Ingest { get; } = ingest;

        public async Task StopAsync()
        {
            await stop.CancelAsync();
            await reader;
            stop.Dispose();
            Ingest.Dispose();
            Cost.Dispose();
            Wal.Dispose();
            await Store.DisposeAsync();
        }
    }

    /// <summary>
    /// Opens the ledger and log under <paramref name="name"/> and starts the reader, as <c>burnrate serve</c> does
    /// (default grace 30 s). A second open of the same name is the restart after a crash of the first.
    /// </summary>
    private async Task<Instance> OpenAsync(string name, IngestOptions? options = null, WriteAheadLogOptions? walOptions = null,
        Func<ICostStore, ICostStore>? wrap = null, InstancePrice? price = null, bool runReader = true)
    {
        var ct = TestContext.Current.CancellationToken;
        var directory = Path.Combine(_dir, name);
        // $21.957642/h, GPUs $1.75524525/h each: lines carry sub-nano-dollar remainders from minute to minute, so a
        // replay that rated the minutes before its checkpoint differently would be off by a nano-dollar somewhere.
        var book = new FakePriceBook();
        book.Add(price ?? Some.Price("p4d.24xlarge", CapacityType.OnDemand, 21.957642m, 1.75524525m, 8));
        var store = await DuckDbCostStore.OpenAsync(Path.Combine(directory, "burnrate.duckdb"), null, _time, ct);
        var ledger = wrap is null ? store : wrap(store);
        var cost = new CostPipeline(new RatingEngine(book, new FakeRateCard()), ledger);
        var wal = WriteAheadLog.Open(Path.Combine(directory, "wal"), walOptions);
        var ingest = new IngestPipeline(cost, new TelemetryMapper(), wal, options);
        var stop = new CancellationTokenSource();
        var instance = new Instance(directory, store, ledger, wal, cost, ingest, stop, runReader ? ingest.RunAsync(stop.Token) : Task.CompletedTask);
        _instances.Add(instance);
        return instance;
    }

    /// <summary>Passes everything to the real store and keeps the ledger lines written.</summary>
    private sealed class RecordingStore(ICostStore inner, List<CostLine> written) : ICostStore
    {
        public Task MigrateAsync(CancellationToken cancellationToken = default) => inner.MigrateAsync(cancellationToken);

        public Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default)
        {
            written.AddRange(lines);
            return inner.WriteAsync(lines, cancellationToken);
        }

        public Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default) => inner.UpsertWorkloadsAsync(workloads, cancellationToken);

        public Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default) => inner.WriteWorkAsync(work, cancellationToken);

        public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default) => inner.QueryCostsAsync(query, cancellationToken);

        public Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default) => inner.GetWorkloadsAsync(ids, cancellationToken);

        public Task<IReadOnlyList<Burnrate.Rating.CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.GetLinesAsync(from, to, cancellationToken);
        public Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default) => inner.GetWorkTotalsAsync(from, to, workloadIds, cancellationToken);

        public Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default) => inner.GetLedgerSpanAsync(cancellationToken);
        public Task WriteBillingAsync(IReadOnlyList<Burnrate.Billing.BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default) => inner.WriteBillingAsync(lines, sourceFile, cancellationToken);
        public Task<IReadOnlyList<Burnrate.Billing.BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.QueryBillingAsync(from, to, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var instance in _instances)
            await instance.StopAsync();
        try
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
