using Burnrate.Billing;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Support;
using DuckDB.NET.Data;

namespace Burnrate.Tests.Billing;

public sealed class FocusImportTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "burnrate-focus-" + Guid.NewGuid().ToString("N"));

    public FocusImportTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(List<BillingLine> Lines, FocusReader Reader)> ReadAllAsync(string path, int batchSize = 100)
    {
        var reader = await FocusReader.OpenAsync(path, Ct);
        var lines = new List<BillingLine>();
        await foreach (var batch in reader.ReadBatchesAsync(batchSize, Ct))
        {
            Assert.InRange(batch.Count, 1, batchSize);
            lines.AddRange(batch);
        }
        return (lines, reader);
    }

    // Runs one statement in a fresh in-memory DuckDB: how the tests write their bent files.
    private static async Task DuckDbAsync(string sql)
    {
        await using var connection = new DuckDBConnection("Data Source=:memory:");
        await connection.OpenAsync(Ct);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static FocusQuirk Quirk(FocusReader reader, string kind, string column) =>
        Assert.Single(reader.Quirks, q => q.Kind == kind && q.Column == column);

    [Fact]
    public async Task The_real_sample_imports_all_1000_rows_by_provider()
    {
        var (lines, reader) = await ReadAllAsync(FocusTestPaths.Sample);
        await using var _ = reader;

        Assert.Equal(FocusVersion.V1_0, reader.Version);
        Assert.Equal(1000, reader.RowsRead);
        Assert.Equal(0, reader.RowsSkipped);
        Assert.Equal(1000, lines.Count);
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), lines.Select(l => l.SourceRow));
        Assert.Equal(942, reader.RowsByProvider["AWS"]);
        Assert.Equal(51, reader.RowsByProvider["Microsoft"]);
        Assert.Equal(7, reader.RowsByProvider["Oracle"]);

        // Row 1 as written: exact decimals, UTC periods.
        var first = lines[0];
        Assert.Equal(0.00000080000m, first.BilledCost);
        Assert.Equal("Usage", first.ChargeCategory);
        Assert.Equal(new DateTimeOffset(2024, 9, 18, 22, 0, 0, TimeSpan.Zero), first.ChargePeriodStart);
        Assert.Equal("us-west-2", first.RegionId);
        Assert.Null(first.AvailabilityZone);
        Assert.Null(first.Tags);
        Assert.Equal(2.000000000000000m, first.ConsumedQuantity);
        // Row 2's tags are JSON.
        Assert.Equal("BrightLensMatrix", lines[1].Tag("application"));
    }

    [Fact]
    public async Task The_literal_NULL_strings_of_the_sample_are_read_as_null_and_counted_per_column()
    {
        var (lines, reader) = await ReadAllAsync(FocusTestPaths.Sample);
        await using var _ = reader;

        var nulls = reader.Quirks.Where(q => q.Kind == "null-string").ToDictionary(q => q.Column, q => q.Count);
        Assert.Equal(1000, nulls["ChargeClass"]);
        Assert.Equal(893, nulls["AvailabilityZone"]);
        Assert.Equal(289, nulls["Tags"]);
        Assert.Equal(75, nulls["ResourceId"]);
        Assert.Equal(7, nulls["ContractedCost"]);
        Assert.Equal(7, nulls["RegionId"]);
        Assert.All(reader.Quirks.Where(q => q.Kind == "null-string"), q => Assert.Equal(QuirkAction.Fixed, q.Action));
        Assert.DoesNotContain(lines, l => l.ResourceId == "NULL" || l.Tags == "NULL" || l.AvailabilityZone == "NULL");
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7, 8, 9, 10], Quirk(reader, "null-string", "ChargeClass").FirstRows);
    }

    [Fact]
    public async Task Differently_cased_ChargeFrequency_of_the_Oracle_rows_is_fixed_and_reported_with_its_rows()
    {
        var (_, reader) = await ReadAllAsync(FocusTestPaths.Sample);
        await using var __ = reader;

        var casing = Quirk(reader, "case", "ChargeFrequency");
        Assert.Equal(7, casing.Count);
        Assert.Equal([926L, 927, 942, 945, 948, 949, 951], casing.FirstRows);
        Assert.Equal(QuirkAction.Fixed, casing.Action);
        Assert.Contains("Usage-based", casing.Detail, StringComparison.Ordinal);
        // No other column of the sample has casing quirks (ChargeCategory, PricingCategory are spelled as FOCUS does).
        Assert.Single(reader.Quirks, q => q.Kind == "case");
    }

    [Fact]
    public async Task Shifted_columns_are_fixed_the_Azure_unit_price_in_AvailabilityZone_and_the_Oracle_region_in_RegionName()
    {
        var (lines, reader) = await ReadAllAsync(FocusTestPaths.Sample);
        await using var _ = reader;

        var zone = Quirk(reader, "shifted-value", "AvailabilityZone");
        Assert.Equal(51, zone.Count);
        Assert.Equal(947, zone.FirstRows[0]);
        Assert.All(lines.Where(l => l.Provider == "Microsoft"), l => Assert.Null(l.AvailabilityZone));

        var region = Quirk(reader, "shifted-value", "RegionId");
        Assert.Equal(7, region.Count);
        Assert.Equal([926L, 927, 942, 945, 948, 949, 951], region.FirstRows);
        Assert.Equal("us-sanjose-1", lines[925].RegionId);
        Assert.Equal("us-phoenix-1", lines[944].RegionId);
    }

    [Fact]
    public async Task Other_quirks_of_the_sample_are_reported_null_ContractedCost_and_a_column_outside_FOCUS()
    {
        var (lines, reader) = await ReadAllAsync(FocusTestPaths.Sample);
        await using var _ = reader;

        var contracted = Quirk(reader, "null-in-non-nullable", "ContractedCost");
        Assert.Equal(7, contracted.Count);
        Assert.Equal(QuirkAction.Kept, contracted.Action);
        Assert.Null(lines[925].ContractedCost);
        var id = Quirk(reader, "non-spec-column", "Id");
        Assert.Equal(1, id.Count);
        Assert.Empty(id.FirstRows);
        // The Oracle rows' PricingCategory is an empty quoted string, read as null.
        Assert.All(lines.Where(l => l.Provider == "Oracle"), l => Assert.Null(l.PricingCategory));
    }

    [Fact]
    public async Task A_file_missing_a_mandatory_column_is_an_error_naming_the_column_and_version()
    {
        var path = Path.Combine(_directory, "no-billed-cost.csv");
        await WithoutColumnAsync(FocusTestPaths.Sample, path, "BilledCost");

        var error = await Assert.ThrowsAsync<FocusFileException>(() => FocusReader.OpenAsync(path, Ct));

        Assert.Equal("BilledCost", error.MissingColumn);
        Assert.Equal(FocusVersion.V1_0, error.Version);
        Assert.Contains("'BilledCost'", error.Message, StringComparison.Ordinal);
        Assert.Contains("FOCUS 1.0", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("native-exports-focus_converters/sample-anonymous-aws-export-dataset.csv", "AWS Cost and Usage Report")]
    [InlineData("native-exports-focus_converters/sample-anonymous-ea-export-dataset.csv", "Azure EA")]
    [InlineData("native-exports-focus_converters/reports_cost-csv_0000000030000269.csv", "OCI cost report")]
    public async Task A_native_provider_export_is_refused_saying_what_it_is(string file, string named)
    {
        var error = await Assert.ThrowsAsync<FocusFileException>(() => FocusReader.OpenAsync(FocusTestPaths.File(file), Ct));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("not FOCUS", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_1_2_column_makes_the_file_1_2_and_its_mandatory_columns_are_checked()
    {
        var path = Path.Combine(_directory, "v12.csv");
        await DuckDbAsync($"COPY (SELECT *, 'INV-1' AS InvoiceId FROM read_csv('{FocusTestPaths.Sample}', all_varchar = true, header = true) LIMIT 3) TO '{path}' (HEADER, DELIMITER ',')");
        var (lines, reader) = await ReadAllAsync(path);
        await using var _ = reader;
        Assert.Equal(FocusVersion.V1_2, reader.Version);
        Assert.Equal(3, lines.Count);
    }

    [Fact]
    public async Task Csv_and_parquet_of_the_same_bill_give_the_same_lines()
    {
        var parquet = Path.Combine(_directory, "sample.parquet");
        // Typed as a provider would write it: decimals as DECIMAL, periods as TIMESTAMP.
        await DuckDbAsync($"""
            COPY (SELECT * REPLACE (CAST(BilledCost AS DECIMAL(38, 11)) AS BilledCost, CAST(EffectiveCost AS DECIMAL(38, 11)) AS EffectiveCost,
                                    CAST(ChargePeriodStart AS TIMESTAMP) AS ChargePeriodStart, CAST(ChargePeriodEnd AS TIMESTAMP) AS ChargePeriodEnd)
                  FROM read_csv('{FocusTestPaths.Sample}', all_varchar = true, header = true))
            TO '{parquet}' (FORMAT parquet)
            """);

        var (csvLines, csvReader) = await ReadAllAsync(FocusTestPaths.Sample);
        var (parquetLines, parquetReader) = await ReadAllAsync(parquet);
        await using var a = csvReader;
        await using var b = parquetReader;

        Assert.Equal(FocusFileFormat.Parquet, parquetReader.Format);
        Assert.Equal(csvLines.Count, parquetLines.Count);
        for (var i = 0; i < csvLines.Count; i++)
            Assert.Equal(csvLines[i], parquetLines[i]);
        Assert.Equal(csvReader.Quirks.Select(q => (q.Kind, q.Column, q.Count)), parquetReader.Quirks.Select(q => (q.Kind, q.Column, q.Count)));
    }

    [Fact]
    public async Task Importing_the_same_file_twice_stores_each_line_once()
    {
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        var first = await FocusImporter.ImportAsync(store, FocusTestPaths.Sample, "focus_sample.csv", cancellationToken: Ct);
        var second = await FocusImporter.ImportAsync(store, FocusTestPaths.Sample, "focus_sample.csv", cancellationToken: Ct);

        var stored = await store.QueryBillingAsync(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue.AddYears(-1), Ct);

        Assert.Equal(1000, first.RowsImported);
        Assert.Equal(first.Providers, second.Providers);
        Assert.Equal(1000, stored.Count);
        Assert.Equal(first.Providers.Sum(p => p.BilledCost), stored.Sum(l => l.BilledCost));
        Assert.Equal(first.Providers.Sum(p => p.EffectiveCost), stored.Sum(l => l.EffectiveCost));
        var (lines, reader) = await ReadAllAsync(FocusTestPaths.Sample);
        await using var _ = reader;
        Assert.Equal(lines.OrderBy(l => l.SourceRow), stored.OrderBy(l => l.SourceRow));
    }

    [Fact]
    public async Task The_store_import_reports_the_same_quirks_counts_rows_and_lines_as_the_reader_on_the_real_sample()
    {
        await AssertStoreImportMatchesReaderAsync(FocusTestPaths.Sample);
    }

    [Fact]
    public async Task The_store_import_handles_odd_values_as_the_reader_does_times_with_offsets_unreadable_rows_and_bad_numbers()
    {
        var path = Path.Combine(_directory, "odd.csv");
        // Rows 1-20 of the sample, bent: times with an offset, with Z, with fractions, a date only; unreadable costs and
        // times; numbers that are not, and numbers wider than 18 digits; an unknown and differently cased ChargeCategory;
        // an empty ProviderName.
        await DuckDbAsync($"""
            COPY (SELECT * REPLACE (
                    CASE r WHEN 2 THEN '2024-09-18T23:00:00+02:00' WHEN 3 THEN '2024-09-18T22:00:00Z' WHEN 4 THEN '2024-09-18 22:00:00.500'
                           WHEN 5 THEN '2024-09-18' WHEN 6 THEN 'yesterday' WHEN 7 THEN '2024-09-18T22:00:00-05:30' ELSE ChargePeriodStart END AS ChargePeriodStart,
                    CASE r WHEN 8 THEN 'n/a' WHEN 9 THEN NULL WHEN 10 THEN '1e-5' WHEN 11 THEN ' 12.5 ' WHEN 3 THEN '1234567890.123456789012' ELSE BilledCost END AS BilledCost,
                    CASE r WHEN 12 THEN 'twelve' WHEN 13 THEN '' ELSE ListCost END AS ListCost,
                    CASE r WHEN 14 THEN 'x' WHEN 4 THEN '987654.123456789012345' ELSE ConsumedQuantity END AS ConsumedQuantity,
                    CASE r WHEN 15 THEN 'usage' WHEN 16 THEN 'Refund' WHEN 17 THEN 'USAGE' WHEN 18 THEN 'Refund2' ELSE ChargeCategory END AS ChargeCategory,
                    CASE r WHEN 19 THEN '' WHEN 20 THEN 'NULL' ELSE ProviderName END AS ProviderName,
                    CASE r WHEN 16 THEN '12.5' ELSE AvailabilityZone END AS AvailabilityZone)
                  FROM (SELECT row_number() OVER () AS r, * FROM read_csv('{FocusTestPaths.Sample}', all_varchar = true, header = true)) WHERE r <= 20)
            TO '{path}' (HEADER, DELIMITER ',')
            """);
        // The helper column r travels into the file: a column outside FOCUS, reported as such by both paths.
        var (stored, result) = await AssertStoreImportMatchesReaderAsync(path);

        Assert.Equal(20, result.RowsRead);
        Assert.Equal(3, result.RowsSkipped);
        var unreadable = Assert.Single(result.Quirks, q => q.Kind == "unreadable");
        Assert.Equal([6L, 8, 9], unreadable.FirstRows);
        Assert.Equal(new DateTimeOffset(2024, 9, 18, 21, 0, 0, TimeSpan.Zero), stored.Single(l => l.SourceRow == 2).ChargePeriodStart);
        Assert.Equal(new DateTimeOffset(2024, 9, 19, 3, 30, 0, TimeSpan.Zero), stored.Single(l => l.SourceRow == 7).ChargePeriodStart);
        Assert.Equal(0.00001m, stored.Single(l => l.SourceRow == 10).BilledCost);
        // Wider than a 64-bit decimal at the ledger's scale: read exactly all the same.
        Assert.Equal(1234567890.123456789012m, stored.Single(l => l.SourceRow == 3).BilledCost);
        Assert.Equal(987654.123456789012345m, stored.Single(l => l.SourceRow == 4).ConsumedQuantity);
        Assert.Equal("Usage", stored.Single(l => l.SourceRow == 17).ChargeCategory);
        Assert.Contains("'usage'", Assert.Single(result.Quirks, q => q.Kind == "case" && q.Column == "ChargeCategory").Detail, StringComparison.Ordinal);
        Assert.Equal([16L, 18], Assert.Single(result.Quirks, q => q.Kind == "unknown-value" && q.Column == "ChargeCategory").FirstRows);
        Assert.Equal([12L], Assert.Single(result.Quirks, q => q.Kind == "not-a-number" && q.Column == "ListCost").FirstRows);
        Assert.Equal("", stored.Single(l => l.SourceRow == 20).Provider);
    }

    [Theory]
    [InlineData("csv")]
    [InlineData("parquet")]
    public async Task Row_numbers_are_the_files_in_a_file_larger_than_one_read_buffer(string format)
    {
        // 60,000 rows (~45 MB of CSV; Parquet in row groups of 2,048) with unreadable costs at two rows far apart: both
        // paths report those rows, and every stored line has the reader's row number. (The import's parallel read once
        // numbered rows out of file order at this size, found by this test: DuckDB had turned an IN list into a join.)
        var path = Path.Combine(_directory, "big." + format);
        var options = format == "csv" ? "HEADER, DELIMITER ','" : "FORMAT PARQUET, ROW_GROUP_SIZE 2048";
        await DuckDbAsync($"""
            COPY (SELECT * REPLACE (CASE WHEN r IN (31337, 59999) THEN 'n/a' ELSE BilledCost END AS BilledCost)
                  FROM (SELECT row_number() OVER (ORDER BY copy, line) AS r, * EXCLUDE (copy, line)
                        FROM (SELECT c.range AS copy, s.* FROM range(60) c,
                              (SELECT row_number() OVER () AS line, * FROM read_csv('{FocusTestPaths.Sample}', all_varchar = true, header = true)) s))
                  ORDER BY r)
            TO '{path}' ({options})
            """);

        var (stored, result) = await AssertStoreImportMatchesReaderAsync(path);

        Assert.Equal(60_000, result.RowsRead);
        Assert.Equal([31337L, 59999], Assert.Single(result.Quirks, q => q.Kind == "unreadable").FirstRows);
        Assert.DoesNotContain(stored, l => l.SourceRow is 31337 or 59999);
    }

    [Fact]
    public async Task A_csv_is_read_once_sniffed_a_byte_order_mark_crlf_line_ends_and_a_title_line_above_the_header_read_as_duckdb_reads_them()
    {
        // The file is sniffed once and read with what the sniff found: the same lines and quirks as the plain file, row
        // numbers counted from the header (the title line skipped, as DuckDB's own read_csv skips it).
        var plain = Path.Combine(_directory, "plain.csv");
        await DuckDbAsync($"""
            COPY (SELECT * FROM read_csv('{FocusTestPaths.Sample}', all_varchar = true, header = true) LIMIT 40) TO '{plain}' (HEADER, DELIMITER ',')
            """);
        var bent = Path.Combine(_directory, "bent.csv");
        await File.WriteAllTextAsync(bent, "\uFEFF" + "SunBird cost and usage, September 2024\r\n" + string.Join("\r\n", await File.ReadAllLinesAsync(plain, Ct)) + "\r\n", Ct);

        var (expected, expectedResult) = await AssertStoreImportMatchesReaderAsync(plain);
        var (stored, result) = await AssertStoreImportMatchesReaderAsync(bent);

        Assert.Equal(40, result.RowsRead);
        Assert.Equal(expected, stored);
        Assert.Equal(expectedResult.Quirks.Select(Describe), result.Quirks.Select(Describe));
        Assert.Equal("AWS", stored.Single(l => l.SourceRow == 1).Provider);
    }

    [Theory]
    [InlineData("\"BilledCost\",\"ChargePeriodStart\",\"Tags\"\n1,2,3\n", "BilledCost|ChargePeriodStart|Tags")]
    [InlineData("\uFEFFBilledCost,ChargePeriodStart,\"Odd \"\"name\"\", too\"\r\n1,2,3\r\n", "BilledCost|ChargePeriodStart|Odd \"name\", too")]
    [InlineData("BilledCost,\"Charge\nPeriodStart\",ChargePeriodStart\n", "BilledCost|Charge\nPeriodStart|ChargePeriodStart")]
    [InlineData("SunBird bill, September\nBilledCost,ChargePeriodStart\n", null)]
    [InlineData("BilledCost, ChargePeriodStart\n", null)]
    [InlineData("BilledCost,ChargePeriodStart,BilledCost\n", null)]
    [InlineData("BilledCost,,ChargePeriodStart\n", null)]
    [InlineData("BilledCost,\"Charge\"PeriodStart,ChargePeriodStart\n", null)]
    [InlineData("BilledCost,\"ChargePeriodStart\n", null)]
    public async Task A_plain_focus_header_is_read_without_a_sniff_and_anything_else_is_left_to_duckdb(string file, string? names)
    {
        var path = Path.Combine(_directory, "header.csv");
        await File.WriteAllTextAsync(path, file, Ct);

        Assert.Equal(names?.Split('|'), FocusReader.PlainCsvHeader(path));
    }

    [Fact]
    public async Task A_csv_that_is_not_well_formed_is_staged_as_the_reader_reads_it_a_row_with_a_field_too_many()
    {
        // 30,000 rows (past the sniff's sample) and one with a field more than the header at row 29,001: DuckDB's strict
        // parallel read refuses it, so the import reads the file again leniently on one thread, as the reader does.
        var path = Path.Combine(_directory, "extra-field.csv");
        var sample = await File.ReadAllLinesAsync(FocusTestPaths.Sample, Ct);
        var lines = new List<string> { sample[0] };
        for (var copy = 0; copy < 30; copy++)
            lines.AddRange(sample.Skip(1));
        lines[29_001] += ",\"extra\"";
        await File.WriteAllLinesAsync(path, lines, Ct);

        var (stored, result) = await AssertStoreImportMatchesReaderAsync(path);

        Assert.Equal(30_000, result.RowsRead);
        Assert.Contains(stored, l => l.SourceRow == 29_001);
    }

    // Imports through the store (one pass in DuckDB) and reads through FocusReader: the same lines, the same quirks
    // (kind, column, action, count, first rows, detail, order), the same totals.
    private async Task<(IReadOnlyList<BillingLine> Stored, FocusImportResult Result)> AssertStoreImportMatchesReaderAsync(string path)
    {
        await using var store = await DuckDbCostStore.OpenAsync(Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".duckdb"), ct: Ct);
        var result = await FocusImporter.ImportAsync(store, path, "bill", cancellationToken: Ct);
        var stored = await store.QueryBillingAsync(DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue.AddYears(-1), Ct);

        var (lines, reader) = await ReadAllAsync(path);
        await using var _ = reader;
        Assert.Equal(reader.RowsRead, result.RowsRead);
        Assert.Equal(reader.RowsSkipped, result.RowsSkipped);
        Assert.Equal(lines.Count, result.RowsImported);
        Assert.Equal(lines, stored.OrderBy(l => l.SourceRow));
        Assert.Equal(reader.Quirks.Select(Describe), result.Quirks.Select(Describe));
        Assert.Equal(reader.RowsByProvider.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)), result.Providers.Select(p => (p.Provider, p.Rows)));
        Assert.Equal(lines.Sum(l => l.BilledCost), result.Providers.Sum(p => p.BilledCost));
        Assert.Equal(lines.Min(l => l.ChargePeriodStart), result.PeriodStart);
        Assert.Equal(lines.Max(l => l.ChargePeriodEnd), result.PeriodEnd);
        return (stored, result);
    }

    private static string Describe(FocusQuirk q) => $"{q.Kind}|{q.Column}|{q.Action}|{q.Count}|{string.Join(",", q.FirstRows)}|{q.Detail}";

    private static Task WithoutColumnAsync(string source, string target, string column) =>
        DuckDbAsync($"COPY (SELECT * EXCLUDE ({column}) FROM read_csv('{source}', all_varchar = true, header = true)) TO '{target}' (HEADER, DELIMITER ',')");
}
