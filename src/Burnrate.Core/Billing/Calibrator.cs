using System.Globalization;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using Burnrate.Rating;
using Burnrate.Storage;

namespace Burnrate.Billing;

/// <summary>What one reconciliation taught.</summary>
/// <param name="Learned">New factors (each replaces the factor of its key).</param>
/// <param name="Periods">The periods now reconciled, per provider.</param>
/// <param name="Skipped">Keys with too little or implausible evidence, each with the reason; their factors are unchanged.</param>
public sealed record CalibrationResult(IReadOnlyList<CalibrationFactor> Learned, IReadOnlyList<ReconciledPeriod> Periods, IReadOnlyList<string> Skipped);

/// <summary>
/// Learns calibration factors from a reconciliation: per provider, usage (compute or network), instance type and
/// capacity, the ratio of the bill's effective cost to the ledger's estimate over the (resource, day)s both sides have.
/// A resource-day the ledger splits across types or capacities (a spot node that fell back to on demand) shares its
/// bill in proportion to the estimate. The factor learned multiplies the one in force, since the estimate was rated
/// with it; reconcile periods in order.
/// </summary>
public sealed class Calibrator(ICostStore store, Calibration current, TimeProvider time) : IReconciliationObserver
{
    /// <summary>Below this estimate (dollars) a key's evidence is too thin to learn from.</summary>
    public const decimal MinimumEstimate = 1m;

    /// <summary>Ratios outside [<see cref="MinimumRatio"/>, <see cref="MaximumRatio"/>] are reported, not applied: a bill that far off is a mapping problem, not a discount.</summary>
    public const decimal MinimumRatio = 0.2m;

    /// <inheritdoc cref="MinimumRatio"/>
    public const decimal MaximumRatio = 5m;

    /// <summary>What the last reconciliation observed taught, or null before one.</summary>
    public CalibrationResult? Result { get; private set; }

    /// <inheritdoc />
    public async Task ObserveAsync(ReconciliationReport report, IReadOnlyList<BillingLine> lines, CancellationToken cancellationToken) =>
        Result = await LearnAsync(store, report, lines, current, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);

    /// <summary>Learns from <paramref name="lines"/> (the bill lines of <paramref name="report"/>) against the ledger.</summary>
    public static async Task<CalibrationResult> LearnAsync(ICostStore store, ReconciliationReport report, IReadOnlyList<BillingLine> lines,
        Calibration current, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentNullException.ThrowIfNull(current);
        var rows = await store.QueryCostsAsync(new CostQuery
        {
            From = report.From,
            To = report.To,
            By = [CostDimension.Cloud, CostDimension.Resource, CostDimension.InstanceType, CostDimension.Capacity, CostDimension.Component],
            Step = TimeSpan.FromDays(1),
        }, cancellationToken).ConfigureAwait(false);

        // The ledger per (provider, node, day, usage), split by (instance type, capacity).
        var ledger = new Dictionary<(string Provider, string Resource, DateTime Day, CalibratedUsage Usage), List<(string Type, CapacityType Capacity, long Nanos)>>();
        foreach (var row in rows)
        {
            if (row.BucketStart is not { } bucket || row.Cost.Nanos == 0)
                continue;
            var component = row.Keys[4];
            CalibratedUsage usage;
            var resource = row.Keys[1];
            if (component == "network")
            {
                usage = CalibratedUsage.Network;
                var egress = resource.IndexOf(":egress:", StringComparison.Ordinal);
                if (egress > 0)
                    resource = resource[..egress];
            }
            else if (component is "gpu" or "compute")
            {
                usage = CalibratedUsage.Compute;
            }
            else
            {
                continue;
            }
            if (!CapacityTypes.TryParse(row.Keys[3], out var capacity))
                continue;
            var key = (row.Keys[0], resource, bucket.UtcDateTime.Date, usage);
            if (!ledger.TryGetValue(key, out var parts))
                ledger[key] = parts = [];
            parts.Add((usage == CalibratedUsage.Network ? "" : row.Keys[2], usage == CalibratedUsage.Network ? CapacityType.OnDemand : capacity, row.Cost.Nanos));
        }

        // The bill's usage lines per (provider, resource, day, usage).
        var bill = new Dictionary<(string, string, DateTime, CalibratedUsage), decimal>();
        foreach (var line in lines)
        {
            if (line.ResourceId is null || !line.ChargeCategory.Equals("Usage", StringComparison.OrdinalIgnoreCase))
                continue;
            var usage = string.Equals(line.ServiceCategory, "Networking", StringComparison.OrdinalIgnoreCase) ? CalibratedUsage.Network : CalibratedUsage.Compute;
            var key = (Reconciler.LedgerProvider(line.Provider), line.ResourceId, line.ChargePeriodStart.UtcDateTime.Date, usage);
            bill[key] = bill.GetValueOrDefault(key) + line.EffectiveCost;
        }

        var sums = new SortedDictionary<(string Provider, CalibratedUsage Usage, string Type, CapacityType Capacity), (decimal Estimated, decimal Effective)>();
        foreach (var (key, effective) in bill)
        {
            if (!ledger.TryGetValue(key, out var parts))
                continue;
            decimal total = parts.Sum(p => p.Nanos);
            foreach (var (type, capacity, nanos) in parts)
            {
                var k = (key.Item1, key.Item4, type, capacity);
                var (e, f) = sums.GetValueOrDefault(k);
                sums[k] = (e + (nanos / (decimal)Money.NanosPerDollar), f + (effective * nanos / total));
            }
        }

        var learned = new List<CalibrationFactor>();
        var skipped = new List<string>();
        foreach (var ((provider, usage, type, capacity), (estimated, effective)) in sums)
        {
            var name = usage == CalibratedUsage.Network ? $"{provider} network" : $"{provider} {type} {capacity.ToName()}";
            if (estimated < MinimumEstimate)
            {
                skipped.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: estimate ${estimated:0.00} is below ${MinimumEstimate:0.00}, too little to learn from"));
                continue;
            }
            var ratio = effective / estimated;
            if (ratio < MinimumRatio || ratio > MaximumRatio)
            {
                skipped.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: the bill is {ratio:0.###}× the estimate, outside [{MinimumRatio}, {MaximumRatio}]; check the bill's mapping (ResourceId, ServiceCategory) before trusting it"));
                continue;
            }
            var inForce = current.Find(provider, usage, type, capacity)?.Factor ?? 1m;
            learned.Add(new CalibrationFactor(provider, usage, type, capacity, decimal.Round(inForce * ratio, 12), estimated, effective, report.From, report.To, now));
        }

        var periods = report.Providers
            .Where(p => p.Lines > 0 && p.Estimated.Nanos > 0)
            .Select(p => new ReconciledPeriod(p.Key, report.From, report.To, p.Estimated.Dollars, p.Effective, now))
            .ToList();
        return new CalibrationResult(learned, periods, skipped);
    }
}

/// <summary>Reconciling with calibration, as the CLI and the API do it: learn, keep, and hand over the new set.</summary>
public static class Calibrations
{
    /// <summary>The calibration the store keeps, or none when the store keeps none.</summary>
    public static async Task<Calibration> LoadAsync(ICostStore store, CancellationToken cancellationToken = default) =>
        store is ICalibrationStore kept
            ? new Calibration(await kept.GetCalibrationAsync(cancellationToken).ConfigureAwait(false))
            : Calibration.None;

    /// <summary>
    /// Reconciles [<paramref name="from"/>, <paramref name="to"/>); when <paramref name="learn"/>, learns factors from it
    /// (relative to <paramref name="current"/>), stores them and the reconciled periods, and returns the calibration
    /// to rate with from now on (<paramref name="current"/> when nothing was learned).
    /// </summary>
    public static async Task<(ReconciliationReport Report, CalibrationResult? Learned, Calibration Calibration)> ReconcileAsync(
        ICostStore store, DateTimeOffset from, DateTimeOffset to, Calibration current, TimeProvider time, bool learn,
        PricingTerms? terms = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(time);
        var calibrator = learn ? new Calibrator(store, current, time) : null;
        var report = await Reconciler.ReconcileAsync(store, from, to, calibrator, terms, cancellationToken).ConfigureAwait(false);
        if (calibrator?.Result is not { } result)
            return (report, null, current);
        if (store is ICalibrationStore kept)
            await kept.SaveCalibrationAsync(result.Learned, result.Periods, cancellationToken).ConfigureAwait(false);
        return (report, result, result.Learned.Count == 0 ? current : current.With(result.Learned));
    }
}
