using Burnrate.Storage;

namespace Burnrate.Reporting;

/// <summary>
/// The answer to a <see cref="CostQuery"/>, in the order every output shows it: by bucket, then most expensive
/// first, then by keys. Renderers (table, CSV, JSON, HTTP API) all start from this.
/// </summary>
public sealed record CostReport
{
    /// <summary>Start of the range (inclusive).</summary>
    public required DateTimeOffset From { get; init; }

    /// <summary>End of the range (exclusive).</summary>
    public required DateTimeOffset To { get; init; }

    /// <summary>The grouping dimensions, in the order of each row's keys.</summary>
    public required IReadOnlyList<CostDimension> By { get; init; }

    /// <summary>Bucket width, or null for one bucket.</summary>
    public TimeSpan? Step { get; init; }

    /// <summary>The groups.</summary>
    public required IReadOnlyList<CostReportRow> Rows { get; init; }

    /// <summary>Sum of all rows' cost.</summary>
    public Money Total => Rows.Aggregate(Money.Zero, (sum, r) => sum + r.Cost);

    /// <summary>Sum of all rows' idle cost.</summary>
    public Money TotalIdle => Rows.Aggregate(Money.Zero, (sum, r) => sum + r.IdleCost);

    /// <summary>Sum of all rows' GPU-seconds.</summary>
    public decimal TotalGpuSeconds => Rows.Sum(r => r.GpuSeconds);

    /// <summary>Runs <paramref name="query"/> against <paramref name="store"/> and orders the rows.</summary>
    public static async Task<CostReport> RunAsync(ICostStore store, CostQuery query, CancellationToken cancellationToken = default)
    {
        var rows = await store.QueryCostsAsync(query, cancellationToken).ConfigureAwait(false);
        return Create(query.From, query.To, query.By, query.Step, rows);
    }

    /// <summary>A report of <paramref name="rows"/>, put in report order.</summary>
    public static CostReport Create(DateTimeOffset from, DateTimeOffset to, IReadOnlyList<CostDimension> by, TimeSpan? step, IEnumerable<CostReportRow> rows) => new()
    {
        From = from,
        To = to,
        By = by,
        Step = step,
        Rows = rows
            .OrderBy(r => r.BucketStart ?? DateTimeOffset.MinValue)
            .ThenByDescending(r => r.Cost)
            .ThenBy(r => string.Join('\u001f', r.Keys), StringComparer.Ordinal)
            .ToArray(),
    };

    /// <summary>GPU-hours of <paramref name="gpuSeconds"/>, rounded to the microhour for display.</summary>
    public static decimal GpuHours(decimal gpuSeconds) => decimal.Round(gpuSeconds / 3600m, 6, MidpointRounding.AwayFromZero);
}
