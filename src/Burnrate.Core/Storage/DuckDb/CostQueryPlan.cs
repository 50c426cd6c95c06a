using System.Globalization;
using System.Text;
using DuckDB.NET.Data;

namespace Burnrate.Storage.DuckDb;

/// <summary>Which table a slice of a query's range is read from.</summary>
internal enum LedgerGrain
{
    Minute,
    Hour,
    Day,
}

/// <summary>A slice [<see cref="From"/>, <see cref="To"/>) of a query's range, read from one table.</summary>
internal readonly record struct LedgerSegment(LedgerGrain Grain, DateTime From, DateTime To);

/// <summary>
/// Turns a <see cref="CostQuery"/> into one parameterized SQL statement over the ledger and its rollups.
/// </summary>
/// <remarks>
/// The range is cut into whole days (read from <c>cost_daily</c>), whole hours around them (<c>cost_hourly</c>) and
/// the partial hours at the edges (<c>cost_minutes</c>), so a 90-day report reads about 90 × groups daily rows plus
/// at most two hours of minutes. Only a fixed whitelist of column expressions is ever spliced into the SQL; every
/// value that comes from the caller travels as a parameter.
/// </remarks>
internal static class CostQueryPlan
{
    /// <summary>The SQL expression, always a string, that a dimension groups and filters on.</summary>
    internal static string Expression(CostDimension dimension) => dimension switch
    {
        CostDimension.Team => "team",
        CostDimension.Project => "project",
        CostDimension.User => "user_name",
        CostDimension.Workload => "workload_id",
        CostDimension.Cloud => "provider",
        CostDimension.Region => "region",
        CostDimension.Gpu => "gpu_model",
        CostDimension.InstanceType => "instance_type",
        CostDimension.Capacity => "capacity",
        CostDimension.Component => "component",
        CostDimension.Cluster => "cluster",
        CostDimension.Orchestrator => "orchestrator",
        CostDimension.Resource => "resource_id",
        CostDimension.Idle => "CASE WHEN is_idle THEN 'true' ELSE 'false' END",
        _ => throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Unknown cost dimension."),
    };

    /// <summary>
    /// Cuts [<paramref name="from"/>, <paramref name="to"/>) into slices, using the coarsest table allowed by
    /// <paramref name="coarsest"/> wherever whole hours or days fit.
    /// </summary>
    internal static List<LedgerSegment> Split(DateTime from, DateTime to, LedgerGrain coarsest)
    {
        var segments = new List<LedgerSegment>(5);
        if (from < to)
            SplitInto(segments, from, to, coarsest);
        return segments;
    }

    private static void SplitInto(List<LedgerSegment> segments, DateTime from, DateTime to, LedgerGrain grain)
    {
        if (grain == LedgerGrain.Minute)
        {
            segments.Add(new LedgerSegment(LedgerGrain.Minute, from, to));
            return;
        }
        var width = grain == LedgerGrain.Day ? TimeSpan.TicksPerDay : TimeSpan.TicksPerHour;
        var finer = grain == LedgerGrain.Day ? LedgerGrain.Hour : LedgerGrain.Minute;
        var wholeFrom = CeilingTo(from, width);
        var wholeTo = FloorTo(to, width);
        if (wholeFrom >= wholeTo)
        {
            SplitInto(segments, from, to, finer);
            return;
        }
        if (from < wholeFrom)
            SplitInto(segments, from, wholeFrom, finer);
        segments.Add(new LedgerSegment(grain, wholeFrom, wholeTo));
        if (wholeTo < to)
            SplitInto(segments, wholeTo, to, finer);
    }

    /// <summary>
    /// The slices of [<paramref name="from"/>, <paramref name="to"/>) given what retention still holds
    /// (<paramref name="held"/>): where the minutes are gone the range is read from the hourly rollup, where the hours
    /// are gone from the daily one. A coarse row counts when it starts inside the range, so each bound before a
    /// horizon moves up to the next whole hour (or day); ranges of whole hours and days are answered exactly as before.
    /// </summary>
    internal static List<LedgerSegment> Plan(DateTime from, DateTime to, LedgerGrain coarsest, LedgerHorizons held)
    {
        var segments = Split(Snap(from, held), Snap(to, held), coarsest);
        if (held.Minutes is null && held.Hours is null)
            return segments;
        var coarsened = new List<LedgerSegment>(segments.Count + 2);
        foreach (var segment in segments)
        {
            if (segment.Grain == LedgerGrain.Minute && held.Minutes is { } minutes && segment.From < minutes)
            {
                AddHours(coarsened, new LedgerSegment(LedgerGrain.Hour, segment.From, Min(segment.To, minutes)), held);
                if (segment.To > minutes)
                    coarsened.Add(segment with { From = minutes });
            }
            else if (segment.Grain == LedgerGrain.Hour)
            {
                AddHours(coarsened, segment, held);
            }
            else
            {
                coarsened.Add(segment);
            }
        }
        return coarsened;
    }

    // An hourly slice, read from days before the hour horizon.
    private static void AddHours(List<LedgerSegment> segments, LedgerSegment hours, LedgerHorizons held)
    {
        if (hours.From >= hours.To)
            return;
        if (held.Hours is { } horizon && hours.From < horizon)
        {
            segments.Add(new LedgerSegment(LedgerGrain.Day, hours.From, Min(hours.To, horizon)));
            if (hours.To > horizon)
                segments.Add(hours with { From = horizon });
            return;
        }
        segments.Add(hours);
    }

    /// <summary>A bound moved to the next whole hour before the minute horizon, to the next whole day before the hour horizon.</summary>
    internal static DateTime Snap(DateTime t, LedgerHorizons held)
    {
        if (held.Hours is { } hours && t < hours)
            return CeilingTo(t, TimeSpan.TicksPerDay);
        if (held.Minutes is { } minutes && t < minutes)
            return CeilingTo(t, TimeSpan.TicksPerHour);
        return t;
    }

    private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;

    internal static DateTime FloorTo(DateTime t, long ticks) => new(t.Ticks - (t.Ticks % ticks), DateTimeKind.Utc);

    internal static DateTime CeilingTo(DateTime t, long ticks) =>
        t.Ticks % ticks == 0 ? new DateTime(t.Ticks, DateTimeKind.Utc) : new DateTime(t.Ticks - (t.Ticks % ticks) + ticks, DateTimeKind.Utc);

    /// <summary>
    /// The coarsest table whose rows never straddle a bucket boundary: with buckets of <paramref name="step"/>
    /// starting at <paramref name="from"/>, a daily row may be used only if every boundary falls on midnight UTC.
    /// </summary>
    internal static LedgerGrain CoarsestFor(DateTime from, TimeSpan? step)
    {
        if (step is not { } s)
            return LedgerGrain.Day;
        if (s.Ticks % TimeSpan.TicksPerDay == 0 && from.Ticks % TimeSpan.TicksPerDay == 0)
            return LedgerGrain.Day;
        if (s.Ticks % TimeSpan.TicksPerHour == 0 && from.Ticks % TimeSpan.TicksPerHour == 0)
            return LedgerGrain.Hour;
        return LedgerGrain.Minute;
    }

    /// <summary>Builds the statement for <paramref name="query"/> into <paramref name="command"/>.</summary>
    /// <param name="query">The question.</param>
    /// <param name="command">Receives the SQL and its parameters.</param>
    /// <param name="coarsest">The coarsest table allowed; <see cref="LedgerGrain.Minute"/> reads raw minutes only (the benchmark's baseline).</param>
    /// <param name="held">What retention still holds (<see cref="Plan"/>); default: everything.</param>
    internal static void Build(CostQuery query, DuckDBCommand command, LedgerGrain coarsest = LedgerGrain.Day, LedgerHorizons held = default)
    {
        if (query.Step is { } step && (step <= TimeSpan.Zero || step.Ticks % TimeSpan.TicksPerMinute != 0))
            throw new ArgumentException($"A report step must be a positive whole number of minutes, not {step}.", nameof(query));

        var from = query.From.UtcDateTime;
        var to = query.To.UtcDateTime;
        var allowed = CoarsestFor(from, query.Step);
        var segments = Plan(from, to, allowed < coarsest ? allowed : coarsest, held);

        var keys = new StringBuilder();
        for (var i = 0; i < query.By.Count; i++)
            keys.Append(CultureInfo.InvariantCulture, $"{Expression(query.By[i])} AS k{i}, ");

        var filters = new StringBuilder();
        var filterIndex = 0;
        foreach (var (dimension, values) in query.Filters)
        {
            filters.Append(" AND ");
            if (values.Count == 0)
            {
                // "one of no values" matches nothing.
                filters.Append("FALSE");
                continue;
            }
            filters.Append(Expression(dimension)).Append(" IN (");
            for (var v = 0; v < values.Count; v++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"f{filterIndex}_{v}");
                filters.Append(v == 0 ? "$" : ", $").Append(name);
                command.Parameters.Add(new DuckDBParameter(name, values[v] ?? string.Empty));
            }
            filters.Append(')');
            filterIndex++;
        }

        if (query.Step is { } bucketStep)
        {
            command.Parameters.Add(new DuckDBParameter("from_ms", new DateTimeOffset(from).ToUnixTimeMilliseconds()));
            command.Parameters.Add(new DuckDBParameter("step_ms", (long)bucketStep.TotalMilliseconds));
        }

        var sql = new StringBuilder("SELECT ");
        for (var i = 0; i < query.By.Count; i++)
            sql.Append(CultureInfo.InvariantCulture, $"k{i}, ");
        if (query.Step is not null)
            sql.Append("b, ");
        sql.Append("CAST(SUM(cost_nanos) AS BIGINT) AS cost, CAST(SUM(idle_cost_nanos) AS BIGINT) AS idle_cost, SUM(gpu_seconds) AS gpu_seconds FROM (");

        if (segments.Count == 0)
        {
            // An empty range still needs a well-typed, empty source.
            segments.Add(new LedgerSegment(LedgerGrain.Minute, from, from));
        }
        for (var i = 0; i < segments.Count; i++)
        {
            var segment = segments[i];
            var (table, time, measures) = segment.Grain switch
            {
                LedgerGrain.Minute => ("cost_minutes", "minute",
                    "cost_nanos, CASE WHEN is_idle THEN cost_nanos ELSE 0 END AS idle_cost_nanos, CASE WHEN component = 'gpu' THEN quantity ELSE 0 END AS gpu_seconds"),
                LedgerGrain.Hour => ("cost_hourly", "hour", "cost_nanos, idle_cost_nanos, gpu_seconds"),
                _ => ("cost_daily", "day", "cost_nanos, idle_cost_nanos, gpu_seconds"),
            };
            if (i > 0)
                sql.Append(" UNION ALL ");
            sql.Append("SELECT ").Append(keys);
            if (query.Step is not null)
                sql.Append(CultureInfo.InvariantCulture, $"(epoch_ms({time}) - $from_ms) // $step_ms AS b, ");
            sql.Append(CultureInfo.InvariantCulture, $"{measures} FROM {table} WHERE {time} >= $lo{i} AND {time} < $hi{i}").Append(filters);
            command.Parameters.Add(new DuckDBParameter(string.Create(CultureInfo.InvariantCulture, $"lo{i}"), segment.From));
            command.Parameters.Add(new DuckDBParameter(string.Create(CultureInfo.InvariantCulture, $"hi{i}"), segment.To));
        }
        sql.Append(") AS slices");

        var groupCount = query.By.Count + (query.Step is null ? 0 : 1);
        if (groupCount > 0)
        {
            sql.Append(" GROUP BY ");
            for (var i = 0; i < query.By.Count; i++)
                sql.Append(CultureInfo.InvariantCulture, $"{(i == 0 ? "" : ", ")}k{i}");
            if (query.Step is not null)
                sql.Append(query.By.Count == 0 ? "b" : ", b");
        }
        // Without grouping columns an aggregate over no rows still yields one row of NULLs: drop it.
        sql.Append(" HAVING COUNT(*) > 0 ORDER BY cost DESC");
        for (var i = 0; i < query.By.Count; i++)
            sql.Append(CultureInfo.InvariantCulture, $", k{i}");
        if (query.Step is not null)
            sql.Append(", b");
        command.CommandText = sql.ToString();
    }
}
