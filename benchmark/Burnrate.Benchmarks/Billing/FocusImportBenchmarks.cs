using System.Globalization;
using BenchmarkDotNet.Attributes;
using Burnrate.Billing;
using Burnrate.Storage.DuckDb;
using DuckDB.NET.Data;

namespace Burnrate.Benchmarks.Billing;

/// <summary>
/// FOCUS import rows/s against the ceiling of DuckDB's own plain <c>read_csv</c> of the same file, in the same run.
/// The file is the real sample (<c>../shared/data/focus/focus_sample.csv</c>, 755-byte rows) repeated to
/// <see cref="Rows"/> rows; it is cached under <c>BURNRATE_BENCH_DIR</c> (default the temp directory).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>DuckDbReadCsv</c> (baseline): DuckDB materializes the file in a table, types sniffed, all columns — what
/// DuckDB alone does with the bytes.</item>
/// <item><c>DuckDbReadCsvAllVarchar</c>: the same with every column read as text (no type sniff): a stricter ceiling
/// (no column converted), and one that reads a file whose typed sniff fails (at 2,000,000 rows of the repeated sample,
/// the sniff types ConsumedQuantity as DOUBLE from its sample and meets the text NULL at line 912,002).</item>
/// <item><c>FocusImportIntoStore</c>: the full import as <c>burnrate reconcile</c> and the upload do it: header
/// validation, one pass inside the store's DuckDB (mapping, typed casts, quirk states), the lines inserted into
/// billing_lines, the quirk report (counts, first rows) and per-provider totals.</item>
/// <item><c>FocusImportThroughReader</c>: the same import through <see cref="FocusReader"/> and
/// <c>WriteBillingAsync</c> batches (the path for a store that cannot import a file itself; before, the only one).</item>
/// </list>
/// </remarks>
[MemoryDiagnoser]
[MedianColumn]
public class FocusImportBenchmarks
{
    private string _path = null!;
    private DuckDbCostStore _store = null!;

    /// <summary>Rows in the file (BURNRATE_BENCH_FOCUS_ROWS; default 200,000).</summary>
    public static IEnumerable<int> RowCounts() =>
        [int.Parse(Environment.GetEnvironmentVariable("BURNRATE_BENCH_FOCUS_ROWS") ?? "200000", CultureInfo.InvariantCulture)];

    [ParamsSource(nameof(RowCounts))]
    public int Rows { get; set; }

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        var sample = Environment.GetEnvironmentVariable("BURNRATE_FOCUS_SAMPLE") ?? FindSample();
        var directory = Environment.GetEnvironmentVariable("BURNRATE_BENCH_DIR") ?? Path.Combine(Path.GetTempPath(), "burnrate-bench");
        Directory.CreateDirectory(directory);
        _path = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"focus-{Rows}.csv"));
        if (File.Exists(_path))
            return;
        await using var connection = new DuckDBConnection("Data Source=:memory:");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        // Repeats the sample's rows in order; the same bytes per row as the original (quoted as DuckDB writes them).
        command.CommandText = string.Create(CultureInfo.InvariantCulture, $"""
            COPY (SELECT s.* FROM range({(Rows + 999) / 1000}) AS r(i), read_csv('{sample}', all_varchar = true, header = true) AS s LIMIT {Rows})
            TO '{_path}' (HEADER, DELIMITER ',')
            """);
        await command.ExecuteNonQueryAsync();
    }

    private static string FindSample()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "..", "shared", "data", "focus", "focus_sample.csv");
            if (File.Exists(Path.Combine(dir.FullName, "Burnrate.slnx")) && File.Exists(candidate))
                return Path.GetFullPath(candidate);
        }
        throw new InvalidOperationException("focus_sample.csv not found; set BURNRATE_FOCUS_SAMPLE");
    }

    [Benchmark(Baseline = true)]
    public Task<long> DuckDbReadCsv() => ReadIntoTableAsync("");

    [Benchmark]
    public Task<long> DuckDbReadCsvAllVarchar() => ReadIntoTableAsync(", all_varchar = true");

    private async Task<long> ReadIntoTableAsync(string options)
    {
        await using var connection = new DuckDBConnection("Data Source=:memory:");
        await connection.OpenAsync();
        using var command = connection.CreateCommand();
        command.CommandText = $"CREATE TABLE t AS SELECT * FROM read_csv('{_path}'{options})";
        await command.ExecuteNonQueryAsync();
        command.CommandText = "SELECT count(*) FROM t";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    // A fresh, empty in-memory store per iteration, opened outside the timing: what is timed is the import itself. It is
    // set up for every method (the baseline does not use it) so that all three run in the same job (one invocation per
    // iteration) and BenchmarkDotNet reports their ratio to the baseline.
    [IterationSetup]
    public void OpenStore() => _store = DuckDbCostStore.OpenAsync(":memory:").GetAwaiter().GetResult();

    [IterationCleanup]
    public void CloseStore() => _store.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark]
    public async Task<long> FocusImportIntoStore()
    {
        var result = await FocusImporter.ImportAsync(_store, _path, "bench");
        return result.RowsImported + result.Quirks.Count;
    }

    [Benchmark]
    public async Task<long> FocusImportThroughReader()
    {
        var result = await FocusImporter.ImportThroughReaderAsync(_store, _path, "bench");
        return result.RowsImported + result.Quirks.Count;
    }
}
