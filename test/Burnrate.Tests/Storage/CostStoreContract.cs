using Burnrate.Attribution;
using Burnrate.Billing;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Storage;

/// <summary>
/// What every <see cref="ICostStore"/> must answer, run against each store (DuckDB, one ClickHouse server, a
/// two-shard ClickHouse cluster). Answers are checked against sums of the raw lines computed here, to the nano-dollar,
/// so two stores that pass give the same answers.
/// </summary>
public abstract partial class CostStoreContract : IAsyncLifetime
{
    private readonly List<ICostStore> _opened = [];

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Opens a new, empty store (each call its own ledger).</summary>
    protected abstract Task<ICostStore> OpenNewAsync();

    /// <summary>Opens the ledger of <paramref name="store"/> again, as a restarted process would (after disposing it).</summary>
    protected abstract Task<ICostStore> ReopenAsync(ICostStore store);

    /// <summary>Removes what <see cref="OpenNewAsync"/> created.</summary>
    protected virtual ValueTask CleanUpAsync() => ValueTask.CompletedTask;

    protected async Task<ICostStore> OpenAsync()
    {
        var store = await OpenNewAsync();
        _opened.Add(store);
        return store;
    }

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _opened)
            await store.DisposeAsync();
        await CleanUpAsync();
        GC.SuppressFinalize(this);
    }

    private static CostQuery ByTeam(DateTimeOffset from, DateTimeOffset to) => new() { From = from, To = to, By = [CostDimension.Team] };

    /// <summary>Everything a reader can see: minute-grain reports by every dimension, workloads, work totals.</summary>
    protected static async Task<List<string>> ObservableAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to)
    {
        var seen = new List<string>();
        var all = Enum.GetValues<CostDimension>();
        seen.AddRange(SomeLines.Canonical(await store.QueryCostsAsync(new CostQuery { From = from, To = to, By = all, Step = TimeSpan.FromMinutes(1) }, Ct)));
        seen.AddRange(SomeLines.Canonical(await store.QueryCostsAsync(new CostQuery { From = from, To = to, By = [CostDimension.Team, CostDimension.Idle] }, Ct)));
        seen.AddRange((await store.GetWorkloadsAsync(cancellationToken: Ct)).Select(w => $"{w.Workload.Id}|{w.Workload.Team}|{w.Started:O}|{w.Ended:O}|{w.EstimatePerHour}"));
        seen.AddRange((await store.GetWorkTotalsAsync(from, to, cancellationToken: Ct)).Select(w => $"{w.WorkloadId}|{w.Metric}|{w.Increase}"));
        return seen;
    }

    [Fact]
    public async Task Work_totals_sum_each_workloads_counters_over_the_minutes_in_range_only()
    {
        var store = await OpenAsync();
        var t0 = SomeLines.Day0;
        await store.WriteWorkAsync(
        [
            new WorkMinute(t0.AddMinutes(-1), "slurm:1", "tokens", 100_000), // before the range
            new WorkMinute(t0, "slurm:1", "tokens", 1000),
            new WorkMinute(t0.AddMinutes(1), "slurm:1", "tokens", 500),
            new WorkMinute(t0.AddMinutes(1), "slurm:1", "steps", 2),
            new WorkMinute(t0.AddMinutes(2), "slurm:1", "tokens", 7), // at the range's end: excluded
            new WorkMinute(t0, "slurm:2", "tokens", 30),
        ], Ct);

        var all = await store.GetWorkTotalsAsync(t0, t0.AddMinutes(2), cancellationToken: Ct);
        Assert.Equal([new WorkTotal("slurm:1", "steps", 2), new WorkTotal("slurm:1", "tokens", 1500), new WorkTotal("slurm:2", "tokens", 30)], all);
        var one = await store.GetWorkTotalsAsync(t0, t0.AddMinutes(2), ["slurm:2"], Ct);
        Assert.Equal([new WorkTotal("slurm:2", "tokens", 30)], one);
        Assert.Empty(await store.GetWorkTotalsAsync(t0, t0.AddMinutes(2), [], Ct));
    }

    [Fact]
    public async Task Written_lines_sum_to_the_nano_dollar_by_team()
    {
        var store = await OpenAsync();
        var t = SomeLines.Day0.AddHours(5);
        await store.WriteAsync(
        [
            SomeLines.Line(t, costNanos: 1_234_567_891, team: "a"),
            SomeLines.Line(t.AddMinutes(1), costNanos: 1, team: "a"),
            SomeLines.Line(t, costNanos: 999_999_999_999, team: "b", gpuIndex: 1),
            SomeLines.Line(t, costNanos: 7, team: "b", workloadId: WorkloadInfo.IdleId, gpuIndex: 2),
        ], Ct);

        var rows = await store.QueryCostsAsync(ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(1)), Ct);

        Assert.Equal(2, rows.Count);
        Assert.Equal(["b"], rows[0].Keys);
        Assert.Equal(999_999_999_999 + 7, rows[0].Cost.Nanos);
        Assert.Equal(7, rows[0].IdleCost.Nanos);
        Assert.Equal(120m, rows[0].GpuSeconds);
        Assert.Equal(["a"], rows[1].Keys);
        Assert.Equal(1_234_567_892, rows[1].Cost.Nanos);
        Assert.Null(rows[0].BucketStart);
    }

    [Fact]
    public async Task Writing_the_same_lines_twice_changes_no_answer()
    {
        var store = await OpenAsync();
        var lines = SomeLines.Random(new Random(7), 400);
        var workload = new WorkloadRecord(new WorkloadInfo("slurm:1", "slurm", "train", Team: "a"), SomeLines.Day0, null, 12.5m);
        await store.WriteAsync(lines, Ct);
        await store.UpsertWorkloadsAsync([workload], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 1000)], Ct);
        var before = await ObservableAsync(store, SomeLines.Day0, SomeLines.Day0.AddDays(3));

        await store.WriteAsync(lines, Ct);
        await store.WriteAsync(lines.Take(100).ToList(), Ct);
        await store.UpsertWorkloadsAsync([workload], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 1000)], Ct);

        Assert.Equal(before, await ObservableAsync(store, SomeLines.Day0, SomeLines.Day0.AddDays(3)));
        var total = (await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(3) }, Ct)).Single();
        Assert.Equal(lines.Sum(l => l.Cost.Nanos), total.Cost.Nanos);
    }

    [Fact]
    public async Task Re_rating_a_minute_differently_leaves_no_stale_row_of_that_resource()
    {
        var store = await OpenAsync();
        var t = SomeLines.Day0.AddHours(3);
        // First rating: the whole node-minute idle ($0.60). A late allocation re-rates it: the job holds it all.
        await store.WriteAsync([SomeLines.Line(t, costNanos: 600_000_000, workloadId: WorkloadInfo.IdleId)], Ct);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 600_000_000, workloadId: "slurm:7")], Ct);

        foreach (var to in new[] { t.AddMinutes(1), t.AddHours(1), t.AddDays(1) })
        {
            var rows = await store.QueryCostsAsync(new CostQuery { From = t, To = to, By = [CostDimension.Workload] }, Ct);
            var row = Assert.Single(rows);
            Assert.Equal("slurm:7", row.Keys[0]);
            Assert.Equal(600_000_000, row.Cost.Nanos);
            Assert.Equal(0, row.IdleCost.Nanos);
        }
    }

    [Fact]
    public async Task Lines_of_a_range_come_back_whole_as_last_written_in_key_order()
    {
        var store = await OpenAsync();
        var t = SomeLines.Day0.AddHours(5);
        var spot = SomeLines.Line(t, costNanos: 123_456_789, resourceId: "node-b", gpuIndex: 3, capacity: CapacityType.Spot, quantity: 12.345678m, segmentStart: 20, seconds: 40,
            team: "vision", project: "", user: "", provider: "gcp", region: "europe-west4", gpuModel: "L4") with
        { SharePpm = 250_000, PriceSource = "spot 'feed'\ttab" };
        var compute = SomeLines.Line(t, costNanos: 7, resourceId: "node-b", component: CostComponent.Compute, workloadId: WorkloadInfo.IdleId);
        var before = SomeLines.Line(t.AddMinutes(-1), resourceId: "node-a");
        var after = SomeLines.Line(t.AddMinutes(2), resourceId: "node-a"); // at the range's end: excluded
        await store.WriteAsync([before, SomeLines.Line(t, costNanos: 5, resourceId: "node-a", workloadId: WorkloadInfo.IdleId), compute, spot, after], Ct);
        // node-a's minute t is re-rated: the job took it; its idle row is gone.
        var rerated = SomeLines.Line(t, costNanos: 9, resourceId: "node-a", workloadId: "slurm:9");
        var next = SomeLines.Line(t.AddMinutes(1), resourceId: "node-a", component: CostComponent.Storage);
        await store.WriteAsync([rerated, next], Ct);

        var lines = await store.GetLinesAsync(t, t.AddMinutes(2), Ct);

        Assert.Equal([rerated, compute, spot, next], lines);
        Assert.Empty(await store.GetLinesAsync(t, t, Ct));
        Assert.Equal([before], await store.GetLinesAsync(t.AddMinutes(-1), t, Ct));
    }

    [Fact]
    public async Task Re_rating_one_resource_keeps_the_other_resources_of_that_minute()
    {
        var store = await OpenAsync();
        var t = SomeLines.Day0.AddHours(3);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 100, resourceId: "node-a"), SomeLines.Line(t, costNanos: 200, resourceId: "node-b")], Ct);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 150, resourceId: "node-a")], Ct);

        var rows = await store.QueryCostsAsync(new CostQuery { From = t, To = t.AddHours(1) }, Ct);

        Assert.Equal(350, Assert.Single(rows).Cost.Nanos);
    }

    [Fact]
    public async Task Rewriting_a_minute_with_another_amount_replaces_it_and_the_rollups_follow()
    {
        var store = await OpenAsync();
        var t = SomeLines.Day0.AddHours(3).AddMinutes(17);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 500), SomeLines.Line(t.AddMinutes(1), costNanos: 300)], Ct);

        await store.WriteAsync([SomeLines.Line(t, costNanos: 2_000)], Ct);

        Assert.Equal(2_300, Assert.Single(await store.QueryCostsAsync(ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(1)), Ct)).Cost.Nanos);
        Assert.Equal(2_300, Assert.Single(await store.QueryCostsAsync(ByTeam(SomeLines.Day0.AddHours(3), SomeLines.Day0.AddHours(4)), Ct)).Cost.Nanos);
        Assert.Equal(2_000, Assert.Single(await store.QueryCostsAsync(ByTeam(t, t.AddMinutes(1)), Ct)).Cost.Nanos);
    }

    [Fact]
    public async Task Within_one_batch_the_last_line_with_a_key_wins()
    {
        var store = await OpenAsync();
        await store.WriteAsync([SomeLines.Line(SomeLines.Day0, costNanos: 1), SomeLines.Line(SomeLines.Day0, costNanos: 5)], Ct);

        var row = Assert.Single(await store.QueryCostsAsync(ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(1)), Ct));
        Assert.Equal(5, row.Cost.Nanos);
    }

    [Fact]
    public async Task Everything_written_is_there_after_a_restart()
    {
        var lines = SomeLines.Random(new Random(11), 300);
        var workload = new WorkloadRecord(
            new WorkloadInfo("k8s:ml/vllm", "kubernetes", "vllm", "bob", "inference", "chatbot", "llama-3-8b", new Dictionary<string, string> { ["app"] = "vllm" }),
            SomeLines.Day0.AddTicks(1_234_560), SomeLines.Day0.AddHours(2), 3.25m);
        var query = new CostQuery { From = SomeLines.Day0.AddMinutes(13), To = SomeLines.Day0.AddDays(2).AddMinutes(-7), By = [CostDimension.Team, CostDimension.Gpu] };
        var store = await OpenNewAsync();
        await store.WriteAsync(lines, Ct);
        await store.UpsertWorkloadsAsync([workload], Ct);
        var before = await store.QueryCostsAsync(query, Ct);

        var reopened = await ReopenAsync(store);
        _opened.Add(reopened);

        Assert.Equal(SomeLines.Canonical(before), SomeLines.Canonical(await reopened.QueryCostsAsync(query, Ct)));
        var stored = Assert.Single(await reopened.GetWorkloadsAsync(cancellationToken: Ct));
        Assert.Equal(workload.Workload.Id, stored.Workload.Id);
        Assert.Equal("llama-3-8b", stored.Workload.Model);
        Assert.Equal("vllm", stored.Workload.Labels!["app"]);
        Assert.Equal(workload.Started, stored.Started);
        Assert.Equal(workload.Ended, stored.Ended);
        Assert.Equal(3.25m, stored.EstimatePerHour);
        var span = await reopened.GetLedgerSpanAsync(Ct);
        Assert.Equal(lines.Min(l => l.Minute), span!.Value.First);
        Assert.Equal(lines.Max(l => l.Minute), span.Value.Last);
        // Writes after the restart still replace what was written before it.
        await reopened.WriteAsync(lines, Ct);
        Assert.Equal(SomeLines.Canonical(before), SomeLines.Canonical(await reopened.QueryCostsAsync(query, Ct)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Reports_through_the_rollups_equal_a_brute_force_sum_of_the_raw_lines(int seed)
    {
        var random = new Random(seed);
        var lines = SomeLines.Random(random, 3_000, days: 3);
        var store = await OpenAsync();
        // Several batches, out of order, so rollups are built piecemeal; each (minute, resource) stays whole in one
        // batch, as the rating engine writes it.
        foreach (var batch in lines.GroupBy(l => (l.Minute, l.ResourceId)).OrderBy(_ => random.Next()).Chunk(700))
            await store.WriteAsync([.. batch.SelectMany(g => g)], Ct);
        var dimensions = Enum.GetValues<CostDimension>();
        TimeSpan?[] steps = [null, null, null, TimeSpan.FromMinutes(7), TimeSpan.FromHours(1), TimeSpan.FromHours(5), TimeSpan.FromDays(1)];

        for (var q = 0; q < 30; q++)
        {
            var query = RandomQuery(random, dimensions, steps);

            var rows = await store.QueryCostsAsync(query, Ct);

            Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, query)), SomeLines.Canonical(rows));
            Assert.True(rows.Zip(rows.Skip(1)).All(p => p.First.Cost >= p.Second.Cost), "rows are sorted by cost, descending");
        }
    }

    protected static CostQuery RandomQuery(Random random, CostDimension[] dimensions, TimeSpan?[] steps)
    {
        var from = RandomTime(random);
        var to = RandomTime(random);
        if (to < from)
            (from, to) = (to, from);
        var by = dimensions.OrderBy(_ => random.Next()).Take(random.Next(0, 3)).ToArray();
        var filters = new Dictionary<CostDimension, IReadOnlyList<string>>();
        if (random.Next(3) == 0)
            filters[CostDimension.Team] = ["inference", "vision"];
        if (random.Next(4) == 0)
            filters[CostDimension.Idle] = ["false"];
        return new CostQuery { From = from, To = to, By = by, Filters = filters, Step = steps[random.Next(steps.Length)] };
    }

    // Mostly awkward edges (odd minutes and seconds), sometimes whole hours and days.
    private static DateTimeOffset RandomTime(Random random) => random.Next(4) switch
    {
        0 => SomeLines.Day0.AddDays(random.Next(-1, 4)),
        1 => SomeLines.Day0.AddHours(random.Next(-2, 75)),
        2 => SomeLines.Day0.AddSeconds(random.Next(-3600, 4 * 86_400)),
        _ => SomeLines.Day0.AddMinutes(random.Next(-60, 3 * 1440 + 60)),
    };

    [Fact]
    public async Task Filters_and_several_dimensions_group_and_restrict_the_report()
    {
        var store = await OpenAsync();
        var t = SomeLines.Day0.AddHours(1);
        await store.WriteAsync(
        [
            SomeLines.Line(t, costNanos: 100, team: "a", provider: "aws", capacity: Burnrate.Pricing.CapacityType.Spot),
            SomeLines.Line(t, costNanos: 200, team: "a", provider: "gcp", gpuIndex: 1),
            SomeLines.Line(t, costNanos: 400, team: "b", provider: "aws", gpuIndex: 2, component: CostComponent.Compute),
            SomeLines.Line(t, costNanos: 800, team: "c", provider: "aws", gpuIndex: 3),
            SomeLines.Line(t, costNanos: 1600, team: "it's \\ odd", provider: "aws", gpuIndex: 4),
        ], Ct);
        var query = new CostQuery
        {
            From = SomeLines.Day0,
            To = SomeLines.Day0.AddDays(1),
            By = [CostDimension.Team, CostDimension.Cloud, CostDimension.Component, CostDimension.Capacity],
            Filters = new Dictionary<CostDimension, IReadOnlyList<string>> { [CostDimension.Team] = ["a", "b", "it's \\ odd"] },
        };

        var rows = await store.QueryCostsAsync(query, Ct);

        Assert.Equal(
            ["it's \\ odd,aws,gpu,on_demand|1600", "b,aws,compute,on_demand|400", "a,gcp,gpu,on_demand|200", "a,aws,gpu,spot|100"],
            rows.Select(r => string.Join(',', r.Keys) + "|" + r.Cost.Nanos));
        Assert.Empty(await store.QueryCostsAsync(query with { Filters = new Dictionary<CostDimension, IReadOnlyList<string>> { [CostDimension.Team] = [] } }, Ct));
    }

    [Fact]
    public async Task A_step_buckets_the_report_from_the_start_of_the_range()
    {
        var store = await OpenAsync();
        var lines = Enumerable.Range(0, 3 * 24).Select(h => SomeLines.Line(SomeLines.Day0.AddHours(h).AddMinutes(30), costNanos: 10)).ToList();
        await store.WriteAsync(lines, Ct);

        var daily = await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(3), Step = TimeSpan.FromDays(1) }, Ct);
        var sixHourly = await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0.AddHours(1), To = SomeLines.Day0.AddHours(13), Step = TimeSpan.FromHours(6) }, Ct);

        Assert.Equal([240L, 240L, 240L], daily.Select(r => r.Cost.Nanos));
        Assert.Equal(
            [SomeLines.Day0, SomeLines.Day0.AddDays(1), SomeLines.Day0.AddDays(2)],
            daily.Select(r => r.BucketStart!.Value).Order());
        Assert.Equal([60L, 60L], sixHourly.Select(r => r.Cost.Nanos));
        Assert.Equal([SomeLines.Day0.AddHours(1), SomeLines.Day0.AddHours(7)], sixHourly.Select(r => r.BucketStart!.Value).Order());
    }

    [Fact]
    public async Task A_step_that_is_not_whole_minutes_is_rejected()
    {
        var store = await OpenAsync();
        var query = new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(1), Step = TimeSpan.FromSeconds(90) };

        await Assert.ThrowsAsync<ArgumentException>(() => store.QueryCostsAsync(query, Ct));
    }

    [Fact]
    public async Task An_empty_store_has_no_span_and_reports_nothing()
    {
        var store = await OpenAsync();

        Assert.Null(await store.GetLedgerSpanAsync(Ct));
        Assert.Empty(await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(90) }, Ct));
        Assert.Empty(await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(90), By = [CostDimension.Team], Step = TimeSpan.FromDays(1) }, Ct));
        Assert.Empty(await store.GetWorkloadsAsync(cancellationToken: Ct));
        Assert.Empty(await store.QueryBillingAsync(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue.AddYears(-1), Ct));
    }

    [Fact]
    public async Task Work_counters_and_workloads_replace_by_key()
    {
        var store = await OpenAsync();
        var info = new WorkloadInfo("slurm:1", "slurm", "train");
        await store.UpsertWorkloadsAsync([new WorkloadRecord(info, SomeLines.Day0.AddMinutes(5), null, 4m)], Ct);
        await store.UpsertWorkloadsAsync([new WorkloadRecord(info with { Team = "vision" }, SomeLines.Day0, SomeLines.Day0.AddHours(1), null)], Ct);
        // A replay after a restart sees the workload later than it began: the earliest start stays.
        await store.UpsertWorkloadsAsync([new WorkloadRecord(info with { Team = "vision" }, SomeLines.Day0.AddMinutes(9), SomeLines.Day0.AddHours(1), null)], Ct);
        await store.UpsertWorkloadsAsync([new WorkloadRecord(new WorkloadInfo("slurm:2", "slurm", "eval"), SomeLines.Day0, null, null)], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 5)], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 9)], Ct);

        var one = Assert.Single(await store.GetWorkloadsAsync(["slurm:1"], Ct));
        Assert.Equal("vision", one.Workload.Team);
        Assert.Equal(SomeLines.Day0, one.Started);
        Assert.Equal(SomeLines.Day0.AddHours(1), one.Ended);
        Assert.Null(one.EstimatePerHour);
        Assert.Equal(["slurm:1", "slurm:2"], (await store.GetWorkloadsAsync(cancellationToken: Ct)).Select(w => w.Workload.Id));
        Assert.Equal([new WorkTotal("slurm:1", "tokens", 9)], await store.GetWorkTotalsAsync(SomeLines.Day0, SomeLines.Day0.AddDays(1), cancellationToken: Ct));
    }

    [Fact]
    public async Task Concurrent_writes_and_reads_lose_nothing()
    {
        var store = await OpenAsync();
        var lines = SomeLines.Random(new Random(5), 1_000);
        var writers = lines.GroupBy(l => (l.Minute, l.ResourceId)).Chunk(150).Select(batch => Task.Run(() => store.WriteAsync([.. batch.SelectMany(g => g)], Ct), Ct));
        var readers = Enumerable.Range(0, 10).Select(_ => Task.Run(() => store.QueryCostsAsync(ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(3)), Ct), Ct));

        await Task.WhenAll([.. writers, .. readers]);

        var total = (await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(3) }, Ct)).Single().Cost.Nanos;
        Assert.Equal(lines.Sum(l => l.Cost.Nanos), total);
    }

    [Fact]
    public async Task Bill_lines_are_kept_exactly_and_a_re_import_replaces_them()
    {
        var store = await OpenAsync();
        var start = new DateTimeOffset(2024, 9, 18, 22, 0, 0, TimeSpan.Zero);
        BillingLine Bill(long row, decimal billed, string? zone = null, decimal? list = null) => new(
            row, "AWS", "acct-1", null, "i-0abc", null, "instance", "us-west-2", zone, "Amazon EC2", "Compute", "sku-1", "Usage",
            "Standard", "p5.48xlarge it's \"quoted\"\ttabbed", start.AddHours(row), start.AddHours(row + 1), billed, billed * 0.5m, list, null,
            2.000000000000001m, "Hours", "USD", row == 2 ? """{"team":"ml"}""" : null);
        await store.WriteBillingAsync([Bill(1, 0.00000080000m), Bill(2, 98.123456789012m, "us-west-2a", 100m), Bill(3, 5m)], "bill.csv", Ct);
        await store.WriteBillingAsync([Bill(1, 1.5m)], "other.csv", Ct);
        // The same file again, with row 3 corrected: replaced, not added.
        await store.WriteBillingAsync([Bill(3, 7.25m)], "bill.csv", Ct);

        var lines = await store.QueryBillingAsync(start, start.AddHours(3), Ct);

        Assert.Equal([1L, 1L, 2L], lines.Select(l => l.SourceRow));
        Assert.Equal([0.0000008m, 1.5m, 98.123456789012m], lines.Select(l => l.BilledCost));
        var two = lines[2];
        Assert.Equal(49.061728394506m, two.EffectiveCost);
        Assert.Equal("us-west-2a", two.AvailabilityZone);
        Assert.Null(two.SubAccountId);
        Assert.Equal(100m, two.ListCost);
        Assert.Null(two.ContractedCost);
        Assert.Equal(2.000000000000001m, two.ConsumedQuantity);
        Assert.Equal("p5.48xlarge it's \"quoted\"\ttabbed", two.ChargeDescription);
        Assert.Equal("""{"team":"ml"}""", two.Tags);
        Assert.Equal(start.AddHours(2), two.ChargePeriodStart);
        Assert.Equal(start.AddHours(3), two.ChargePeriodEnd);
        Assert.Equal(7.25m, Assert.Single(await store.QueryBillingAsync(start.AddHours(3), start.AddHours(4), Ct)).BilledCost);
    }

    [Fact]
    public async Task FOCUS_file_import_gives_the_same_lines_on_every_store()
    {
        var store = await OpenAsync();
        var sample = FocusTestPaths.Sample;
        // The store's own import (validation, mapping, quirks, write), against the lines the reader makes of the file.
        var result = await FocusImporter.ImportAsync(store, sample, "focus_sample.csv", cancellationToken: Ct);
        // A second import of the same source replaces its lines.
        var again = await FocusImporter.ImportAsync(store, sample, "focus_sample.csv", cancellationToken: Ct);
        var stored = await store.QueryBillingAsync(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue.AddYears(-1), Ct);

        await using var reader = await FocusReader.OpenAsync(sample, Ct);
        var lines = new List<BillingLine>();
        await foreach (var batch in reader.ReadBatchesAsync(cancellationToken: Ct))
            lines.AddRange(batch);
        Assert.IsAssignableFrom<IFocusImportStore>(store);
        Assert.Equal(1000, result.RowsImported);
        Assert.Equal(result.Providers, again.Providers);
        Assert.Equal(lines, stored.OrderBy(l => l.SourceRow));
        Assert.Equal(reader.Quirks.Select(q => (q.Kind, q.Column, q.Count, string.Join(",", q.FirstRows))),
            result.Quirks.Select(q => (q.Kind, q.Column, q.Count, string.Join(",", q.FirstRows))));
    }

    [Fact]
    public async Task The_audit_log_keeps_entries_oldest_first_and_the_newest_within_a_limit()
    {
        var store = await OpenAsync();
        var audit = Assert.IsAssignableFrom<IActionAuditLog>(store);
        var t = SomeLines.Day0.AddTicks(123_450);
        for (var i = 0; i < 5; i++)
            await audit.AppendAuditAsync(new ActionAuditEntry(t.AddMinutes(i), "runaway", "fp" + i, "kill 42", "firing\nline two", i % 2 == 0 ? "dry_run" : "failed", i % 2 == 0 ? null : 1, "out\t" + i), Ct);

        var all = await audit.GetAuditAsync(cancellationToken: Ct);
        var newest = await audit.GetAuditAsync(limit: 2, cancellationToken: Ct);
        var since = await audit.GetAuditAsync(t.AddMinutes(3), cancellationToken: Ct);

        Assert.Equal(["fp0", "fp1", "fp2", "fp3", "fp4"], all.Select(e => e.Fingerprint));
        Assert.Equal(["fp3", "fp4"], newest.Select(e => e.Fingerprint));
        Assert.Equal(["fp3", "fp4"], since.Select(e => e.Fingerprint));
        Assert.Equal(t, all[0].At);
        Assert.Null(all[0].Code);
        Assert.Equal(1, all[1].Code);
        Assert.Equal("firing\nline two", all[1].Why);
        Assert.Equal("out\t1", all[1].Detail);
    }
    [Fact]
    public async Task Calibration_is_kept_exactly_a_newer_factor_replaces_its_key_and_it_survives_a_restart()
    {
        var store = await OpenNewAsync();
        var kept = Assert.IsAssignableFrom<ICalibrationStore>(store);
        var day = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero);
        var learned = day.AddDays(7).AddTicks(1_234_560);
        CalibrationFactor Factor(string type, CapacityType capacity, decimal factor, CalibratedUsage usage = CalibratedUsage.Compute) =>
            new("aws", usage, type, capacity, factor, 1234.567890123456m, 1234.567890123456m * factor, day, day.AddDays(7), learned);
        // 2/3 has more decimals than a store keeps: each keeps 18, rounded.
        await kept.SaveCalibrationAsync(
            [Factor("p4d.24xlarge", CapacityType.OnDemand, 0.92m), Factor("p5.48xlarge", CapacityType.Spot, 2m / 3m), Factor("", CapacityType.OnDemand, 0.9m, CalibratedUsage.Network)],
            [new ReconciledPeriod("aws", day, day.AddDays(7), 1000.000000000001m, 920m, learned), new ReconciledPeriod("azure", day, day.AddDays(1), 5m, 4.5m, learned)], Ct);
        // A later reconciliation of the same week learns p4d again and re-reconciles aws's period.
        await kept.SaveCalibrationAsync([Factor("p4d.24xlarge", CapacityType.OnDemand, 0.915m)],
            [new ReconciledPeriod("aws", day, day.AddDays(7), 1000m, 915m, learned.AddHours(1))], Ct);

        store = await ReopenAsync(store);
        _opened.Add(store);
        kept = (ICalibrationStore)store;
        var factors = await kept.GetCalibrationAsync(Ct);
        var periods = await kept.GetReconciledPeriodsAsync(Ct);

        Assert.Equal(
            ["aws|compute|p4d.24xlarge|on_demand|0.915", "aws|compute|p5.48xlarge|spot|0.666666666666666667", "aws|network||on_demand|0.9"],
            factors.Select(f => $"{f.Provider}|{(f.Usage == CalibratedUsage.Network ? "network" : "compute")}|{f.InstanceType}|{f.Capacity.ToName()}|{f.Factor}"));
        var spot = factors[1];
        Assert.Equal(1234.567890123456m, spot.Estimated);
        Assert.Equal(decimal.Round(1234.567890123456m * (2m / 3m), 12, MidpointRounding.AwayFromZero), spot.Effective);
        Assert.Equal((day, day.AddDays(7), learned), (spot.From, spot.To, spot.LearnedAt));
        Assert.Equal(
            [new ReconciledPeriod("aws", day, day.AddDays(7), 1000m, 915m, learned.AddHours(1)), new ReconciledPeriod("azure", day, day.AddDays(1), 5m, 4.5m, learned)],
            periods);
    }

    [Fact]
    public async Task Ruler_heartbeats_the_furthest_checkpoint_and_minute_digests_are_kept_and_survive_a_restart()
    {
        var store = await OpenNewAsync();
        var ruler = Assert.IsAssignableFrom<IRulerStateStore>(store);
        var t0 = new DateTimeOffset(2026, 11, 2, 12, 0, 0, TimeSpan.Zero);
        Assert.Empty(await ruler.GetHeartbeatsAsync(Ct));
        Assert.Null(await ruler.GetRulerCheckpointAsync(Ct));

        // Each ruler's newest beat replaces its older ones; order by start, then id.
        await ruler.BeatAsync(new RulerHeartbeat("ruler-b", t0, t0.AddSeconds(5)), Ct);
        await ruler.BeatAsync(new RulerHeartbeat("ruler-a", t0, t0.AddSeconds(5)), Ct);
        await ruler.BeatAsync(new RulerHeartbeat("ruler-c", t0.AddMinutes(-1), t0.AddSeconds(1)), Ct);
        await ruler.BeatAsync(new RulerHeartbeat("ruler-a", t0, t0.AddSeconds(10.5)), Ct);

        // The checkpoint that evaluated furthest is kept: a late save with an older cursor does not move it back.
        await ruler.SaveRulerCheckpointAsync(new RulerCheckpoint(t0.AddMinutes(2), "[\"two\"]", "ruler-a", t0.AddMinutes(2).AddSeconds(50)), Ct);
        await ruler.SaveRulerCheckpointAsync(new RulerCheckpoint(t0.AddMinutes(1), "[\"one\"]", "ruler-b", t0.AddMinutes(3)), Ct);
        Assert.Equal("[\"two\"]", (await ruler.GetRulerCheckpointAsync(Ct))!.Alerts);
        await ruler.SaveRulerCheckpointAsync(new RulerCheckpoint(t0.AddMinutes(3), "[\"three\ttab\"]", "ruler-b", t0.AddMinutes(3).AddSeconds(50)), Ct);

        // Digests: rows and cost per minute of the ledger as it stands (a re-rated minute counts as last written).
        await store.WriteAsync([SomeLines.Line(t0, costNanos: 100), SomeLines.Line(t0, costNanos: 200, resourceId: "node-b")], Ct);
        await store.WriteAsync([SomeLines.Line(t0.AddMinutes(1), costNanos: 7)], Ct);
        await store.WriteAsync([SomeLines.Line(t0, costNanos: 150, resourceId: "node-b"), SomeLines.Line(t0, costNanos: 1, resourceId: "node-b", gpuIndex: 1)], Ct);
        await store.WriteAsync([SomeLines.Line(t0.AddMinutes(5), costNanos: 9)], Ct);

        store = await ReopenAsync(store);
        _opened.Add(store);
        ruler = (IRulerStateStore)store;
        Assert.Equal(
            ["ruler-c|" + t0.AddMinutes(-1).ToString("O") + "|" + t0.AddSeconds(1).ToString("O"),
             "ruler-a|" + t0.ToString("O") + "|" + t0.AddSeconds(10.5).ToString("O"),
             "ruler-b|" + t0.ToString("O") + "|" + t0.AddSeconds(5).ToString("O")],
            (await ruler.GetHeartbeatsAsync(Ct)).Select(b => $"{b.RulerId}|{b.StartedAt:O}|{b.LastBeat:O}"));
        Assert.Equal(new RulerCheckpoint(t0.AddMinutes(3), "[\"three\ttab\"]", "ruler-b", t0.AddMinutes(3).AddSeconds(50)), await ruler.GetRulerCheckpointAsync(Ct));
        Assert.Equal(
            [new MinuteDigest(t0, 3, 251), new MinuteDigest(t0.AddMinutes(1), 1, 7)],
            await ruler.GetMinuteDigestsAsync(t0, t0.AddMinutes(5), Ct));
    }
}
