using Burnrate.Rating;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;

namespace Burnrate.Storage.DuckDb;

public sealed partial class DuckDbCostStore : ILedgerRetention
{
    private readonly RetentionState _retention = new(HorizonsAt);

    /// <inheritdoc />
    public RetentionPolicy? Retention => _retention.Policy;

    /// <inheritdoc />
    public void UseRetention(RetentionPolicy? policy, TimeProvider time) => _retention.Use(policy, time);

    /// <inheritdoc />
    public LedgerHorizons Held => _retention.Held(Time);

    /// <summary>
    /// DuckDB deletes by time: minutes before the whole hour <see cref="RetentionPolicy.Minutes"/> ago, hours and work
    /// counters before the whole day <see cref="RetentionPolicy.Hours"/> ago, days before the whole day
    /// <see cref="RetentionPolicy.Days"/> ago.
    /// </summary>
    internal static LedgerHorizons HorizonsAt(RetentionPolicy policy, DateTimeOffset now) =>
        policy.Horizons(now, static (t, grain) => CostQueryPlan.FloorTo(t, grain == LedgerGrainHint.Minute ? TimeSpan.TicksPerHour : TimeSpan.TicksPerDay));

    /// <inheritdoc />
    public async Task<RetentionRun> ApplyRetentionAsync(RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        policy.Validate();
        var horizons = HorizonsAt(policy, now);
        // Reports move to the rollups before the minutes go (a concurrent read must never find a hole).
        _retention.Dropped(horizons);
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await InTransactionAsync(async () =>
            {
                rows["cost_minutes"] = await DeleteBeforeAsync("cost_minutes", "minute", horizons.Minutes, cancellationToken).ConfigureAwait(false);
                rows["work_minutes"] = await DeleteBeforeAsync("work_minutes", "minute", horizons.Hours, cancellationToken).ConfigureAwait(false);
                rows["cost_hourly"] = await DeleteBeforeAsync("cost_hourly", "hour", horizons.Hours, cancellationToken).ConfigureAwait(false);
                rows["cost_daily"] = await DeleteBeforeAsync("cost_daily", "day", horizons.Days, cancellationToken).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        return new RetentionRun(horizons, rows, Partitions: 0);
    }

    /// <summary>
    /// Learns at open what an earlier retention run dropped, so a store opened without a policy (<c>burnrate report</c>
    /// on the file) still reads dropped ranges from the rollups: the first hourly row without minutes means minutes
    /// were dropped before the first minute's hour; the first daily row a day before the first hour means hours were.
    /// Cheap when nothing was dropped (the first hour's minutes are found at once).
    /// </summary>
    private async Task LoadDroppedAsync(CancellationToken cancellationToken)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = """
            WITH h AS (SELECT MIN(hour) AS lo, MAX(hour) AS hi FROM cost_hourly), d AS (SELECT MIN(day) AS lo, MAX(day) AS hi FROM cost_daily)
            SELECT h.lo, h.hi, d.lo, d.hi, EXISTS (SELECT 1 FROM cost_minutes m WHERE m.minute >= h.lo AND m.minute < h.lo + INTERVAL 1 HOUR)
            FROM h, d
            """;
        DateTime? hourLo = null, hourHi = null, dayLo = null, dayHi = null;
        var firstHourHasMinutes = true;
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                hourLo = reader.IsDBNull(0) ? null : reader.GetDateTime(0);
                hourHi = reader.IsDBNull(1) ? null : reader.GetDateTime(1);
                dayLo = reader.IsDBNull(2) ? null : reader.GetDateTime(2);
                dayHi = reader.IsDBNull(3) ? null : reader.GetDateTime(3);
                firstHourHasMinutes = hourLo is null || reader.GetBoolean(4);
            }
        }
        DateTime? minutes = null, hours = null;
        if (hourLo is not null && !firstHourHasMinutes)
        {
            using var first = _connection.CreateCommand();
            first.CommandText = "SELECT MIN(minute) FROM cost_minutes";
            var value = await first.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            // Every minute gone: the hourly rollup holds all there is.
            minutes = value is DateTime m ? CostQueryPlan.FloorTo(m, TimeSpan.TicksPerHour) : hourHi!.Value.AddHours(1);
        }
        if (dayLo is { } day && (hourLo is null || day.AddDays(1) <= hourLo))
            hours = hourLo is { } h ? CostQueryPlan.FloorTo(h, TimeSpan.TicksPerDay) : dayHi!.Value.AddDays(1);
        if (hours is { } hh && (minutes is null || minutes < hh))
            minutes = hh;
        _retention.Dropped(new LedgerHorizons(minutes, hours, null));
    }

    // The table and column come from the fixed list above, never from a caller.
    private async Task<long> DeleteBeforeAsync(string table, string column, DateTime? horizon, CancellationToken cancellationToken)
    {
        if (horizon is not { } before)
            return 0;
        using var command = _connection.CreateCommand();
        command.CommandText = $"DELETE FROM {table} WHERE {column} < $before";
        command.Parameters.Add(new DuckDBParameter("before", before));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The lines a write may take: none older than the minute horizon, whose hour would be rebuilt from minutes that
    /// retention dropped. The same list when every line is recent (the usual case).
    /// </summary>
    private IReadOnlyList<CostLine> Retained(IReadOnlyList<CostLine> lines)
    {
        if (Held.Minutes is not { } horizon)
            return lines;
        var kept = RetentionGuard.Retained(lines, horizon);
        if (kept.Count != lines.Count)
            Log.OlderThanRetention(_logger, lines.Count - kept.Count, horizon);
        return kept;
    }
}

/// <summary>Shared by both stores: drops ledger lines older than the minute horizon from a batch.</summary>
internal static class RetentionGuard
{
    internal static IReadOnlyList<CostLine> Retained(IReadOnlyList<CostLine> lines, DateTime horizon)
    {
        var old = 0;
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i].Minute.UtcDateTime < horizon)
                old++;
        }
        if (old == 0)
            return lines;
        var kept = new List<CostLine>(lines.Count - old);
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i].Minute.UtcDateTime >= horizon)
                kept.Add(lines[i]);
        }
        return kept;
    }
}
