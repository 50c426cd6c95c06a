using Burnrate.Storage;

namespace Burnrate.Billing;

/// <summary>What one provider contributed to an imported file.</summary>
/// <param name="Provider">ProviderName.</param>
/// <param name="Rows">Lines imported.</param>
/// <param name="BilledCost">Sum of BilledCost, exact.</param>
/// <param name="EffectiveCost">Sum of EffectiveCost, exact.</param>
public sealed record ProviderTotal(string Provider, long Rows, decimal BilledCost, decimal EffectiveCost);

/// <summary>The outcome of importing one FOCUS file.</summary>
/// <param name="File">The file's name as given.</param>
/// <param name="Format">CSV or Parquet.</param>
/// <param name="Version">The FOCUS version read.</param>
/// <param name="RowsRead">Data rows in the file.</param>
/// <param name="RowsImported">Lines stored.</param>
/// <param name="RowsSkipped">Rows not stored (see the quirks with action Skipped).</param>
/// <param name="Providers">Per-provider totals, by provider name.</param>
/// <param name="Quirks">What was odd and what was done.</param>
/// <param name="PeriodStart">The earliest ChargePeriodStart imported, or null when nothing was.</param>
/// <param name="PeriodEnd">The latest ChargePeriodEnd imported, or null when nothing was.</param>
public sealed record FocusImportResult(
    string File,
    FocusFileFormat Format,
    FocusVersion Version,
    long RowsRead,
    long RowsImported,
    long RowsSkipped,
    IReadOnlyList<ProviderTotal> Providers,
    IReadOnlyList<FocusQuirk> Quirks,
    DateTimeOffset? PeriodStart,
    DateTimeOffset? PeriodEnd);

/// <summary>Reads a FOCUS file batch by batch into the cost store.</summary>
public static class FocusImporter
{
    /// <summary>Lines per batch read and written; bounds the memory an import holds whatever the file's size.</summary>
    public const int BatchSize = 8192;

    /// <summary>
    /// Imports <paramref name="path"/> into <paramref name="store"/> under <paramref name="sourceName"/> (re-importing the
    /// same source replaces its lines). A store that imports files itself (<see cref="IFocusImportStore"/>: both of
    /// Burnrate's) does it in one pass inside DuckDB and reports <paramref name="progress"/> per phase (rows read when the
    /// file has been read and checked, then again when they are stored); any other store gets the lines batch by batch
    /// from a <see cref="FocusReader"/> (<see cref="ImportThroughReaderAsync"/>), with progress after each batch.
    /// </summary>
    /// <exception cref="FocusFileException">The file is unreadable or lacks a mandatory column.</exception>
    public static async Task<FocusImportResult> ImportAsync(ICostStore store, string path, string sourceName, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (store is IFocusImportStore direct)
            return await direct.ImportFocusFileAsync(path, sourceName, progress, cancellationToken).ConfigureAwait(false);
        return await ImportThroughReaderAsync(store, path, sourceName, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Imports <paramref name="path"/> through a <see cref="FocusReader"/>, writing its lines to <paramref name="store"/>
    /// batch by batch with <see cref="ICostStore.WriteBillingAsync"/>; <paramref name="progress"/> gets the rows read so far after each batch.
    /// </summary>
    /// <exception cref="FocusFileException">The file is unreadable or lacks a mandatory column.</exception>
    public static async Task<FocusImportResult> ImportThroughReaderAsync(ICostStore store, string path, string sourceName, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        await using var reader = await FocusReader.OpenAsync(path, cancellationToken).ConfigureAwait(false);
        var totals = new SortedDictionary<string, (long Rows, decimal Billed, decimal Effective)>(StringComparer.Ordinal);
        DateTimeOffset? start = null, end = null;
        long imported = 0;
        await foreach (var batch in reader.ReadBatchesAsync(BatchSize, cancellationToken).ConfigureAwait(false))
        {
            foreach (var line in batch)
            {
                var t = totals.GetValueOrDefault(line.Provider);
                totals[line.Provider] = (t.Rows + 1, t.Billed + line.BilledCost, t.Effective + line.EffectiveCost);
                if (start is null || line.ChargePeriodStart < start)
                    start = line.ChargePeriodStart;
                if (end is null || line.ChargePeriodEnd > end)
                    end = line.ChargePeriodEnd;
            }
            await store.WriteBillingAsync(batch, sourceName, cancellationToken).ConfigureAwait(false);
            imported += batch.Count;
            progress?.Report(reader.RowsRead);
        }
        progress?.Report(reader.RowsRead);
        return new FocusImportResult(
            sourceName, reader.Format, reader.Version, reader.RowsRead, imported, reader.RowsSkipped,
            [.. totals.Select(kv => new ProviderTotal(kv.Key, kv.Value.Rows, kv.Value.Billed, kv.Value.Effective))],
            reader.Quirks, start, end);
    }
}
