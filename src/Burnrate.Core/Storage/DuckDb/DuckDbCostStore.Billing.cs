using System.Data.Common;
using Burnrate.Billing;
using DuckDB.NET.Data;

namespace Burnrate.Storage.DuckDb;

public sealed partial class DuckDbCostStore
{
    /// <inheritdoc />
    public async Task WriteBillingAsync(IReadOnlyList<BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentException.ThrowIfNullOrEmpty(sourceFile);
        if (lines.Count == 0)
            return;
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // An importer's batch has its rows in increasing order: no duplicates to drop, and a row range that, on a
            // first import, no stored line of the file falls in. Then nothing is replaced and the lines are appended
            // to the table directly (should appending fail part-way, re-importing the file replaces what was kept).
            var increasing = true;
            for (var i = 1; i < lines.Count && increasing; i++)
                increasing = lines[i].SourceRow > lines[i - 1].SourceRow;
            if (increasing && !await HasBillingRowsAsync(sourceFile, lines[0].SourceRow, lines[^1].SourceRow, cancellationToken).ConfigureAwait(false))
            {
                using var direct = _connection.CreateAppender("billing_lines");
                foreach (var line in lines)
                    AppendBilling(direct, sourceFile, line);
                return;
            }
            await ExecuteCoreAsync("DELETE FROM billing_lines_staging", cancellationToken).ConfigureAwait(false);
            using (var appender = _connection.CreateAppender("billing_lines_staging"))
            {
                foreach (var line in lines)
                    AppendBilling(appender, sourceFile, line);
            }
            await InTransactionAsync(async () =>
            {
                // Same (file, row) replaces: re-importing a file, or a batch of it, adds nothing.
                await ExecuteCoreAsync("""
                    DELETE FROM billing_lines USING (SELECT DISTINCT source_file, source_row FROM billing_lines_staging) AS s
                    WHERE billing_lines.source_file = s.source_file AND billing_lines.source_row = s.source_row
                    """, cancellationToken).ConfigureAwait(false);
                await ExecuteCoreAsync("INSERT INTO billing_lines SELECT DISTINCT ON (source_file, source_row) * FROM billing_lines_staging", cancellationToken).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            await ExecuteCoreAsync("DELETE FROM billing_lines_staging", cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One statement reads the file into a temporary table of this store's connection (the lines typed and fixed, a state
    /// per cell); the readable rows go into billing_lines with one INSERT ... SELECT, in one transaction with the delete
    /// of the same (source, row) keys a previous import of the source stored. The write gate is held throughout.
    /// </remarks>
    public async Task<FocusImportResult> ImportFocusFileAsync(string path, string sourceName, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(sourceName);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var import = await FocusSqlImport.StageAsync(_connection, path, cancellationToken).ConfigureAwait(false);
            progress?.Report(import.RowsRead);
            if (import.RowsImported > 0)
            {
                var replace = await HasBillingRowsAsync(sourceName, 1, import.RowsRead, cancellationToken).ConfigureAwait(false);
                await InTransactionAsync(async () =>
                {
                    // Same (file, row) replaces, as WriteBillingAsync does: a re-import adds nothing.
                    if (replace)
                    {
                        await ExecuteWithSourceAsync(
                            $"DELETE FROM billing_lines WHERE source_file = $file AND source_row IN (SELECT source_row FROM {import.Table} WHERE readable)",
                            sourceName, cancellationToken).ConfigureAwait(false);
                    }
                    await ExecuteWithSourceAsync($"INSERT INTO billing_lines SELECT $file, {FocusSqlImport.LineColumns} FROM {import.Table} WHERE readable",
                        sourceName, cancellationToken).ConfigureAwait(false);
                }, cancellationToken).ConfigureAwait(false);
            }
            var result = import.Result(sourceName);
            progress?.Report(import.RowsRead);
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ExecuteWithSourceAsync(string sql, string sourceFile, CancellationToken cancellationToken)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.Add(new DuckDBParameter("file", sourceFile));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> HasBillingRowsAsync(string sourceFile, long first, long last, CancellationToken cancellationToken)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT EXISTS (SELECT 1 FROM billing_lines WHERE source_file = $file AND source_row BETWEEN $first AND $last)";
        command.Parameters.Add(new DuckDBParameter("file", sourceFile));
        command.Parameters.Add(new DuckDBParameter("first", first));
        command.Parameters.Add(new DuckDBParameter("last", last));
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var result = new List<BillingLine>();
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = """
                SELECT source_row, provider, billing_account_id, sub_account_id, resource_id, resource_name, resource_type,
                       region_id, availability_zone, service_name, service_category, sku_id, charge_category, pricing_category,
                       charge_description, charge_period_start, charge_period_end, billed_cost, effective_cost, list_cost,
                       contracted_cost, consumed_quantity, consumed_unit, billing_currency, tags
                FROM billing_lines
                WHERE charge_period_start >= $lo AND charge_period_start < $hi
                ORDER BY charge_period_start, source_file, source_row
                """;
            command.Parameters.Add(new DuckDBParameter("lo", from.UtcDateTime));
            command.Parameters.Add(new DuckDBParameter("hi", to.UtcDateTime));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                result.Add(new BillingLine(
                    reader.GetInt64(0), reader.GetString(1), reader.GetString(2), Text(reader, 3), Text(reader, 4),
                    Text(reader, 5), Text(reader, 6), Text(reader, 7), Text(reader, 8), reader.GetString(9), Text(reader, 10),
                    Text(reader, 11), reader.GetString(12), Text(reader, 13), Text(reader, 14),
                    Utc(reader.GetDateTime(15)), Utc(reader.GetDateTime(16)), reader.GetDecimal(17), reader.GetDecimal(18),
                    Number(reader, 19), Number(reader, 20), Number(reader, 21), Text(reader, 22), reader.GetString(23), Text(reader, 24)));
            }
        }
        finally
        {
            _gate.Release();
        }
        return result;
    }

    private static string? Text(DbDataReader reader, int i) => reader.IsDBNull(i) ? null : reader.GetString(i);

    private static decimal? Number(DbDataReader reader, int i) => reader.IsDBNull(i) ? null : reader.GetDecimal(i);

    // Column order follows DuckDbSchema's billing_lines definition.
    private static void AppendBilling(DuckDBAppender appender, string sourceFile, BillingLine line)
    {
        var row = appender.CreateRow()
            .AppendValue(sourceFile)
            .AppendValue(line.SourceRow)
            .AppendValue(line.Provider)
            .AppendValue(line.BillingAccountId)
            .AppendValue(line.SubAccountId)
            .AppendValue(line.ResourceId)
            .AppendValue(line.ResourceName)
            .AppendValue(line.ResourceType)
            .AppendValue(line.RegionId)
            .AppendValue(line.AvailabilityZone)
            .AppendValue(line.ServiceName)
            .AppendValue(line.ServiceCategory)
            .AppendValue(line.SkuId)
            .AppendValue(line.ChargeCategory)
            .AppendValue(line.PricingCategory)
            .AppendValue(line.ChargeDescription)
            .AppendValue(line.ChargePeriodStart.UtcDateTime)
            .AppendValue(line.ChargePeriodEnd.UtcDateTime)
            .AppendValue(line.BilledCost)
            .AppendValue(line.EffectiveCost);
        row = line.ListCost is { } list ? row.AppendValue(list) : row.AppendNullValue();
        row = line.ContractedCost is { } contracted ? row.AppendValue(contracted) : row.AppendNullValue();
        row = line.ConsumedQuantity is { } quantity ? row.AppendValue(quantity) : row.AppendNullValue();
        row.AppendValue(line.ConsumedUnit)
            .AppendValue(line.BillingCurrency)
            .AppendValue(line.Tags)
            .EndRow();
    }
}
