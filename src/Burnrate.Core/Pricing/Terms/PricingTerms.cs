namespace Burnrate.Pricing.Terms;

/// <summary>
/// A negotiated percentage off a provider's prices (an enterprise discount program, a private pricing agreement):
/// applied to every minute of that provider after reservations and savings plans, as providers apply it.
/// </summary>
/// <param name="Provider">The provider as the ledger spells it (<c>aws</c>, <c>gcp</c>, <c>azure</c>, ...).</param>
/// <param name="Percent">Percent off, in (0, 100).</param>
/// <param name="Capacities">The capacity types it applies to; empty: all.</param>
/// <param name="AppliesToNetwork">Whether data transfer is discounted too.</param>
public sealed record NegotiatedDiscount(string Provider, decimal Percent, IReadOnlyList<CapacityType> Capacities, bool AppliesToNetwork)
{
    /// <summary>Whether the discount covers a node of this provider and capacity.</summary>
    public bool Covers(string provider, CapacityType capacity) =>
        provider.Equals(Provider, StringComparison.OrdinalIgnoreCase) && (Capacities.Count == 0 || Capacities.Contains(capacity));
}

/// <summary>
/// A savings plan: a commitment of <see cref="CommitmentPerHour"/> dollars an hour, spent at the plan's discounted rates.
/// Each minute it covers the eligible on-demand usage of the longest-running nodes first (the baseline), whole nodes
/// while the commitment lasts and a part of the next; usage beyond it is charged on demand.
/// </summary>
/// <param name="Name">A name to show in price sources and the API.</param>
/// <param name="Provider">The provider.</param>
/// <param name="CommitmentPerHour">Dollars per hour committed (at the plan's rates, as providers state it).</param>
/// <param name="DiscountPercent">The plan's rate: this percent below on demand.</param>
/// <param name="InstanceTypes">Instance types it covers (an EC2 instance savings plan names a family: <c>p4d.*</c>); empty: all.</param>
/// <param name="Regions">Regions it covers; empty: all.</param>
/// <param name="Id">The provider's id of the plan (an AWS savings plan ARN, or its last part), by which bills name it; null: bill lines whose ResourceId ends in <c>savingsplan/NAME</c>.</param>
public sealed record SavingsPlan(string Name, string Provider, decimal CommitmentPerHour, decimal DiscountPercent, IReadOnlyList<string> InstanceTypes, IReadOnlyList<string> Regions, string? Id = null)
{
    /// <summary>The ledger's resource id for the plan's unused commitment.</summary>
    public string LedgerResource => "savings-plan/" + Name;

    /// <summary>
    /// Whether a bill's ResourceId names this plan: its <see cref="Id"/> (the whole id, or the part after the last
    /// <c>/</c> of an ARN), or, with no id configured, an id ending in <c>savingsplan/NAME</c>.
    /// </summary>
    public bool IsNamedBy(string resourceId)
    {
        ArgumentNullException.ThrowIfNull(resourceId);
        if (Id is { Length: > 0 } id)
            return resourceId.Equals(id, StringComparison.OrdinalIgnoreCase) || resourceId.EndsWith("/" + id, StringComparison.OrdinalIgnoreCase);
        return resourceId.EndsWith("savingsplan/" + Name, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Whether on-demand usage of this node is eligible.</summary>
    public bool Covers(string provider, string region, string instanceType) =>
        provider.Equals(Provider, StringComparison.OrdinalIgnoreCase)
        && (Regions.Count == 0 || Regions.Contains(region, StringComparer.OrdinalIgnoreCase))
        && (InstanceTypes.Count == 0 || InstanceTypes.Any(t => TypeMatches(t, instanceType)));

    internal static bool TypeMatches(string pattern, string instanceType) =>
        pattern.EndsWith('*')
            ? instanceType.StartsWith(pattern[..^1], StringComparison.OrdinalIgnoreCase)
            : instanceType.Equals(pattern, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// Reserved instances or committed-use discounts: <see cref="Count"/> nodes of one type are charged the reserved rate
/// whenever they run on demand (the longest-running first); more nodes of the type run at on demand.
/// </summary>
/// <param name="Provider">The provider.</param>
/// <param name="InstanceType">The instance (machine) type reserved.</param>
/// <param name="Region">The region, or empty for any (a regional reservation).</param>
/// <param name="Count">How many nodes are covered at once.</param>
/// <param name="PricePerHour">The effective hourly rate of one reserved node (upfront amortized), or null to use <paramref name="DiscountPercent"/>.</param>
/// <param name="DiscountPercent">Percent below on demand, when no price is given.</param>
public sealed record Reservation(string Provider, string InstanceType, string Region, int Count, decimal? PricePerHour, decimal? DiscountPercent)
{
    /// <summary>Whether a node of this provider, region and type can use the reservation.</summary>
    public bool Covers(string provider, string region, string instanceType) =>
        provider.Equals(Provider, StringComparison.OrdinalIgnoreCase)
        && instanceType.Equals(InstanceType, StringComparison.OrdinalIgnoreCase)
        && (Region.Length == 0 || region.Equals(Region, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// Credits: an amount the provider takes off the bill over a period (promotional, support, migration credits). They
/// lower the invoice, not the price of a minute, so live rating keeps them out of the ledger; reconciliation reports
/// them beside the bill's own credit lines.
/// </summary>
public sealed record Credit(string Provider, decimal Amount, DateTimeOffset From, DateTimeOffset To, string Description);

/// <summary>The commitments and discounts a fleet's bills carry (config section <c>commitments:</c>).</summary>
public sealed record PricingTerms
{
    /// <summary>No commitments, no discounts: list and spot prices as they are.</summary>
    public static PricingTerms None { get; } = new();

    public IReadOnlyList<NegotiatedDiscount> Discounts { get; init; } = [];
    public IReadOnlyList<SavingsPlan> SavingsPlans { get; init; } = [];
    public IReadOnlyList<Reservation> Reservations { get; init; } = [];
    public IReadOnlyList<Credit> Credits { get; init; } = [];

    /// <summary>Whether live rates need adjusting at all.</summary>
    public bool AdjustsRates => Discounts.Count > 0 || SavingsPlans.Count > 0 || Reservations.Count > 0;

    /// <summary>The negotiated discount for a provider and capacity, as a multiplier (0.92 for 8 %), or 1.</summary>
    public decimal DiscountMultiplier(string provider, CapacityType capacity)
    {
        var m = 1m;
        foreach (var d in Discounts)
        {
            if (d.Covers(provider, capacity))
                m *= 1m - (d.Percent / 100m);
        }
        return m;
    }

    /// <summary>The negotiated discount on data transfer for a provider, as a multiplier, or 1.</summary>
    public decimal NetworkMultiplier(string provider)
    {
        var m = 1m;
        foreach (var d in Discounts)
        {
            if (d.AppliesToNetwork && d.Provider.Equals(provider, StringComparison.OrdinalIgnoreCase))
                m *= 1m - (d.Percent / 100m);
        }
        return m;
    }
}
