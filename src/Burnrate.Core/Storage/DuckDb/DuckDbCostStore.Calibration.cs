using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using DuckDB.NET.Data;

namespace Burnrate.Storage.DuckDb;

public sealed partial class DuckDbCostStore : ICalibrationStore
{
    /// <inheritdoc />
    public async Task SaveCalibrationAsync(IReadOnlyList<CalibrationFactor> factors, IReadOnlyList<ReconciledPeriod> periods, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factors);
        ArgumentNullException.ThrowIfNull(periods);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await InTransactionAsync(async () =>
            {
                foreach (var f in factors)
                {
                    using var command = _connection.CreateCommand();
                    command.CommandText = """
                        INSERT OR REPLACE INTO calibration_factors
                        VALUES ($provider, $usage, $type, $capacity, $factor, $estimated, $effective, $from, $to, $at)
                        """;
                    command.Parameters.Add(new DuckDBParameter("provider", f.Provider));
                    command.Parameters.Add(new DuckDBParameter("usage", f.Usage == CalibratedUsage.Network ? "network" : "compute"));
                    command.Parameters.Add(new DuckDBParameter("type", f.InstanceType));
                    command.Parameters.Add(new DuckDBParameter("capacity", f.Capacity.ToName()));
                    command.Parameters.Add(new DuckDBParameter("factor", f.Factor));
                    command.Parameters.Add(new DuckDBParameter("estimated", f.Estimated));
                    command.Parameters.Add(new DuckDBParameter("effective", f.Effective));
                    command.Parameters.Add(new DuckDBParameter("from", f.From.UtcDateTime));
                    command.Parameters.Add(new DuckDBParameter("to", f.To.UtcDateTime));
                    command.Parameters.Add(new DuckDBParameter("at", f.LearnedAt.UtcDateTime));
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                foreach (var p in periods)
                {
                    using var command = _connection.CreateCommand();
                    command.CommandText = "INSERT OR REPLACE INTO reconciled_periods VALUES ($provider, $from, $to, $estimated, $effective, $at)";
                    command.Parameters.Add(new DuckDBParameter("provider", p.Provider));
                    command.Parameters.Add(new DuckDBParameter("from", p.From.UtcDateTime));
                    command.Parameters.Add(new DuckDBParameter("to", p.To.UtcDateTime));
                    command.Parameters.Add(new DuckDBParameter("estimated", p.Estimated));
                    command.Parameters.Add(new DuckDBParameter("effective", p.Effective));
                    command.Parameters.Add(new DuckDBParameter("at", p.ReconciledAt.UtcDateTime));
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CalibrationFactor>> GetCalibrationAsync(CancellationToken cancellationToken = default)
    {
        var result = new List<CalibrationFactor>();
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = """
            SELECT provider, usage, instance_type, capacity, factor, estimated, effective, period_from, period_to, learned_at
            FROM calibration_factors ORDER BY provider, usage, instance_type, capacity
            """;
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!CapacityTypes.TryParse(reader.GetString(3), out var capacity))
                continue; // written by this code: cannot happen short of a hand-edited database
            result.Add(new CalibrationFactor(
                reader.GetString(0), reader.GetString(1) == "network" ? CalibratedUsage.Network : CalibratedUsage.Compute,
                reader.GetString(2), capacity, reader.GetDecimal(4), reader.GetDecimal(5), reader.GetDecimal(6),
                Utc(reader.GetDateTime(7)), Utc(reader.GetDateTime(8)), Utc(reader.GetDateTime(9))));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReconciledPeriod>> GetReconciledPeriodsAsync(CancellationToken cancellationToken = default)
    {
        var result = new List<ReconciledPeriod>();
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = "SELECT provider, period_from, period_to, estimated, effective, reconciled_at FROM reconciled_periods ORDER BY provider, period_from";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(new ReconciledPeriod(reader.GetString(0), Utc(reader.GetDateTime(1)), Utc(reader.GetDateTime(2)),
                reader.GetDecimal(3), reader.GetDecimal(4), Utc(reader.GetDateTime(5))));
        }
        return result;
    }
}
