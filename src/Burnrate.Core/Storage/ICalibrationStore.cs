using Burnrate.Pricing.Terms;

namespace Burnrate.Storage;

/// <summary>
/// A provider's bill compared with the ledger over a period: the ledger's rows in it are no longer provisional, they
/// are reconciled (the estimate stays as it was; the bill's figure is beside it).
/// </summary>
/// <param name="Provider">The provider as the ledger spells it.</param>
/// <param name="From">Start of the period (a UTC day).</param>
/// <param name="To">End of the period, exclusive.</param>
/// <param name="Estimated">The ledger's cost over the period.</param>
/// <param name="Effective">The bill's effective cost over the period.</param>
/// <param name="ReconciledAt">When it was reconciled.</param>
public sealed record ReconciledPeriod(string Provider, DateTimeOffset From, DateTimeOffset To, decimal Estimated, decimal Effective, DateTimeOffset ReconciledAt);

/// <summary>Where the calibration learned from bills, and which periods are reconciled, are kept.</summary>
public interface ICalibrationStore
{
    /// <summary>Stores factors (replacing those of the same key) and reconciled periods (replacing the same provider and start).</summary>
    Task SaveCalibrationAsync(IReadOnlyList<CalibrationFactor> factors, IReadOnlyList<ReconciledPeriod> periods, CancellationToken cancellationToken = default);

    /// <summary>Every stored factor.</summary>
    Task<IReadOnlyList<CalibrationFactor>> GetCalibrationAsync(CancellationToken cancellationToken = default);

    /// <summary>Every reconciled period, by provider and start.</summary>
    Task<IReadOnlyList<ReconciledPeriod>> GetReconciledPeriodsAsync(CancellationToken cancellationToken = default);
}
