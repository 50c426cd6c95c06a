using System.Globalization;

namespace Burnrate.Pricing.Terms;

/// <summary>A node that reservations and savings plans may cover for a while (a minute, or the instant of a burn reading).</summary>
/// <param name="NodeId">The node.</param>
/// <param name="Provider">Its provider.</param>
/// <param name="Region">Its region.</param>
/// <param name="InstanceType">Its instance type.</param>
/// <param name="OnDemandPerHour">Its on-demand price, dollars per hour.</param>
/// <param name="Running">The part of the while it runs on demand, in [0, 1].</param>
/// <param name="LaunchedAt">When its current life began: commitments cover the longest-running nodes first.</param>
public readonly record struct CoverageCandidate(string NodeId, string Provider, string Region, string InstanceType, decimal OnDemandPerHour, decimal Running, DateTimeOffset LaunchedAt);

/// <summary>How a node's on-demand rate is changed by the commitments covering it.</summary>
/// <param name="Multiplier">Rate paid per dollar of on-demand rate (0.72 for a node a 28 % savings plan covers whole).</param>
/// <param name="Note">Which commitments cover it and how much, for the ledger's price source.</param>
public readonly record struct Coverage(decimal Multiplier, string Note);

/// <summary>
/// Allocates reservations and savings plans to on-demand nodes the way providers apply them: reservations first (a
/// reservation covers whole nodes of its type), then savings plans (the commitment buys usage at the plan's rate until
/// it is spent). Both go to the longest-running nodes first, so the steady baseline is what commitments cover and
/// bursts are charged on demand; ties by node id, so the allocation is deterministic. A partly covered node pays a
/// blend. Usage the commitments do not reach stays on demand.
/// </summary>
public static class CommitmentCoverage
{
    /// <summary>
    /// Fills <paramref name="result"/> with the coverage of each candidate that some commitment reaches, and returns each
    /// savings plan's commitment left unspent (dollars per hour, by plan name).
    /// </summary>
    public static IReadOnlyDictionary<string, decimal> Allocate(PricingTerms terms, List<CoverageCandidate> candidates, Dictionary<string, Coverage> result)
    {
        ArgumentNullException.ThrowIfNull(terms);
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(result);
        result.Clear();
        var unspent = new Dictionary<string, decimal>(StringComparer.Ordinal);
        if (terms.Reservations.Count == 0 && terms.SavingsPlans.Count == 0)
            return unspent;

        candidates.Sort(static (a, b) =>
        {
            var c = a.LaunchedAt.CompareTo(b.LaunchedAt);
            return c != 0 ? c : string.CompareOrdinal(a.NodeId, b.NodeId);
        });
        var uncovered = new decimal[candidates.Count];
        var paid = new decimal[candidates.Count];
        var notes = new List<string>?[candidates.Count];
        for (var i = 0; i < candidates.Count; i++)
            uncovered[i] = 1m;

        foreach (var r in terms.Reservations)
        {
            var left = r.Count;
            for (var i = 0; i < candidates.Count && left > 0; i++)
            {
                var c = candidates[i];
                if (uncovered[i] < 1m || c.Running <= 0m || c.OnDemandPerHour <= 0m || !r.Covers(c.Provider, c.Region, c.InstanceType))
                    continue;
                var multiplier = r.PricePerHour is { } price ? price / c.OnDemandPerHour : 1m - ((r.DiscountPercent ?? 0m) / 100m);
                paid[i] = multiplier;
                uncovered[i] = 0m;
                (notes[i] ??= []).Add($"reserved:{r.InstanceType}");
                left--;
            }
        }

        foreach (var plan in terms.SavingsPlans)
        {
            var rate = 1m - (plan.DiscountPercent / 100m);
            var commitment = plan.CommitmentPerHour;
            for (var i = 0; i < candidates.Count && commitment > 0m; i++)
            {
                var c = candidates[i];
                if (uncovered[i] <= 0m || c.Running <= 0m || c.OnDemandPerHour <= 0m || !plan.Covers(c.Provider, c.Region, c.InstanceType))
                    continue;
                // What covering the rest of this node costs the plan over the while, at the plan's rate.
                var needed = c.OnDemandPerHour * rate * uncovered[i] * c.Running;
                var take = Math.Min(commitment, needed);
                var fraction = uncovered[i] * (take / needed);
                paid[i] += fraction * rate;
                uncovered[i] -= fraction;
                commitment -= take;
                (notes[i] ??= []).Add(fraction == 1m
                    ? $"savings-plan:{plan.Name}"
                    : string.Create(CultureInfo.InvariantCulture, $"savings-plan:{plan.Name}:{decimal.Round(fraction * 100m, 2)}%"));
            }
            unspent[plan.Name] = unspent.GetValueOrDefault(plan.Name) + commitment;
        }

        for (var i = 0; i < candidates.Count; i++)
        {
            if (notes[i] is { } n)
                result[candidates[i].NodeId] = new Coverage(paid[i] + uncovered[i], string.Join(',', n));
        }
        return unspent;
    }
}
