using System.Globalization;
using System.Text;
using Burnrate.Billing;
using DuckDB.NET.Data;

namespace Burnrate.Storage.ClickHouse;

public sealed partial class ClickHouseCostStore
{
    /// <inheritdoc />
    public async Task WriteBillingAsync(IReadOnlyList<BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentException.ThrowIfNullOrEmpty(sourceFile);
        if (lines.Count == 0)
            return;
        // Same (file, row) replaces: a newer version hides the old line (readers take the newest per key).
        var latest = new Dictionary<long, BillingLine>();
        foreach (var line in lines)
            latest[line.SourceRow] = line;

        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = NextVersion().ToString(CultureInfo.InvariantCulture);
            var tsv = new StringBuilder();
            foreach (var l in latest.Values)
            {
                Tsv(tsv, sourceFile, l.SourceRow.ToString(CultureInfo.InvariantCulture), l.Provider, l.BillingAccountId, l.SubAccountId,
                    l.ResourceId, l.ResourceName, l.ResourceType, l.RegionId, l.AvailabilityZone, l.ServiceName, l.ServiceCategory,
                    l.SkuId, l.ChargeCategory, l.PricingCategory, l.ChargeDescription, Micros(l.ChargePeriodStart), Micros(l.ChargePeriodEnd),
                    DecimalText(l.BilledCost, 12), DecimalText(l.EffectiveCost, 12),
                    l.ListCost is { } list ? DecimalText(list, 12) : null,
                    l.ContractedCost is { } contracted ? DecimalText(contracted, 12) : null,
                    l.ConsumedQuantity is { } quantity ? DecimalText(quantity, 15) : null,
                    l.ConsumedUnit, l.BillingCurrency, l.Tags, version);
            }
            await InsertTsvAsync("billing_lines", tsv, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writes.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The file is read and checked by the same SQL as the DuckDB store's, in an in-memory DuckDB; its lines then go to
    /// ClickHouse through <see cref="WriteBillingAsync"/>, a batch of <see cref="FocusImporter.BatchSize"/> at a time.
    /// </remarks>
    public async Task<FocusImportResult> ImportFocusFileAsync(string path, string sourceName, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(sourceName);
        await using var connection = new DuckDBConnection("Data Source=:memory:");
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var import = await FocusSqlImport.StageAsync(connection, path, cancellationToken).ConfigureAwait(false);
        progress?.Report(import.RowsRead);
        await foreach (var batch in import.ReadLinesAsync(FocusImporter.BatchSize, cancellationToken).ConfigureAwait(false))
            await WriteBillingAsync(batch, sourceName, cancellationToken).ConfigureAwait(false);
        var result = import.Result(sourceName);
        progress?.Report(import.RowsRead);
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new List<BillingLine>();
        var local = ClickHouseQueryPlan.LocalName("billing_lines", _options.Cluster);
        // Lines are sharded by source file, so each shard's local table holds every version of its lines.
        var rows = await _client.QueryAsync($"""
            SELECT source_row, provider, billing_account_id, sub_account_id, resource_id, resource_name, resource_type,
                   region_id, availability_zone, service_name, service_category, sku_id, charge_category, pricing_category,
                   charge_description, charge_period_start_us, charge_period_end_us, billed_cost, effective_cost, list_cost,
                   contracted_cost, consumed_quantity, consumed_unit, billing_currency, tags
            FROM {_db}.billing_lines
            WHERE charge_period_start_us >= {Micros(from)} AND charge_period_start_us < {Micros(to)}
              AND (source_file, source_row, version) IN (SELECT source_file, source_row, max(version) FROM {_db}.{local} GROUP BY source_file, source_row)
            ORDER BY charge_period_start_us, source_file, source_row
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            result.Add(new BillingLine(
                long.Parse(r[0]!, CultureInfo.InvariantCulture), r[1]!, r[2]!, r[3], r[4], r[5], r[6], r[7], r[8], r[9]!, r[10], r[11], r[12]!,
                r[13], r[14], FromMicros(r[15]!), FromMicros(r[16]!), Number(r[17])!.Value, Number(r[18])!.Value, Number(r[19]),
                Number(r[20]), Number(r[21]), r[22], r[23]!, r[24]));
        }
        return result;
    }

    private static decimal? Number(string? text) =>
        text is null ? null : decimal.Parse(text, NumberStyles.Number, CultureInfo.InvariantCulture);
}
