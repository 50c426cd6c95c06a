using Burnrate.Billing;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using DuckDB.NET.Data;

namespace Burnrate.Tests.Billing;

public sealed class FocusExportReconcileTests : IDisposable
{
    private static readonly TimeSpan s_span = TimeSpan.FromHours(3);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "burnrate-focus-export-" + Guid.NewGuid().ToString("N"));

    public FocusExportReconcileTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<Money> LedgerTotalAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to) =>
        new((await store.QueryCostsAsync(new CostQuery { From = from, To = to }, Ct)).Sum(r => r.Cost.Nanos));

    private async Task<string> ExportCsvAsync(ICostStore store, TimeSpan step)
    {
        var path = Path.Combine(_directory, "ledger.focus.csv");
        await using (var writer = new StreamWriter(path))
            await FocusExporter.WriteCsvAsync(store, ScenarioBill.T0, ScenarioBill.T0 + s_span, step, writer, Ct);
        return path;
    }

    [Theory]
    [InlineData(60, "csv")]
    [InlineData(1, "csv")]
    [InlineData(60, "parquet")]
    public async Task The_export_has_every_FOCUS_1_2_mandatory_column_and_reimports_to_the_ledgers_total(int stepMinutes, string format)
    {
        await using var ledger = await ScenarioBill.PlayAsync("baseline", s_span);
        var step = TimeSpan.FromMinutes(stepMinutes);
        string path;
        if (format == "csv")
        {
            path = await ExportCsvAsync(ledger, step);
        }
        else
        {
            path = Path.Combine(_directory, "ledger.focus.parquet");
            await FocusExporter.WriteParquetAsync(ledger, ScenarioBill.T0, ScenarioBill.T0 + s_span, step, path, Ct);
        }
        var total = await LedgerTotalAsync(ledger, ScenarioBill.T0, ScenarioBill.T0 + s_span);
        Assert.True(total.Nanos > 0);

        await using (var reader = await FocusReader.OpenAsync(path, Ct))
        {
            Assert.Equal(FocusVersion.V1_2, reader.Version);
            Assert.True(reader.VersionFromColumn);
            foreach (var column in FocusColumns.MandatoryOf(FocusVersion.V1_2))
                Assert.Contains(column.Id, reader.Header);
        }

        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        var result = await FocusImporter.ImportAsync(store, path, "export", cancellationToken: Ct);

        Assert.Equal(0, result.RowsSkipped);
        Assert.Equal(total, Money.FromDollars(result.Providers.Sum(p => p.BilledCost)));
        Assert.Equal(total, Money.FromDollars(result.Providers.Sum(p => p.EffectiveCost)));
        // Only the 'null' spellings FOCUS allows: no quirk other than values left null on purpose.
        Assert.DoesNotContain(result.Quirks, q => q.Kind is "case" or "shifted-value" or "unreadable" or "null-string" or "non-spec-column");
        var lines = await store.QueryBillingAsync(ScenarioBill.T0, ScenarioBill.T0 + s_span, Ct);
        Assert.All(lines, l => Assert.Equal(step, l.ChargePeriodEnd - l.ChargePeriodStart));
        Assert.Equal(total, new Money(lines.Sum(l => l.BilledMoney.Nanos)));
    }

    [Fact]
    public async Task Reconciling_a_bill_with_an_8_percent_discount_shows_minus_8_percent_per_provider()
    {
        await using var store = await ScenarioBill.PlayAsync("baseline", s_span);
        var exported = await ExportCsvAsync(store, TimeSpan.FromHours(1));
        var bill = Path.Combine(_directory, "bill.csv");
        await using (var connection = new DuckDBConnection("Data Source=:memory:"))
        {
            await connection.OpenAsync(Ct);
            using var command = connection.CreateCommand();
            command.CommandText = $"""
                COPY (SELECT * REPLACE (CAST(CAST(EffectiveCost AS DECIMAL(38, 9)) * 0.92 AS VARCHAR) AS EffectiveCost)
                      FROM read_csv('{exported}', all_varchar = true, header = true))
                TO '{bill}' (HEADER, DELIMITER ',')
                """;
            await command.ExecuteNonQueryAsync(Ct);
        }

        await FocusImporter.ImportAsync(store, bill, "bill.csv", cancellationToken: Ct);
        var report = await Reconciler.ReconcileAsync(store, ScenarioBill.T0, ScenarioBill.T0 + s_span, cancellationToken: Ct);

        Assert.True(report.Providers.Count >= 3, string.Join(", ", report.Providers.Select(p => p.Key)));
        foreach (var provider in report.Providers)
        {
            Assert.Equal(-0.08m, provider.EffectiveVsEstimate);
            Assert.Equal(0m, provider.BilledVsEstimate);
        }
        Assert.True(report.MatchedResourceDays > 0);
        Assert.Empty(report.UnmatchedBill);
        Assert.Empty(report.UnmatchedLedger);
    }

    [Fact]
    public async Task Bill_lines_for_resources_the_ledger_does_not_know_and_ledger_resources_without_a_bill_are_listed()
    {
        await using var store = await ScenarioBill.PlayAsync("baseline", s_span);
        var exported = await ExportCsvAsync(store, TimeSpan.FromHours(1));
        var bill = Path.Combine(_directory, "bill.csv");
        string dropped;
        await using (var connection = new DuckDBConnection("Data Source=:memory:"))
        {
            await connection.OpenAsync(Ct);
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT min(ResourceId) FROM read_csv('{exported}', all_varchar = true, header = true) WHERE ProviderName = 'aws'";
            dropped = (string)(await command.ExecuteScalarAsync(Ct))!;
            // One AWS resource left off the bill, one resource on the bill that the ledger never saw.
            command.CommandText = $"""
                COPY (SELECT * FROM read_csv('{exported}', all_varchar = true, header = true) WHERE ResourceId <> '{dropped}'
                      UNION ALL
                      SELECT * REPLACE ('i-unknown' AS ResourceId, '1.5' AS BilledCost, '1.25' AS EffectiveCost)
                      FROM (SELECT * FROM read_csv('{exported}', all_varchar = true, header = true) WHERE ProviderName = 'aws' LIMIT 1))
                TO '{bill}' (HEADER, DELIMITER ',')
                """;
            await command.ExecuteNonQueryAsync(Ct);
        }

        await FocusImporter.ImportAsync(store, bill, "bill.csv", cancellationToken: Ct);
        var report = await Reconciler.ReconcileAsync(store, ScenarioBill.T0, ScenarioBill.T0 + s_span, cancellationToken: Ct);

        var bill1 = Assert.Single(report.UnmatchedBill);
        Assert.Equal("aws", bill1.Provider);
        Assert.Equal(1, bill1.Count);
        Assert.Equal(Money.FromDollars(1.5m), bill1.Billed);
        Assert.Equal(["i-unknown"], bill1.Examples);
        var ledger1 = Assert.Single(report.UnmatchedLedger);
        Assert.Equal("aws", ledger1.Provider);
        Assert.Equal(1, ledger1.Count);
        Assert.Equal([dropped], ledger1.Examples);
        Assert.True(ledger1.Estimated.Nanos > 0);
    }
}
