using System.Diagnostics;
using System.Globalization;
using Burnrate.Benchmarks.Storage;
using Burnrate.Billing;
using Burnrate.Pricing.Terms;
using Burnrate.Storage.DuckDb;
using DuckDB.NET.Data;

namespace Burnrate.Benchmarks.Billing;

/// <summary>
/// <c>reconcile</c>: a month of a fleet's ledger (<see cref="LedgerGenerator"/>, one row per GPU per hour) and a
/// matching FOCUS bill (one line per node-hour), then the time of importing the bill, <see cref="Reconciler"/>, and
/// reconciling with calibration learning (<see cref="Calibrations.ReconcileAsync"/>), each repeated.
/// </summary>
/// <remarks>
/// Options: <c>--gpus N</c> (default 2000, 8 a node), <c>--days N</c> (30), <c>--runs N</c> (3), <c>--data DIR</c>
/// (default <c>$BURNRATE_BENCH_DIR/reconcile-GPUSxDAYS</c>; the ledger and bill are cached there),
/// <c>--regenerate</c>.
/// </remarks>
internal static class ReconcileBenchmark
{
    private static readonly DateTimeOffset s_start = new(2026, 9, 1, 0, 0, 0, TimeSpan.Zero);

    public static async Task<int> RunAsync(string[] args)
    {
        var gpus = Option(args, "--gpus", 2000);
        var days = Option(args, "--days", 30);
        var runs = Option(args, "--runs", 3);
        var root = Environment.GetEnvironmentVariable("BURNRATE_BENCH_DIR") ?? Path.Combine(Path.GetTempPath(), "burnrate-bench");
        var directory = args.SkipWhile(a => a != "--data").Skip(1).FirstOrDefault()
            ?? Path.Combine(root, string.Create(CultureInfo.InvariantCulture, $"reconcile-{gpus}x{days}"));
        if (args.Contains("--regenerate") && Directory.Exists(directory))
            Directory.Delete(directory, recursive: true);
        Directory.CreateDirectory(directory);
        var ledger = Path.Combine(directory, "ledger.duckdb");
        var bill = Path.Combine(directory, "bill.csv");
        var end = s_start.AddDays(days);
        if (!File.Exists(bill))
        {
            File.Delete(ledger);
            await LedgerGenerator.GenerateAsync(ledger, gpus, days, s_start, minuteDays: 0);
            await WriteBillAsync(ledger, bill);
        }
        var lines = await FocusReader.CountRowsAsync(bill);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// {gpus} GPUs ({gpus / 8} nodes) x {days} days, ledger by the hour; bill {lines:N0} lines ({new FileInfo(bill).Length / 1e6:F0} MB); {Environment.ProcessorCount} cores, load average {LoadAverage()}"));

        // Each run starts from the same ledger: a copy, so the previous run's bill lines and calibration are gone.
        var work = Path.Combine(directory, "work.duckdb");
        var times = new List<(double Import, double Reconcile, double Learn)>();
        var reads = new List<(double DuckDb, double Reader)>();
        for (var run = 0; run < runs; run++)
        {
            // The same bill read by DuckDB alone (the import's ceiling) and by the importer's reader without storing.
            var read = Stopwatch.StartNew();
            await using (var duck = new DuckDBConnection("Data Source=:memory:"))
            {
                await duck.OpenAsync();
                using var command = duck.CreateCommand();
                command.CommandText = $"CREATE TABLE t AS SELECT * FROM read_csv('{bill.Replace("'", "''", StringComparison.Ordinal)}')";
                await command.ExecuteNonQueryAsync();
            }
            var duckDb = read.Elapsed.TotalSeconds;
            read.Restart();
            await using (var reader = await FocusReader.OpenAsync(bill))
            {
                await foreach (var _ in reader.ReadBatchesAsync(FocusImporter.BatchSize))
                {
                }
            }
            reads.Add((duckDb, read.Elapsed.TotalSeconds));

            File.Delete(work);
            File.Delete(work + ".wal");
            File.Copy(ledger, work);
            await using var store = await DuckDbCostStore.OpenAsync(work);
            var clock = Stopwatch.StartNew();
            var imported = await FocusImporter.ImportAsync(store, bill, "bill.csv");
            var import = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var report = await Reconciler.ReconcileAsync(store, s_start, end);
            var reconcile = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var (_, learned, _) = await Calibrations.ReconcileAsync(store, s_start, end, Calibration.None, TimeProvider.System, learn: true);
            var learn = clock.Elapsed.TotalSeconds;
            times.Add((import, reconcile, learn));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"run {run + 1}: DuckDB read_csv {reads[^1].DuckDb:F2} s, FocusReader {reads[^1].Reader:F2} s, import {import:F2} s ({imported.RowsImported:N0} lines), reconcile {reconcile:F2} s ({report.MatchedResourceDays:N0} resource-days matched, {report.UnmatchedBill.Sum(u => u.Count)} bill / {report.UnmatchedLedger.Sum(u => u.Count)} ledger unmatched), reconcile + learn {learn:F2} s ({learned?.Learned.Count ?? 0} factors); load average {LoadAverage()}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"median of {runs}: DuckDB read_csv {Median(reads.Select(t => t.DuckDb)):F2} s, FocusReader {Median(reads.Select(t => t.Reader)):F2} s, import {Median(times.Select(t => t.Import)):F2} s, reconcile {Median(times.Select(t => t.Reconcile)):F2} s, reconcile + learn {Median(times.Select(t => t.Learn)):F2} s"));
        File.Delete(work);
        File.Delete(work + ".wal");
        return 0;
    }

    // One line per node-hour: the node's ledger cost for the hour as ListCost, EffectiveCost 3 % under it (a
    // discount the calibration learns), BilledCost the same; the team as a tag.
    private static async Task WriteBillAsync(string ledger, string bill)
    {
        await using var store = await DuckDbCostStore.OpenAsync(ledger);
        await store.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $$"""
            COPY (
                SELECT NULL AS AvailabilityZone,
                       printf('%d.%09d', effective // 1000000000, effective % 1000000000) AS BilledCost,
                       '123456789012' AS BillingAccountId, 'Bench' AS BillingAccountName, 'USD' AS BillingCurrency,
                       strftime(date_trunc('month', hour) + INTERVAL 1 MONTH, '%Y-%m-%d %H:%M:%S') AS BillingPeriodEnd,
                       strftime(date_trunc('month', hour), '%Y-%m-%d %H:%M:%S') AS BillingPeriodStart,
                       'Usage' AS ChargeCategory, NULL AS ChargeClass, instance_type || ' ' || capacity AS ChargeDescription,
                       'Usage-Based' AS ChargeFrequency,
                       strftime(hour + INTERVAL 1 HOUR, '%Y-%m-%d %H:%M:%S') AS ChargePeriodEnd,
                       strftime(hour, '%Y-%m-%d %H:%M:%S') AS ChargePeriodStart,
                       1 AS ConsumedQuantity, 'Hour' AS ConsumedUnit,
                       printf('%d.%09d', effective // 1000000000, effective % 1000000000) AS ContractedCost,
                       printf('%d.%09d', effective // 1000000000, effective % 1000000000) AS EffectiveCost,
                       'Bench Cloud' AS InvoiceIssuerName,
                       printf('%d.%09d', list // 1000000000, list % 1000000000) AS ListCost,
                       CASE WHEN capacity = 'spot' THEN 'Dynamic' ELSE 'Standard' END AS PricingCategory,
                       1 AS PricingQuantity, 'Hour' AS PricingUnit,
                       CASE provider WHEN 'aws' THEN 'AWS' WHEN 'gcp' THEN 'Google Cloud' ELSE 'Microsoft' END AS ProviderName,
                       'Bench Cloud' AS PublisherName,
                       region AS RegionId, region AS RegionName,
                       resource_id AS ResourceId, resource_id AS ResourceName, 'Virtual Machine' AS ResourceType,
                       'Compute' AS ServiceCategory, 'Compute' AS ServiceName,
                       instance_type AS SkuId, NULL AS SkuPriceId, 'sub-1' AS SubAccountId, 'Bench' AS SubAccountName,
                       '{"team":"' || team || '"}' AS Tags
                FROM (
                    SELECT date_trunc('hour', minute) AS hour, provider, resource_id, any_value(instance_type) AS instance_type,
                           any_value(capacity) AS capacity, any_value(region) AS region, any_value(team) AS team,
                           CAST(sum(cost_nanos) AS BIGINT) AS list, CAST(sum(cost_nanos) AS BIGINT) * 97 // 100 AS effective
                    FROM cost_minutes
                    GROUP BY ALL)
                ORDER BY hour, provider, resource_id
            ) TO '{{bill.Replace("'", "''", StringComparison.Ordinal)}}' (HEADER, DELIMITER ',')
            """));
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";
}
