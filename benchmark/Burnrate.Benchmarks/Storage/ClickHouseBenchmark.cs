using System.Diagnostics;
using System.Globalization;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.ClickHouse;
using Burnrate.Storage.DuckDb;
using DuckDB.NET.Data;

namespace Burnrate.Benchmarks.Storage;

/// <summary>
/// <c>Burnrate.Benchmarks clickhouse ...</c> (benchmark/clickhouse.sh): the ClickHouse store's writer against a plain
/// RowBinary insert of the same rows, and <c>report --by team</c> over 90 days × 2,000 GPUs on ClickHouse and on
/// DuckDB side by side (the same ledger, copied row by row from the DuckDB file the API benchmark's generator makes).
/// </summary>
internal static class ClickHouseBenchmark
{
    private static readonly DateTimeOffset s_start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static async Task<int> RunAsync(string[] args)
    {
        string Arg(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var urls = Arg("--urls", "http://127.0.0.1:18123").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(u => new Uri(u)).ToList();
        var cluster = Arg("--cluster", "");
        var label = Arg("--label", cluster.Length == 0 ? "1 server" : $"{urls.Count} servers, cluster {cluster}");
        var gpus = int.Parse(Arg("--gpus", "2000"), CultureInfo.InvariantCulture);
        var days = int.Parse(Arg("--days", "90"), CultureInfo.InvariantCulture);
        var writeMinutes = int.Parse(Arg("--write-minutes", "30"), CultureInfo.InvariantCulture);
        var runs = int.Parse(Arg("--runs", "15"), CultureInfo.InvariantCulture);
        var duckPath = Arg("--duckdb", Path.Combine(Path.GetTempPath(), "burnrate-bench", $"ledger-{gpus}gpus-{days}days-hourly.duckdb"));
        var only = Arg("--only", "all");
        var options = new ClickHouseOptions { Urls = urls, Cluster = cluster.Length == 0 ? null : cluster, Database = Arg("--database", "bench"), Timeout = TimeSpan.FromMinutes(10) };

        Console.WriteLine($"# ClickHouse store benchmark ({label}; {gpus} GPUs)");
        if (only is "all" or "write")
            await WriterAsync(options with { Database = options.Database + "_write" }, gpus, writeMinutes);
        if (only is "all" or "query")
            await QueryAsync(options, duckPath, gpus, days, runs);
        return 0;
    }

    // One GPU row per GPU per minute, 8 GPUs per node, 12 teams: the shape the rating engine writes every minute.
    private static List<CostLine> Minute(DateTimeOffset minute, int gpus)
    {
        var lines = new List<CostLine>(gpus);
        for (var g = 0; g < gpus; g++)
        {
            var node = g / 8;
            lines.Add(new CostLine
            {
                Minute = minute,
                SegmentStart = 0,
                Seconds = 60,
                ResourceId = "node-" + node.ToString(CultureInfo.InvariantCulture),
                GpuIndex = g % 8,
                WorkloadId = "job:" + ((node * 31) % 600).ToString(CultureInfo.InvariantCulture),
                Component = CostComponent.Gpu,
                Rate = new HourlyRate(3_960_000_000),
                SharePpm = 1_000_000,
                Quantity = 60m,
                Cost = new Money(66_000_000),
                PriceSource = "bench",
                Provider = "aws",
                Region = "us-east-1",
                InstanceType = "p5.48xlarge",
                Capacity = CapacityType.OnDemand,
                GpuModel = "H100",
                Cluster = "cluster-" + (node % 4).ToString(CultureInfo.InvariantCulture),
                Orchestrator = "slurm",
                Team = "team-" + (node % 12).ToString(CultureInfo.InvariantCulture),
                Project = "project-" + (node % 40).ToString(CultureInfo.InvariantCulture),
                User = "user-" + (node % 60).ToString(CultureInfo.InvariantCulture),
            });
        }
        return lines;
    }

    private static async Task WriterAsync(ClickHouseOptions options, int gpus, int minutes)
    {
        await DropAsync(options);
        await using var store = await ClickHouseCostStore.OpenAsync(options);
        var batches = Enumerable.Range(0, minutes).Select(m => Minute(s_start.AddMinutes(m), gpus)).ToList();
        var rows = (long)gpus * minutes;

        // 1. WriteAsync a minute at a time, as `serve` writes: insert + hourly and daily rollups of the touched pairs.
        var watch = Stopwatch.StartNew();
        foreach (var batch in batches)
            await store.WriteAsync(batch);
        var perMinute = watch.Elapsed;
        // 2. The same minutes again in one batch (a catch-up after an outage): replaces, so the totals stay.
        watch.Restart();
        await store.WriteAsync([.. batches.SelectMany(b => b)]);
        var oneBatch = watch.Elapsed;
        // 3. Baseline: the same rows as plain RowBinary inserts, no rollups (next hour, so nothing is replaced).
        var later = batches.Select(b => b.Select(l => l with { Minute = l.Minute.AddHours(1) }).ToList()).ToList();
        watch.Restart();
        await store.InsertMinutesOnlyAsync([.. later.SelectMany(b => b)]);
        var plain = watch.Elapsed;
        var total = (await store.QueryCostsAsync(new CostQuery { From = s_start, To = s_start.AddHours(1) })).Single().Cost.Nanos;
        var expected = batches.Sum(b => b.Sum(l => l.Cost.Nanos));
        Console.WriteLine();
        Console.WriteLine($"## Writes ({rows:N0} ledger rows: {gpus:N0} GPUs x {minutes} minutes)");
        Console.WriteLine();
        Console.WriteLine("| how | time | rows/s |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine(Row("`WriteAsync`, one batch per minute (what `serve` does)", perMinute, rows));
        Console.WriteLine(Row($"`WriteAsync`, all {minutes} minutes in one batch (catch-up after an outage)", oneBatch, rows));
        Console.WriteLine(Row("plain RowBinary insert, one request, no rollups (baseline)", plain, rows));
        Console.WriteLine();
        Console.WriteLine($"Check: the hour's total after writing it twice is {total:N0} nano-dollars, expected {expected:N0}: {(total == expected ? "equal" : "DIFFERENT")}.");
        await DropAsync(options);
    }

    private static string Row(string what, TimeSpan time, long rows) =>
        string.Create(CultureInfo.InvariantCulture, $"| {what} | {time.TotalSeconds:F2} s | {rows / time.TotalSeconds:N0} |");

    private static async Task QueryAsync(ClickHouseOptions options, string duckPath, int gpus, int days, int runs)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(duckPath)!);
        if (!File.Exists(duckPath + ".done"))
        {
            File.Delete(duckPath);
            // Every day but the last by the hour (same rollup rows, a sixtieth of the minute rows); the last by the minute.
            var report = await LedgerGenerator.GenerateAsync(duckPath, gpus, days, s_start, minuteDays: 1);
            await File.WriteAllTextAsync(duckPath + ".done", report);
        }
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"## Report by team, {days} days"));
        Console.WriteLine();
        Console.WriteLine("Ledger: " + await File.ReadAllTextAsync(duckPath + ".done"));

        await using var clickHouse = await ClickHouseCostStore.OpenAsync(options);
        var loaded = await clickHouse.QueryRowsAsync($"SELECT count() FROM {options.Database}.cost_minutes");
        var copy = TimeSpan.Zero;
        var rebuild = TimeSpan.Zero;
        if (loaded[0][0] == "0")
        {
            var watch = Stopwatch.StartNew();
            await CopyAsync(duckPath, clickHouse);
            copy = watch.Elapsed;
            watch.Restart();
            await clickHouse.RebuildRollupsAsync(s_start, s_start.AddDays(days));
            rebuild = watch.Elapsed;
            loaded = await clickHouse.QueryRowsAsync($"SELECT count() FROM {options.Database}.cost_minutes");
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ClickHouse: {long.Parse(loaded[0][0]!, CultureInfo.InvariantCulture):N0} minute rows{(copy > TimeSpan.Zero ? $", copied from DuckDB in {copy.TotalSeconds:F1} s, rollups built in {rebuild.TotalSeconds:F1} s" : " (loaded by an earlier run)")}."));

        await using var duck = await DuckDbCostStore.OpenAsync(duckPath);
        var whole = new CostQuery { From = s_start, To = s_start.AddDays(days), By = [CostDimension.Team] };
        var weekFrom = s_start.AddDays(days - 8).AddHours(13).AddMinutes(17);
        var week = new CostQuery { From = weekFrom, To = weekFrom.AddDays(7).AddMinutes(29), By = [CostDimension.Team] };
        var daily = new CostQuery { From = s_start, To = s_start.AddDays(days), By = [CostDimension.Team], Step = TimeSpan.FromDays(1) };
        Console.WriteLine();
        Console.WriteLine("| query (by team) | DuckDB median | ClickHouse median | same answer |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, query) in new[] { ($"whole {days} days", whole), ("7 days with partial-hour edges", week), ($"{days} days by day (step 1d)", daily) })
        {
            var (duckTime, duckRows) = await TimeAsync(() => duck.QueryCostsAsync(query), runs);
            var (chTime, chRows) = await TimeAsync(() => clickHouse.QueryCostsAsync(query), runs);
            var same = SomeText(duckRows).SequenceEqual(SomeText(chRows));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {duckTime:F1} ms | {chTime:F1} ms | {(same ? "yes, to the nano-dollar" : "NO")} |"));
        }
    }

    private static IEnumerable<string> SomeText(IReadOnlyList<CostReportRow> rows) =>
        rows.Select(r => $"{string.Join(',', r.Keys)}|{r.BucketStart:O}|{r.Cost.Nanos}|{r.IdleCost.Nanos}|{r.GpuSeconds:0.000000}");

    private static async Task<(double MedianMs, IReadOnlyList<CostReportRow> Rows)> TimeAsync(Func<Task<IReadOnlyList<CostReportRow>>> query, int runs)
    {
        var rows = await query(); // warm-up
        var times = new List<double>(runs);
        for (var i = 0; i < runs; i++)
        {
            var watch = Stopwatch.StartNew();
            rows = await query();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return (times[times.Count / 2], rows);
    }

    // Reads the DuckDB ledger in chunks and inserts it as the ClickHouse store's rows (one version per chunk).
    private static async Task CopyAsync(string duckPath, ClickHouseCostStore target)
    {
        await using var connection = new DuckDBConnection($"Data Source={duckPath};ACCESS_MODE=READ_ONLY");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT minute, segment_start, seconds, gpu_index, provider, region, instance_type, capacity, gpu_model, cluster,
                   orchestrator, team, project, user_name, workload_id, component, resource_id, rate_nanos_per_hour,
                   share_ppm, quantity, cost_nanos, price_source
            FROM cost_minutes
            """;
        using var reader = await command.ExecuteReaderAsync();
        var chunk = new List<CostLine>(500_000);
        while (await reader.ReadAsync())
        {
            chunk.Add(new CostLine
            {
                Minute = new DateTimeOffset(DateTime.SpecifyKind(reader.GetDateTime(0), DateTimeKind.Utc)),
                SegmentStart = reader.GetInt32(1),
                Seconds = reader.GetInt32(2),
                GpuIndex = reader.GetInt32(3),
                Provider = reader.GetString(4),
                Region = reader.GetString(5),
                InstanceType = reader.GetString(6),
                Capacity = reader.GetString(7) == "spot" ? CapacityType.Spot : CapacityType.OnDemand,
                GpuModel = reader.GetString(8),
                Cluster = reader.GetString(9),
                Orchestrator = reader.GetString(10),
                Team = reader.GetString(11),
                Project = reader.GetString(12),
                User = reader.GetString(13),
                WorkloadId = reader.GetString(14),
                Component = CostComponent.Gpu,
                ResourceId = reader.GetString(16),
                Rate = new HourlyRate(reader.GetInt64(17)),
                SharePpm = reader.GetInt32(18),
                Quantity = reader.GetDecimal(19),
                Cost = new Money(reader.GetInt64(20)),
                PriceSource = reader.GetString(21),
            });
            if (chunk.Count == 500_000)
            {
                await target.InsertMinutesOnlyAsync(chunk);
                chunk.Clear();
            }
        }
        if (chunk.Count > 0)
            await target.InsertMinutesOnlyAsync(chunk);
    }

    private static async Task DropAsync(ClickHouseOptions options)
    {
        using var http = new HttpClient();
        foreach (var url in options.Urls)
            await http.PostAsync(url, new StringContent($"DROP DATABASE IF EXISTS {options.Database}"));
    }
}
