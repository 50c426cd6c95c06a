using Burnrate.Billing;

namespace Burnrate.Storage;

/// <summary>
/// A store that imports a FOCUS file itself, validation, mapping, quirk report and write in one pass inside DuckDB,
/// rather than taking the lines batch by batch through <see cref="ICostStore.WriteBillingAsync"/>. The outcome is the
/// same either way: the same lines, keyed by (source, row) so that a re-import replaces them, and the same quirks with
/// the same counts and row numbers. <see cref="FocusImporter.ImportAsync"/> uses it where a store has it.
/// </summary>
public interface IFocusImportStore
{
    /// <summary>
    /// Imports the FOCUS file at <paramref name="path"/> (a local CSV or Parquet file) under <paramref name="sourceName"/>;
    /// a missing mandatory column is a <see cref="FocusFileException"/> naming it, before anything is written.
    /// <paramref name="progress"/> gets the rows read when the file has been read and checked, and again once they are stored.
    /// </summary>
    /// <exception cref="FocusFileException">The file is unreadable or lacks a mandatory column.</exception>
    Task<FocusImportResult> ImportFocusFileAsync(string path, string sourceName, IProgress<long>? progress = null, CancellationToken cancellationToken = default);
}
