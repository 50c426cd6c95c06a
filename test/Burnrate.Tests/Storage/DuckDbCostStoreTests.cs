using Burnrate.Attribution;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Tests.Storage;

public sealed class DuckDbCostStoreTests : IDisposable
{
    private static readonly string[] s_tables = ["cost_minutes", "cost_hourly", "cost_daily", "workloads", "work_minutes"];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "burnrate-store-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    private string DatabaseFile => Path.Combine(_directory, "burnrate.duckdb");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<DuckDbCostStore> OpenInMemoryAsync() => DuckDbCostStore.OpenAsync(":memory:", ct: Ct);

    private static CostQuery ByTeam(DateTimeOffset from, DateTimeOffset to) => new() { From = from, To = to, By = [CostDimension.Team] };

    private static async Task<Dictionary<string, IReadOnlyList<string>>> SnapshotAsync(DuckDbCostStore store)
    {
        var snapshot = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var table in s_tables)
            snapshot[table] = await store.DumpTableAsync(table, Ct);
        return snapshot;
    }

    [Fact]
    public async Task Work_totals_sum_each_workloads_counters_over_the_minutes_in_range_only()
    {
        await using var store = await OpenInMemoryAsync();
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
    public async Task Reads_running_beside_writes_see_whole_batches_only()
    {
        // Reads use their own connections (not the write gate): each must still see every write whole or not at all.
        var path = DatabaseFile;
        await using var store = await DuckDbCostStore.OpenAsync(path, ct: Ct);
        const int Minutes = 40, Nodes = 50;
        const long PerLine = 1_000_003;
        var t0 = SomeLines.Day0;
        var writer = Task.Run(async () =>
        {
            for (var m = 0; m < Minutes; m++)
            {
                var lines = Enumerable.Range(0, Nodes).Select(n => SomeLines.Line(t0.AddMinutes(m), PerLine, resourceId: $"node-{n}")).ToList();
                await store.WriteAsync(lines, Ct);
            }
        }, Ct);
        var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            while (!writer.IsCompleted)
            {
                var rows = await store.QueryCostsAsync(ByTeam(t0, t0.AddDays(1)), Ct);
                var total = rows.Sum(r => r.Cost.Nanos);
                Assert.Equal(0, total % (PerLine * Nodes));
            }
        }, Ct)).ToList();
        await writer;
        await Task.WhenAll(readers);

        var final = await store.QueryCostsAsync(ByTeam(t0, t0.AddDays(1)), Ct);
        Assert.Equal(PerLine * Nodes * Minutes, final.Sum(r => r.Cost.Nanos));
    }

    [Fact]
    public async Task Written_lines_sum_to_the_nano_dollar_by_team()
    {
        await using var store = await OpenInMemoryAsync();
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
    public async Task Writing_the_same_lines_twice_changes_no_table_and_no_report()
    {
        await using var store = await OpenInMemoryAsync();
        var lines = SomeLines.Random(new Random(7), 400);
        await store.WriteAsync(lines, Ct);
        await store.UpsertWorkloadsAsync([new WorkloadRecord(new WorkloadInfo("slurm:1", "slurm", "train", Team: "a"), SomeLines.Day0, null, 12.5m)], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 1000)], Ct);
        var before = await SnapshotAsync(store);
        var query = new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(3), By = [CostDimension.Team, CostDimension.Idle] };
        var reportBefore = await store.QueryCostsAsync(query, Ct);

        await store.WriteAsync(lines, Ct);
        await store.WriteAsync(lines.Take(100).ToList(), Ct);
        await store.UpsertWorkloadsAsync([new WorkloadRecord(new WorkloadInfo("slurm:1", "slurm", "train", Team: "a"), SomeLines.Day0, null, 12.5m)], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 1000)], Ct);

        var after = await SnapshotAsync(store);
        foreach (var table in s_tables)
            Assert.Equal(before[table], after[table]);
        Assert.Equal(reportBefore, await store.QueryCostsAsync(query, Ct), ReportComparer.Instance);
        Assert.Equal(400, before["cost_minutes"].Count);
    }

    [Fact]
    public async Task Re_rating_a_minute_differently_leaves_no_stale_row_of_that_resource()
    {
        await using var store = await OpenInMemoryAsync();
        var t = SomeLines.Day0.AddHours(3);
        // First rating: the whole node-minute idle ($0.60). A late allocation re-rates it: the job holds it all.
        await store.WriteAsync([SomeLines.Line(t, costNanos: 600_000_000, workloadId: WorkloadInfo.IdleId)], Ct);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 600_000_000, workloadId: "slurm:7")], Ct);

        var rows = await store.QueryCostsAsync(new CostQuery { From = t, To = t.AddDays(1), By = [CostDimension.Workload] }, Ct);

        var row = Assert.Single(rows);
        Assert.Equal("slurm:7", row.Keys[0]);
        Assert.Equal(600_000_000, row.Cost.Nanos);
    }

    [Fact]
    public async Task Re_rating_one_resource_keeps_the_other_resources_of_that_minute()
    {
        await using var store = await OpenInMemoryAsync();
        var t = SomeLines.Day0.AddHours(3);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 100, resourceId: "node-a"), SomeLines.Line(t, costNanos: 200, resourceId: "node-b")], Ct);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 150, resourceId: "node-a")], Ct);

        var rows = await store.QueryCostsAsync(new CostQuery { From = t, To = t.AddHours(1) }, Ct);

        Assert.Equal(350, Assert.Single(rows).Cost.Nanos);
    }

    [Fact]
    public async Task Rewriting_a_minute_with_another_amount_replaces_it_and_the_rollups_follow()
    {
        await using var store = await OpenInMemoryAsync();
        var t = SomeLines.Day0.AddHours(3).AddMinutes(17);
        await store.WriteAsync([SomeLines.Line(t, costNanos: 500), SomeLines.Line(t.AddMinutes(1), costNanos: 300)], Ct);

        await store.WriteAsync([SomeLines.Line(t, costNanos: 2_000)], Ct);

        var dayQuery = ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(1));
        var hourQuery = ByTeam(SomeLines.Day0.AddHours(3), SomeLines.Day0.AddHours(4));
        var minuteQuery = ByTeam(t, t.AddMinutes(1));
        Assert.Equal(2_300, Assert.Single(await store.QueryCostsAsync(dayQuery, Ct)).Cost.Nanos);
        Assert.Equal(2_300, Assert.Single(await store.QueryCostsAsync(hourQuery, Ct)).Cost.Nanos);
        Assert.Equal(2_000, Assert.Single(await store.QueryCostsAsync(minuteQuery, Ct)).Cost.Nanos);
        Assert.Equal(2, (await store.DumpTableAsync("cost_minutes", Ct)).Count);
        Assert.Single(await store.DumpTableAsync("cost_hourly", Ct));
        Assert.Single(await store.DumpTableAsync("cost_daily", Ct));
    }

    [Fact]
    public async Task Within_one_batch_the_last_line_with_a_key_wins()
    {
        await using var store = await OpenInMemoryAsync();
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
            SomeLines.Day0, SomeLines.Day0.AddHours(2), 3.25m);
        var query = new CostQuery { From = SomeLines.Day0.AddMinutes(13), To = SomeLines.Day0.AddDays(2).AddMinutes(-7), By = [CostDimension.Team, CostDimension.Gpu] };
        IReadOnlyList<CostReportRow> before;
        await using (var store = await DuckDbCostStore.OpenAsync(DatabaseFile, ct: Ct))
        {
            await store.WriteAsync(lines, Ct);
            await store.UpsertWorkloadsAsync([workload], Ct);
            before = await store.QueryCostsAsync(query, Ct);
        }

        await using var reopened = await DuckDbCostStore.OpenAsync(DatabaseFile, ct: Ct);

        Assert.Equal(before, await reopened.QueryCostsAsync(query, Ct), ReportComparer.Instance);
        var stored = Assert.Single(await reopened.GetWorkloadsAsync(cancellationToken: Ct));
        Assert.Equal(workload.Workload.Id, stored.Workload.Id);
        Assert.Equal("llama-3-8b", stored.Workload.Model);
        Assert.Equal("vllm", stored.Workload.Labels!["app"]);
        Assert.Equal(workload.Ended, stored.Ended);
        Assert.Equal(3.25m, stored.EstimatePerHour);
        var span = await reopened.GetLedgerSpanAsync(Ct);
        Assert.Equal(lines.Min(l => l.Minute), span!.Value.First);
        Assert.Equal(lines.Max(l => l.Minute), span.Value.Last);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Reports_through_the_rollups_equal_a_brute_force_sum_of_the_raw_lines(int seed)
    {
        var random = new Random(seed);
        var lines = SomeLines.Random(random, 3_000, days: 3);
        await using var store = await OpenInMemoryAsync();
        // Several batches, out of order, so rollups are built piecemeal; each (minute, resource) stays whole in one
        // batch, as the rating engine writes it.
        foreach (var batch in lines.GroupBy(l => (l.Minute, l.ResourceId)).OrderBy(_ => random.Next()).Chunk(200))
            await store.WriteAsync([.. batch.SelectMany(g => g)], Ct);
        var dimensions = Enum.GetValues<CostDimension>();
        TimeSpan?[] steps = [null, null, null, TimeSpan.FromMinutes(7), TimeSpan.FromHours(1), TimeSpan.FromHours(5), TimeSpan.FromDays(1)];

        for (var q = 0; q < 60; q++)
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
            var query = new CostQuery { From = from, To = to, By = by, Filters = filters, Step = steps[random.Next(steps.Length)] };

            var rows = await store.QueryCostsAsync(query, Ct);

            Assert.Equal(SomeLines.Canonical(SomeLines.BruteForce(lines, query)), SomeLines.Canonical(rows));
            Assert.True(rows.Zip(rows.Skip(1)).All(p => p.First.Cost >= p.Second.Cost), "rows are sorted by cost, descending");
        }
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
        await using var store = await OpenInMemoryAsync();
        var t = SomeLines.Day0.AddHours(1);
        await store.WriteAsync(
        [
            SomeLines.Line(t, costNanos: 100, team: "a", provider: "aws", capacity: Burnrate.Pricing.CapacityType.Spot),
            SomeLines.Line(t, costNanos: 200, team: "a", provider: "gcp", gpuIndex: 1),
            SomeLines.Line(t, costNanos: 400, team: "b", provider: "aws", gpuIndex: 2, component: CostComponent.Compute),
            SomeLines.Line(t, costNanos: 800, team: "c", provider: "aws", gpuIndex: 3),
        ], Ct);
        var query = new CostQuery
        {
            From = SomeLines.Day0,
            To = SomeLines.Day0.AddDays(1),
            By = [CostDimension.Team, CostDimension.Cloud, CostDimension.Component, CostDimension.Capacity],
            Filters = new Dictionary<CostDimension, IReadOnlyList<string>> { [CostDimension.Team] = ["a", "b"] },
        };

        var rows = await store.QueryCostsAsync(query, Ct);

        Assert.Equal(
            ["b,aws,compute,on_demand|400", "a,gcp,gpu,on_demand|200", "a,aws,gpu,spot|100"],
            rows.Select(r => string.Join(',', r.Keys) + "|" + r.Cost.Nanos));
    }

    [Fact]
    public async Task A_step_buckets_the_report_from_the_start_of_the_range()
    {
        await using var store = await OpenInMemoryAsync();
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
        await using var store = await OpenInMemoryAsync();
        var query = new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(1), Step = TimeSpan.FromSeconds(90) };

        await Assert.ThrowsAsync<ArgumentException>(() => store.QueryCostsAsync(query, Ct));
    }

    [Fact]
    public async Task An_empty_store_has_no_span_and_reports_nothing()
    {
        await using var store = await OpenInMemoryAsync();

        Assert.Null(await store.GetLedgerSpanAsync(Ct));
        Assert.Empty(await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(90) }, Ct));
        Assert.Empty(await store.GetWorkloadsAsync(cancellationToken: Ct));
    }

    [Fact]
    public async Task Work_counters_and_workloads_replace_by_key()
    {
        await using var store = await OpenInMemoryAsync();
        var info = new WorkloadInfo("slurm:1", "slurm", "train");
        await store.UpsertWorkloadsAsync([new WorkloadRecord(info, SomeLines.Day0, null, null)], Ct);
        await store.UpsertWorkloadsAsync([new WorkloadRecord(info with { Team = "vision" }, SomeLines.Day0, SomeLines.Day0.AddHours(1), null)], Ct);
        await store.UpsertWorkloadsAsync([new WorkloadRecord(new WorkloadInfo("slurm:2", "slurm", "eval"), SomeLines.Day0, null, null)], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 5)], Ct);
        await store.WriteWorkAsync([new WorkMinute(SomeLines.Day0, "slurm:1", "tokens", 9)], Ct);

        var one = Assert.Single(await store.GetWorkloadsAsync(["slurm:1"], Ct));
        Assert.Equal("vision", one.Workload.Team);
        Assert.Equal(SomeLines.Day0.AddHours(1), one.Ended);
        Assert.Equal(2, (await store.GetWorkloadsAsync(cancellationToken: Ct)).Count);
        var work = Assert.Single(await store.DumpTableAsync("work_minutes", Ct));
        Assert.EndsWith("|9", work, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_database_is_migrated_to_the_current_schema()
    {
        await using var store = await DuckDbCostStore.OpenAsync(DatabaseFile, ct: Ct);

        Assert.Equal(DuckDbSchema.CurrentVersion, await store.GetSchemaVersionAsync(Ct));
        await store.MigrateAsync(Ct);
        Assert.Equal((long)DuckDbSchema.Migrations.Count, Convert.ToInt64(await store.ScalarAsync("SELECT COUNT(*) FROM schema_version", Ct), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_database_at_an_older_version_is_upgraded_and_keeps_its_ledger()
    {
        await using (var v1 = await DuckDbCostStore.OpenAsync(DatabaseFile, [DuckDbSchema.Migrations[0]], logger: null, Ct))
            await v1.WriteAsync([SomeLines.Line(SomeLines.Day0, costNanos: 42)], Ct);
        SchemaMigration[] withV2 = [DuckDbSchema.Migrations[0], new SchemaMigration(2, "test: budgets", ["CREATE TABLE budgets (team VARCHAR PRIMARY KEY, monthly_nanos BIGINT NOT NULL)"])];

        await using var v2 = await DuckDbCostStore.OpenAsync(DatabaseFile, withV2, logger: null, Ct);

        Assert.Equal(2, await v2.GetSchemaVersionAsync(Ct));
        Assert.Equal(0L, Convert.ToInt64(await v2.ScalarAsync("SELECT COUNT(*) FROM budgets", Ct), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(42, Assert.Single(await v2.QueryCostsAsync(ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(1)), Ct)).Cost.Nanos);
    }

    [Fact]
    public async Task A_database_from_a_newer_build_is_refused_with_a_clear_error()
    {
        await using (var store = await DuckDbCostStore.OpenAsync(DatabaseFile, ct: Ct))
            await store.ExecuteAsync("INSERT INTO schema_version VALUES (99, 'from the future', TIMESTAMP '2030-01-01 00:00:00')", Ct);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => DuckDbCostStore.OpenAsync(DatabaseFile, ct: Ct));

        Assert.Contains("schema version 99", error.Message, StringComparison.Ordinal);
        Assert.Contains("newer Burnrate", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_writes_and_reads_lose_nothing()
    {
        await using var store = await OpenInMemoryAsync();
        var lines = SomeLines.Random(new Random(5), 1_000);
        var writers = lines.GroupBy(l => (l.Minute, l.ResourceId)).Chunk(30).Select(batch => Task.Run(() => store.WriteAsync([.. batch.SelectMany(g => g)], Ct), Ct));
        var readers = Enumerable.Range(0, 10).Select(_ => Task.Run(() => store.QueryCostsAsync(ByTeam(SomeLines.Day0, SomeLines.Day0.AddDays(3)), Ct), Ct));

        await Task.WhenAll([.. writers, .. readers]);

        var total = (await store.QueryCostsAsync(new CostQuery { From = SomeLines.Day0, To = SomeLines.Day0.AddDays(3) }, Ct)).Single().Cost.Nanos;
        Assert.Equal(lines.Sum(l => l.Cost.Nanos), total);
    }

    private sealed class ReportComparer : IEqualityComparer<CostReportRow>
    {
        public static readonly ReportComparer Instance = new();

        public bool Equals(CostReportRow? x, CostReportRow? y) =>
            x is not null && y is not null && x.Keys.SequenceEqual(y.Keys) && x.BucketStart == y.BucketStart &&
            x.Cost == y.Cost && x.IdleCost == y.IdleCost && x.GpuSeconds == y.GpuSeconds;

        public int GetHashCode(CostReportRow obj) => obj.Cost.GetHashCode();
    }
}
