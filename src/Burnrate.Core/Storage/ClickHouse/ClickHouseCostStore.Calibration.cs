using System.Globalization;
using System.Text;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;

namespace Burnrate.Storage.ClickHouse;

public sealed partial class ClickHouseCostStore : ICalibrationStore
{
    /// <inheritdoc />
    public async Task SaveCalibrationAsync(IReadOnlyList<CalibrationFactor> factors, IReadOnlyList<ReconciledPeriod> periods, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factors);
        ArgumentNullException.ThrowIfNull(periods);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // One version for the whole reconciliation: a reader sees either every factor it learned or, for a key it
            // did not touch, the older one (the embedded store does the same in one transaction).
            var version = NextVersion().ToString(CultureInfo.InvariantCulture);
            if (factors.Count > 0)
            {
                var tsv = new StringBuilder();
                foreach (var f in factors)
                {
                    Tsv(tsv, f.Provider, f.Usage == CalibratedUsage.Network ? "network" : "compute", f.InstanceType, f.Capacity.ToName(),
                        FactorText(f.Factor), DecimalText(f.Estimated, 12), DecimalText(f.Effective, 12),
                        Micros(f.From), Micros(f.To), Micros(f.LearnedAt), version);
                }
                await InsertTsvAsync("calibration_factors", tsv, cancellationToken).ConfigureAwait(false);
            }
            if (periods.Count > 0)
            {
                var tsv = new StringBuilder();
                foreach (var p in periods)
                {
                    Tsv(tsv, p.Provider, Micros(p.From), Micros(p.To), DecimalText(p.Estimated, 12), DecimalText(p.Effective, 12),
                        Micros(p.ReconciledAt), version);
                }
                await InsertTsvAsync("reconciled_periods", tsv, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _writes.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CalibrationFactor>> GetCalibrationAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new List<CalibrationFactor>();
        var rows = await _client.QueryAsync($"""
            SELECT provider, usage, instance_type, capacity, argMax(factor, version), argMax(estimated, version), argMax(effective, version),
                   argMax(period_from_us, version), argMax(period_to_us, version), argMax(learned_at_us, version)
            FROM {_db}.calibration_factors
            GROUP BY provider, usage, instance_type, capacity
            ORDER BY provider, usage, instance_type, capacity
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            if (!CapacityTypes.TryParse(r[3], out var capacity))
                continue; // written by this code: cannot happen short of a hand-edited table
            result.Add(new CalibrationFactor(
                r[0]!, r[1] == "network" ? CalibratedUsage.Network : CalibratedUsage.Compute, r[2]!, capacity,
                Trimmed(r[4]), Trimmed(r[5]), Trimmed(r[6]), FromMicros(r[7]!), FromMicros(r[8]!), FromMicros(r[9]!)));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReconciledPeriod>> GetReconciledPeriodsAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new List<ReconciledPeriod>();
        var rows = await _client.QueryAsync($"""
            SELECT provider, period_from_us, argMax(period_to_us, version), argMax(estimated, version), argMax(effective, version),
                   argMax(reconciled_at_us, version)
            FROM {_db}.reconciled_periods
            GROUP BY provider, period_from_us
            ORDER BY provider, period_from_us
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            result.Add(new ReconciledPeriod(r[0]!, FromMicros(r[1]!), FromMicros(r[2]!), Trimmed(r[3]), Trimmed(r[4]), FromMicros(r[5]!)));
        }
        return result;
    }

    // ClickHouse writes every decimal of the column's scale (0.915000000000000000); the embedded store's reader gives
    // the value without trailing zeros, and so does this one, so both print the same figure.
    private static decimal Trimmed(string? text) => Number(text)!.Value / 1.000000000000000000000000000000000m;

    // Factors keep 18 decimals, as in the embedded store.
    private static string FactorText(decimal value) =>
        decimal.Round(value, 18, MidpointRounding.AwayFromZero).ToString("0.##################", CultureInfo.InvariantCulture);
}
