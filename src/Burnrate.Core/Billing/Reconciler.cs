using Burnrate.Pricing.Terms;
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

/// <summary>
/// A provider's credits over the billed period: what the config's <c>commitments.credits</c> say should come off (each
/// credit's amount spread evenly over its own period, the part inside the billed period), beside the bill's own
/// <c>Credit</c> lines. Credits lower the invoice, not the price of a minute, so the ledger never holds them.
/// </summary>
/// <param name="Provider">The provider, as the ledger spells it.</param>
/// <param name="Configured">Dollars the configured credits take off in the billed period (positive), to the nano-dollar.</param>
/// <param name="Billed">Sum of BilledCost of the bill's <c>Credit</c> lines (FOCUS writes credits negative), exact.</param>
/// <param name="BillLines">The bill's <c>Credit</c> lines.</param>
/// <param name="Descriptions">The configured credits that fall in the period, by description.</param>
public sealed record CreditComparison(string Provider, decimal Configured, decimal Billed, long BillLines, IReadOnlyList<string> Descriptions)
{
    /// <summary>Configured minus what the bill took off: positive when the bill gave less credit than configured.</summary>
    public decimal Missing => Configured + Billed;
}

/// <summary>Estimate against bill over a period: per provider, per team, and per (resource, day).</summary>
/// <param name="From">Start of the billed period (the earliest ChargePeriodStart), UTC day.</param>
/// <param name="To">End of the billed period, exclusive, UTC day.</param>
/// <param name="Providers">Per provider: ledger vs bill.</param>
/// <param name="Teams">Per team (the ledger's team; the bill's <c>team</c> tag, empty when none).</param>
/// <param name="MatchedResourceDays">(resource, day) pairs found on both sides.</param>
/// <param name="UnmatchedBill">Bill lines whose (provider, ResourceId, day) the ledger does not have.</param>
/// <param name="UnmatchedLedger">Ledger (provider, resource, day)s no bill line covers.</param>
/// <param name="Credits">Per provider with configured credits in the period or credit lines in the bill: the two side by side.</param>
public sealed record ReconciliationReport(
    DateTimeOffset From,
    DateTimeOffset To,
    IReadOnlyList<ReconciledGroup> Providers,
    IReadOnlyList<ReconciledGroup> Teams,
    long MatchedResourceDays,
    IReadOnlyList<UnmatchedLines> UnmatchedBill,
    IReadOnlyList<UnmatchedLines> UnmatchedLedger,
    IReadOnlyList<CreditComparison> Credits);

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
    /// for it against the ledger's cost, by provider, team, and (provider, resource, day). With
    /// <paramref name="terms"/>, a savings plan's lines in the bill (ResourceId its ARN) match the ledger's unused
    /// commitment of the plan (<c>savings-plan/NAME</c>), and configured credits are listed beside the bill's.
    /// </summary>
    public static async Task<ReconciliationReport> ReconcileAsync(ICostStore store, DateTimeOffset from, DateTimeOffset to,
        IReconciliationObserver? observer = null, PricingTerms? terms = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        terms ??= PricingTerms.None;
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
            {
                var key = (row.Keys[0], NodeOf(row.Keys[1]), day.UtcDateTime.Date);
                ledgerDays[key] = ledgerDays.GetValueOrDefault(key) + row.Cost.Nanos;
            }
        }

        var matched = new HashSet<(string, string, DateTime)>();
        var unmatchedBill = new SortedDictionary<string, Unmatched>(StringComparer.Ordinal);
        var billedCredits = new SortedDictionary<string, (decimal Billed, long Lines)>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var provider = LedgerProvider(line.Provider);
            if (line.ChargeCategory == "Credit")
            {
                var c = billedCredits.GetValueOrDefault(provider);
                billedCredits[provider] = (c.Billed + line.BilledCost, c.Lines + 1);
            }
            var p = Sum(providers, provider);
            p.Billed += line.BilledCost;
            p.Effective += line.EffectiveCost;
            p.Lines++;
            var t = Sum(teams, line.Team ?? "");
            t.Billed += line.BilledCost;
            t.Effective += line.EffectiveCost;
            t.Lines++;

            var key = (provider, LedgerResource(terms, provider, line.ResourceId ?? ""), line.ChargePeriodStart.UtcDateTime.Date);
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
            [.. unmatchedLedger.Select(kv => kv.Value.ToLines(kv.Key))],
            Credits(terms, dayFrom, dayTo, billedCredits));
        if (observer is not null)
            await observer.ObserveAsync(report, lines, cancellationToken).ConfigureAwait(false);
        return report;
    }

    // A node's egress is ledger resource NODE:egress:KIND; bills charge data transfer to the instance itself.
    private static string NodeOf(string resource)
    {
        var egress = resource.IndexOf(":egress:", StringComparison.Ordinal);
        return egress > 0 ? resource[..egress] : resource;
    }

    // The ledger's id of what a bill line names: a savings plan's ARN is the plan's unused commitment in the ledger; a
    // node's egress (as Burnrate's own FOCUS export names it) is the node.
    private static string LedgerResource(PricingTerms terms, string provider, string resourceId)
    {
        if (resourceId.Length == 0)
            return resourceId;
        resourceId = NodeOf(resourceId);
        foreach (var plan in terms.SavingsPlans)
        {
            if (plan.Provider.Equals(provider, StringComparison.OrdinalIgnoreCase) && plan.IsNamedBy(resourceId))
                return plan.LedgerResource;
        }
        return resourceId;
    }

    // Each configured credit spread evenly over its period: the part of it inside [from, to), to the nano-dollar.
    private static List<CreditComparison> Credits(PricingTerms terms, DateTimeOffset from, DateTimeOffset to,
        SortedDictionary<string, (decimal Billed, long Lines)> billed)
    {
        var configured = new SortedDictionary<string, (decimal Amount, List<string> Descriptions)>(StringComparer.Ordinal);
        foreach (var credit in terms.Credits)
        {
            var start = credit.From > from ? credit.From : from;
            var end = credit.To < to ? credit.To : to;
            if (end <= start || credit.To <= credit.From)
                continue;
            var part = decimal.Round(credit.Amount * (end - start).Ticks / (credit.To - credit.From).Ticks, 9, MidpointRounding.ToEven);
            var provider = credit.Provider.ToLowerInvariant();
            if (!configured.TryGetValue(provider, out var c))
                configured[provider] = c = (0m, []);
            c.Descriptions.Add(credit.Description.Length > 0 ? credit.Description : "credit");
            configured[provider] = (c.Amount + part, c.Descriptions);
        }
        return
        [
            .. configured.Keys.Union(billed.Keys).Order(StringComparer.Ordinal).Select(p =>
            {
                var c = configured.GetValueOrDefault(p, (0m, []));
                var b = billed.GetValueOrDefault(p);
                return new CreditComparison(p, c.Amount, b.Billed, b.Lines, c.Descriptions);
            }),
        ];
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
