using System.Globalization;
using Burnrate.Rating;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Logging;

namespace Burnrate.Storage.ClickHouse;

/// <remarks>
/// Retention on ClickHouse drops whole partitions (18.16 has no TTL, and <c>ALTER ... DELETE</c> is an asynchronous
/// mutation that rewrites every part): the ledger, the hourly rollup and the work counters are partitioned by month,
/// the daily rollup by year, so a month goes once all of it is older than the limit. <c>DROP PARTITION</c> is sent to
/// each shard's local table (a <c>Distributed</c> table cannot drop); with replicas, to one replica of each shard,
/// since a replicated table replicates the drop.
/// </remarks>
public sealed partial class ClickHouseCostStore : ILedgerRetention
{
    private readonly RetentionState _retention = new(HorizonsAt);

    /// <inheritdoc />
    public RetentionPolicy? Retention => _retention.Policy;

    /// <inheritdoc />
    public void UseRetention(RetentionPolicy? policy, TimeProvider time) => _retention.Use(policy, time);

    /// <inheritdoc />
    public LedgerHorizons Held => _retention.Held(Time);

    /// <summary>
    /// Month-granular: minutes, hours and work counters are held from the first of the month that contains the instant
    /// the limit ago, days from the first of that year (the partitions of <see cref="ClickHouseSchema"/>).
    /// </summary>
    internal static LedgerHorizons HorizonsAt(RetentionPolicy policy, DateTimeOffset now) =>
        policy.Horizons(now, static (t, grain) => grain == LedgerGrainHint.Day
            ? new DateTime(t.Year, 1, 1, 0, 0, 0, DateTimeKind.Utc)
            : new DateTime(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc));

    /// <inheritdoc />
    public async Task<RetentionRun> ApplyRetentionAsync(RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        policy.Validate();
        ObjectDisposedException.ThrowIf(_disposed, this);
        var horizons = HorizonsAt(policy, now);
        _retention.Dropped(horizons);
        (ClickHouseTable Table, DateTime? Before)[] tables =
        [
            (ClickHouseSchema.CostMinutes, horizons.Minutes),
            (ClickHouseSchema.WorkMinutes, horizons.Hours),
            (ClickHouseSchema.CostHourly, horizons.Hours),
            (ClickHouseSchema.CostDaily, horizons.Days),
        ];
        var rows = tables.ToDictionary(t => t.Table.Name, _ => 0L, StringComparer.Ordinal);
        var partitions = 0;
        var shardsDone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var server in _client.Servers)
        {
            if (_options.Replicated)
            {
                // One replica per shard: the others replicate the drop.
                var shard = await _client.QueryAsync("SELECT substitution FROM system.macros WHERE macro = 'shard'", cancellationToken, server).ConfigureAwait(false);
                if (shard.Count > 0 && !shardsDone.Add(shard[0][0] ?? ""))
                    continue;
            }
            foreach (var (table, before) in tables)
            {
                if (before is not { } horizon)
                    continue;
                var local = ClickHouseQueryPlan.LocalName(table.Name, _options.Cluster);
                var parts = await _client.QueryAsync($"""
                    SELECT partition_id, sum(rows) FROM system.parts
                    WHERE database = {ClickHouseHttp.Literal(_db)} AND table = {ClickHouseHttp.Literal(local)} AND active
                    GROUP BY partition_id ORDER BY partition_id
                    """, cancellationToken, server).ConfigureAwait(false);
                foreach (var part in parts)
                {
                    var id = part[0]!;
                    if (PartitionEnd(id) is not { } end || end > horizon)
                        continue;
                    await _client.ExecuteAsync($"ALTER TABLE {_db}.{local} DROP PARTITION ID {ClickHouseHttp.Literal(id)}", cancellationToken, server).ConfigureAwait(false);
                    rows[table.Name] += long.Parse(part[1]!, CultureInfo.InvariantCulture);
                    partitions++;
                }
            }
        }
        return new RetentionRun(horizons, rows, partitions);
    }

    /// <summary>Where a partition of <c>toYYYYMM</c> (<c>202401</c>) or <c>toYear</c> (<c>2024</c>) ends; null for any other id.</summary>
    internal static DateTime? PartitionEnd(string id)
    {
        if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            return null;
        if (id.Length == 6 && value % 100 is >= 1 and <= 12)
            return new DateTime(value / 100, value % 100, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1);
        if (id.Length == 4 && value >= 1970)
            return new DateTime(value + 1, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        return null;
    }

    /// <summary>The lines a write may take: none older than the minute horizon (see <see cref="ILedgerRetention.Retention"/>).</summary>
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
