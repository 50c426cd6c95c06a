using Burnrate.Storage;

namespace Burnrate.Billing;

/// <summary>The estimate and the bill for one group (a provider, a team) over the billed period.</summary>
/// <param name="Key">The provider (as the ledger spells it) or team.</param>
/// <param name="Estimated">Burnrate's ledger cost.</param>
/// <param name="Billed">Sum of BilledCost, exact (as many decimals as the file had).</param>
/// <param name="Effective">Sum of EffectiveCost (amortized, after discounts), exact.</param>
/// <param name="Lines">Bill lines in the group.</param>
public sealed record ReconciledGroup(string Key, Money Estimated, decimal Billed, decimal Effective, long Lines)
{
    /// <summary>(Effective − Estimated) / Estimated, exact; null when nothing was estimated.</summary>
    public decimal? EffectiveVsEstimate => Estimated.Nanos == 0 ? null : (Effective - Estimated.Dollars) / Estimated.Dollars;

    /// <summary>(Billed − Estimated) / Estimated, exact; null when nothing was estimated.</summary>
    public decimal? BilledVsEstimate => Estimated.Nanos == 0 ? null : (Billed - Estimated.Dollars) / Estimated.Dollars;
}

/// <summary>One side's lines that found no partner on the other, for one provider.</summary>
/// <param name="Provider">The provider.</param>
/// <param name="Count">Bill lines (or ledger resource-days).</param>
/// <param name="Billed">Their BilledCost (zero for the ledger side).</param>
/// <param name="Effective">Their EffectiveCost (zero for the ledger side).</param>
/// <param name="Estimated">Their ledger cost (zero for the bill side).</param>
/// <param name="Examples">The first few resource ids (or, for bill lines without one, service names).</param>
public sealed record UnmatchedLines(string Provider, long Count, Money Billed, Money Effective, Money Estimated, IReadOnlyList<string> Examples);

/// <summary>Estimate against bill over a period: per provider, per team, and per (resource, day).</summary>
/// <param name="From">Start of the billed period (the earliest ChargePeriodStart), UTC day.</param>
/// <param name="To">End of the billed period, exclusive, UTC day.</param>
/// <param name="Providers">Per provider: ledger vs bill.</param>
/// <param name="Teams">Per team (the ledger's team; the bill's <c>team</c> tag, empty when none).</param>
/// <param name="MatchedResourceDays">(resource, day) pairs found on both sides.</param>
/// <param name="UnmatchedBill">Bill lines whose (provider, ResourceId, day) the ledger does not have.</param>
/// <param name="UnmatchedLedger">Ledger (provider, resource, day)s no bill line covers.</param>
public sealed record ReconciliationReport(
    DateTimeOffset From,
    DateTimeOffset To,
    IReadOnlyList<ReconciledGroup> Providers,
    IReadOnlyList<ReconciledGroup> Teams,
    long MatchedResourceDays,
    IReadOnlyList<UnmatchedLines> UnmatchedBill,
    IReadOnlyList<UnmatchedLines> UnmatchedLedger);

/// <summary>
/// Where calibration plugs in: learning effective/list ratios per provider, account, SKU and pricing category from a
/// reconciliation and applying them to live rates. Not implemented yet; <see cref="Reconciler"/> calls it when given one.
/// </summary>
public interface IReconciliationObserver
{
    /// <summary>Called once per reconciliation with the report and the bill lines it compared.</summary>
    Task ObserveAsync(ReconciliationReport report, IReadOnlyList<BillingLine> lines, CancellationToken cancellationToken);
}

/// <summary>Compares the ledger with the stored bill lines over a period.</summary>
public static class Reconciler
{
    private const int ExamplesKept = 5;

    /// <summary>
    /// How a FOCUS ProviderName is spelled in the ledger (<c>AWS</c> and <c>Amazon Web Services</c> → <c>aws</c>,
    /// <c>Microsoft</c> → <c>azure</c>, <c>Google Cloud</c> → <c>gcp</c>, <c>Oracle</c> → <c>oci</c>; else lower case).
    /// </summary>
    public static string LedgerProvider(string focusProvider)
    {
        var p = focusProvider.Trim().ToLowerInvariant();
        return p switch
        {
            "aws" or "amazon web services" or "amazon web services, inc." or "amazon" => "aws",
            "microsoft" or "azure" or "microsoft azure" => "azure",
            "google" or "google cloud" or "gcp" or "google cloud platform" => "gcp",
            "oracle" or "oci" or "oracle cloud infrastructure" => "oci",
            _ => p,
        };
    }

    /// <summary>
    /// Reconciles [<paramref name="from"/>, <paramref name="to"/>) (widened to whole UTC days): the bill lines stored
    /// for it against the ledger's cost, by provider, team, and (provider, resource, day).
    /// </summary>
    public static async Task<ReconciliationReport> ReconcileAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to,
        IReconciliationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var dayFrom = new DateTimeOffset(from.UtcDateTime.Date, TimeSpan.Zero);
        var dayTo = new DateTimeOffset(to.UtcDateTime.Date, TimeSpan.Zero);
        if (dayTo < to)
            dayTo = dayTo.AddDays(1);
        if (dayTo <= dayFrom)
            dayTo = dayFrom.AddDays(1);

        var lines = await store.QueryBillingAsync(dayFrom, dayTo, cancellationToken).ConfigureAwait(false);
        var byProvider = await store.QueryCostsAsync(new CostQuery { From = dayFrom, To = dayTo, By = [CostDimension.Cloud] }, cancellationToken).ConfigureAwait(false);
        var byTeam = await store.QueryCostsAsync(new CostQuery { From = dayFrom, To = dayTo, By = [CostDimension.Team] }, cancellationToken).ConfigureAwait(false);
        var byResourceDay = await store.QueryCostsAsync(new CostQuery
        {
            From = dayFrom,
            To = dayTo,
            By = [CostDimension.Cloud, CostDimension.Resource],
            Step = TimeSpan.FromDays(1),
        }, cancellationToken).ConfigureAwait(false);

        var providers = new SortedDictionary<string, Sums>(StringComparer.Ordinal);
        foreach (var row in byProvider)
            Sum(providers, row.Keys[0]).Estimated += row.Cost.Nanos;
        var teams = new SortedDictionary<string, Sums>(StringComparer.Ordinal);
        foreach (var row in byTeam)
            Sum(teams, row.Keys[0]).Estimated += row.Cost.Nanos;

        var ledgerDays = new Dictionary<(string Provider, string Resource, DateTime Day), long>();
        foreach (var row in byResourceDay)
        {
            if (row.Keys[1].Length > 0 && row.BucketStart is { } day)
                ledgerDays[(row.Keys[0], row.Keys[1], day.UtcDateTime.Date)] = ledgerDays.GetValueOrDefault((row.Keys[0], row.Keys[1], day.UtcDateTime.Date)) + row.Cost.Nanos;
        }

        var matched = new HashSet<(string, string, DateTime)>();
        var unmatchedBill = new SortedDictionary<string, Unmatched>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var provider = LedgerProvider(line.Provider);
            var p = Sum(providers, provider);
            p.Billed += line.BilledCost;
            p.Effective += line.EffectiveCost;
            p.Lines++;
            var t = Sum(teams, line.Team ?? "");
            t.Billed += line.BilledCost;
            t.Effective += line.EffectiveCost;
            t.Lines++;

            var key = (provider, line.ResourceId ?? "", line.ChargePeriodStart.UtcDateTime.Date);
            if (line.ResourceId is not null && ledgerDays.ContainsKey(key))
            {
                matched.Add(key);
                continue;
            }
            if (!unmatchedBill.TryGetValue(provider, out var u))
                unmatchedBill[provider] = u = new Unmatched();
            u.Count++;
            u.Billed += line.BilledMoney.Nanos;
            u.Effective += line.EffectiveMoney.Nanos;
            u.Example(line.ResourceId ?? "(no ResourceId: " + line.ServiceName + ")");
        }

        var unmatchedLedger = new SortedDictionary<string, Unmatched>(StringComparer.Ordinal);
        foreach (var ((provider, resource, day), nanos) in ledgerDays.OrderBy(kv => kv.Key.Day).ThenBy(kv => kv.Key.Resource, StringComparer.Ordinal))
        {
            if (matched.Contains((provider, resource, day)))
                continue;
            if (!unmatchedLedger.TryGetValue(provider, out var u))
                unmatchedLedger[provider] = u = new Unmatched();
            u.Count++;
            u.Estimated += nanos;
            u.Example(resource);
        }

        var report = new ReconciliationReport(
            dayFrom, dayTo,
            [.. providers.Select(kv => kv.Value.ToGroup(kv.Key))],
            [.. teams.Select(kv => kv.Value.ToGroup(kv.Key))],
            matched.Count,
            [.. unmatchedBill.Select(kv => kv.Value.ToLines(kv.Key))],
            [.. unmatchedLedger.Select(kv => kv.Value.ToLines(kv.Key))]);
        if (observer is not null)
            await observer.ObserveAsync(report, lines, cancellationToken).ConfigureAwait(false);
        return report;
    }

    private static Sums Sum(SortedDictionary<string, Sums> sums, string key)
    {
        if (!sums.TryGetValue(key, out var s))
            sums[key] = s = new Sums();
        return s;
    }

    private sealed class Sums
    {
        public long Estimated { get; set; }
        public decimal Billed { get; set; }
        public decimal Effective { get; set; }
        public long Lines { get; set; }

        public ReconciledGroup ToGroup(string key) => new(key, new Money(Estimated), Billed, Effective, Lines);
    }

    private sealed class Unmatched
    {
        private readonly List<string> _examples = [];
        public long Count { get; set; }
        public long Billed { get; set; }
        public long Effective { get; set; }
        public long Estimated { get; set; }

        public void Example(string text)
        {
            if (_examples.Count < ExamplesKept && !_examples.Contains(text))
                _examples.Add(text);
        }

        public UnmatchedLines ToLines(string provider) =>
            new(provider, Count, new Money(Billed), new Money(Effective), new Money(Estimated), [.. _examples]);
    }
}
