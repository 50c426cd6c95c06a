using System.Globalization;
using System.Text;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Storage.ClickHouse;

/// <summary>
/// Turns a <see cref="CostQuery"/> into one ClickHouse statement over the ledger and its rollups, cut into the same
/// slices as the embedded store (<see cref="CostQueryPlan.Split"/>): whole days from <c>cost_daily</c>, whole hours
/// from <c>cost_hourly</c>, the partial hours at the edges from <c>cost_minutes</c>. Each slice keeps only the
/// newest version of each (period, resource) (see <see cref="ClickHouseSchema"/>).
/// </summary>
/// <remarks>
/// 18.16 has no query parameters, so caller values become literals through <see cref="ClickHouseHttp.Literal"/>;
/// column expressions come from a fixed whitelist. Every slice yields the same column types (Int64, Int64,
/// Decimal(38, 6)) because 18.16 does not unify types across <c>UNION ALL</c>.
/// </remarks>
internal static class ClickHouseQueryPlan
{
    /// <summary>The first and last instants a ClickHouse <c>DateTime</c> holds, for clamping open ranges.</summary>
    internal static readonly DateTime MinTime = DateTime.UnixEpoch;
    internal static readonly DateTime MaxTime = new(2105, 12, 31, 0, 0, 0, DateTimeKind.Utc);

    internal static string Expression(CostDimension dimension) => dimension switch
    {
        CostDimension.Idle => "if(is_idle, 'true', 'false')",
        _ => CostQueryPlan.Expression(dimension),
    };

    /// <summary>
    /// A <c>DateTime</c> literal for a bound compared with whole-second times: rounded up, so that <c>t &gt;= bound</c>
    /// and <c>t &lt; bound</c> mean the same as with the exact instant; clamped to what <c>DateTime</c> holds.
    /// </summary>
    internal static string Time(DateTime value)
    {
        var ticks = value.Ticks % TimeSpan.TicksPerSecond == 0 ? value.Ticks : value.Ticks - (value.Ticks % TimeSpan.TicksPerSecond) + TimeSpan.TicksPerSecond;
        var t = new DateTime(Math.Clamp(ticks, MinTime.Ticks, MaxTime.Ticks), DateTimeKind.Utc);
        return "'" + t.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "'";
    }

    /// <summary>The statement for <paramref name="query"/>; its columns are the keys, the bucket index (with a step), cost, idle cost and GPU-seconds.</summary>
    internal static string Build(CostQuery query, string database, string? cluster, LedgerGrain coarsest = LedgerGrain.Day, LedgerHorizons held = default)
    {
        if (query.Step is { } step && (step <= TimeSpan.Zero || step.Ticks % TimeSpan.TicksPerMinute != 0))
            throw new ArgumentException($"A report step must be a positive whole number of minutes, not {step}.", nameof(query));

        var from = query.From.UtcDateTime;
        var to = query.To.UtcDateTime;
        var allowed = CostQueryPlan.CoarsestFor(from, query.Step);
        var segments = CostQueryPlan.Plan(from, to, allowed < coarsest ? allowed : coarsest, held);

        var keys = new StringBuilder();
        for (var i = 0; i < query.By.Count; i++)
            keys.Append(CultureInfo.InvariantCulture, $"{Expression(query.By[i])} AS k{i}, ");

        var filters = new StringBuilder();
        foreach (var (dimension, values) in query.Filters)
        {
            filters.Append(" AND ");
            if (values.Count == 0)
            {
                filters.Append('0');
                continue;
            }
            filters.Append(Expression(dimension)).Append(" IN (");
            for (var v = 0; v < values.Count; v++)
                filters.Append(v == 0 ? "" : ", ").Append(ClickHouseHttp.Literal(values[v] ?? string.Empty));
            filters.Append(')');
        }

        var sql = new StringBuilder("SELECT ");
        for (var i = 0; i < query.By.Count; i++)
            sql.Append(CultureInfo.InvariantCulture, $"k{i}, ");
        if (query.Step is not null)
            sql.Append("b, ");
        sql.Append("sum(c) AS cost, sum(i) AS idle_cost, sum(g) AS gpu_seconds FROM (");

        if (segments.Count == 0)
            segments.Add(new LedgerSegment(LedgerGrain.Minute, from, from));
        var fromMs = new DateTimeOffset(from).ToUnixTimeMilliseconds();
        for (var s = 0; s < segments.Count; s++)
        {
            var segment = segments[s];
            var (table, time, measures) = segment.Grain switch
            {
                LedgerGrain.Minute => ("cost_minutes", "minute",
                    "cost_nanos AS c, if(is_idle, cost_nanos, toInt64(0)) AS i, if(component = 'gpu', quantity, toDecimal128(0, 6)) AS g"),
                LedgerGrain.Hour => ("cost_hourly", "hour", "cost_nanos AS c, idle_cost_nanos AS i, gpu_seconds AS g"),
                _ => ("cost_daily", "day", "cost_nanos AS c, idle_cost_nanos AS i, gpu_seconds AS g"),
            };
            if (s > 0)
                sql.Append(" UNION ALL ");
            sql.Append("SELECT ").Append(keys);
            if (query.Step is { } bucketStep)
            {
                sql.Append(CultureInfo.InvariantCulture,
                    $"intDiv(toInt64(toUInt32({time})) * 1000 - ({fromMs}), {(long)bucketStep.TotalMilliseconds}) AS b, ");
            }
            var range = $"{time} >= {Time(segment.From)} AND {time} < {Time(segment.To)}";
            sql.Append(measures).Append(CultureInfo.InvariantCulture, $" FROM {database}.{table} WHERE {range}").Append(filters);
            sql.Append(Newest(database, table, cluster, time, range));
        }
        sql.Append(')');

        var groupCount = query.By.Count + (query.Step is null ? 0 : 1);
        if (groupCount > 0)
        {
            sql.Append(" GROUP BY ");
            for (var i = 0; i < query.By.Count; i++)
                sql.Append(CultureInfo.InvariantCulture, $"{(i == 0 ? "" : ", ")}k{i}");
            if (query.Step is not null)
                sql.Append(query.By.Count == 0 ? "b" : ", b");
        }
        // Without grouping columns an aggregate over no rows still yields one row of zeros: drop it.
        sql.Append(" HAVING count() > 0 ORDER BY cost DESC");
        for (var i = 0; i < query.By.Count; i++)
            sql.Append(CultureInfo.InvariantCulture, $", k{i}");
        if (query.Step is not null)
            sql.Append(", b");
        return sql.ToString();
    }

    /// <summary>
    /// The condition that keeps only the newest version of each (<paramref name="time"/>, resource) of
    /// <paramref name="table"/> within <paramref name="range"/>. In a cluster the subquery names the shard's local table:
    /// ClickHouse runs it on each shard, which holds every version of its resources.
    /// </summary>
    internal static string Newest(string database, string table, string? cluster, string time, string range) =>
        $" AND ({time}, resource_id, version) IN (SELECT {time}, resource_id, max(version) FROM {database}.{LocalName(table, cluster)} WHERE {range} GROUP BY {time}, resource_id)";

    internal static string LocalName(string table, string? cluster) => cluster is null ? table : table + "_local";
}
