using Burnrate.Attribution;
using Burnrate.Billing;
using Burnrate.Rating;

namespace Burnrate.Storage;

/// <summary>
/// Where the ledger lives. Implementations: DuckDB (embedded, the default) and ClickHouse (scale-out, docs/scale-out.md).
/// The store never computes prices: it keeps what the rating engine wrote and sums it.
/// </summary>
public interface ICostStore : IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema to the version this build expects. Idempotent.</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes ledger rows. A (minute, resource) is written whole: the batch replaces every row the ledger already holds
    /// for each (minute, resource) it contains, never adds to them — so writing the same minutes twice changes
    /// nothing, and re-rating a minute differently (a late event moved cost from idle to a workload) leaves no stale
    /// row behind. Within a batch, rows are keyed by (minute, resource, GPU, workload, component, segment). Rollups
    /// are brought up to date before the call returns.
    /// </summary>
    Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default);

    /// <summary>
    /// The ledger rows of the minutes in [<paramref name="from"/>, <paramref name="to"/>) as they stand now (for each
    /// (minute, resource) the rows last written), ordered by minute, resource, GPU, workload, component and segment.
    /// The alert ruler (<c>serve --role ruler</c>) reads the newest settled minutes with it.
    /// </summary>
    Task<IReadOnlyList<CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);

    /// <summary>Inserts or replaces workloads (by workload id).</summary>
    Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default);

    /// <summary>Writes per-minute increases of work counters; the same (minute, workload, metric) replaces.</summary>
    Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default);

    /// <summary>Sums the ledger by the query's dimensions over its range, using hourly and daily rollups for whole hours and days.</summary>
    Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default);

    /// <summary>Every workload known, or those matching <paramref name="ids"/>.</summary>
    Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The total increase of each work counter (tokens, steps, samples) per workload over the minutes in
    /// [<paramref name="from"/>, <paramref name="to"/>), for every workload or those in <paramref name="workloadIds"/>;
    /// ordered by workload, then metric.
    /// </summary>
    Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default);

    /// <summary>The first and last minute in the ledger, or null when it is empty.</summary>
    Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores lines of a provider's bill read from <paramref name="sourceFile"/>. Keyed by (source file, the line's
    /// <see cref="BillingLine.SourceRow"/>): importing the same file again replaces its lines, never adds to them.
    /// </summary>
    Task WriteBillingAsync(IReadOnlyList<BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default);

    /// <summary>The stored bill lines whose charge period starts in [<paramref name="from"/>, <paramref name="to"/>), by start, then source.</summary>
    Task<IReadOnlyList<BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);
}

/// <summary>A workload as stored: its identity and people, its lifetime and launch-time estimate.</summary>
public sealed record WorkloadRecord(
    WorkloadInfo Workload,
    DateTimeOffset Started,
    DateTimeOffset? Ended,
    decimal? EstimatePerHour);

/// <summary>The increase of one work counter of one workload during one minute.</summary>
public sealed record WorkMinute(DateTimeOffset Minute, string WorkloadId, string Metric, double Increase);

/// <summary>How much of one work counter a workload did over a range.</summary>
public sealed record WorkTotal(string WorkloadId, string Metric, double Increase);

/// <summary>Dimensions a report can group or filter by.</summary>
public enum CostDimension
{
    Team,
    Project,
    User,
    Workload,
    Cloud,
    Region,
    Gpu,
    InstanceType,
    Capacity,
    Component,
    Cluster,
    Orchestrator,
    Resource,
    Idle,
}

/// <summary>
/// A question for the ledger: cost in [<see cref="From"/>, <see cref="To"/>), grouped by <see cref="By"/>,
/// restricted by <see cref="Filters"/> (dimension = one of the values), optionally in buckets of <see cref="Step"/>.
/// </summary>
public sealed record CostQuery
{
    public required DateTimeOffset From { get; init; }
    public required DateTimeOffset To { get; init; }
    public IReadOnlyList<CostDimension> By { get; init; } = [];
    public IReadOnlyDictionary<CostDimension, IReadOnlyList<string>> Filters { get; init; } = new Dictionary<CostDimension, IReadOnlyList<string>>();
    /// <summary>Bucket width (a whole number of minutes; hours and days use the rollups), or null for one bucket.</summary>
    public TimeSpan? Step { get; init; }
}

/// <summary>One group of a report.</summary>
/// <param name="Keys">The group's value of each dimension of <see cref="CostQuery.By"/>, in order (<c>idle</c> is <c>true</c>/<c>false</c>; the idle workload is empty).</param>
/// <param name="BucketStart">Start of the time bucket, or null when the query has no step.</param>
/// <param name="Cost">Total cost of the group.</param>
/// <param name="IdleCost">The part of <paramref name="Cost"/> that no workload used.</param>
/// <param name="GpuSeconds">GPU-seconds paid for (share-weighted).</param>
public sealed record CostReportRow(
    IReadOnlyList<string> Keys,
    DateTimeOffset? BucketStart,
    Money Cost,
    Money IdleCost,
    decimal GpuSeconds);
