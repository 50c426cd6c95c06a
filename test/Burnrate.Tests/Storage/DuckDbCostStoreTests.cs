using Burnrate.Attribution;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Tests.Storage;

/// <summary>
/// What only the embedded store has: its tables' contents after writes and its schema migrations. What every store
/// must answer is in <see cref="CostStoreContract"/> (run on DuckDB by <see cref="DuckDbStoreContractTests"/>).
/// </summary>
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

    private sealed class ReportComparer : IEqualityComparer<CostReportRow>
    {
        public static readonly ReportComparer Instance = new();

        public bool Equals(CostReportRow? x, CostReportRow? y) =>
            x is not null && y is not null && x.Keys.SequenceEqual(y.Keys) && x.BucketStart == y.BucketStart &&
            x.Cost == y.Cost && x.IdleCost == y.IdleCost && x.GpuSeconds == y.GpuSeconds;

        public int GetHashCode(CostReportRow obj) => obj.Cost.GetHashCode();
    }
}
