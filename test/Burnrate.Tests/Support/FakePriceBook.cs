using Burnrate.Pricing;

namespace Burnrate.Tests.Support;

/// <summary>A naive price book (linear scans) for tests of the rating engine; the real one is tested on its own.</summary>
internal sealed class FakePriceBook : IPriceBook
{
    private readonly List<InstancePrice> _entries = [];

    public void Add(InstancePrice price) => _entries.Add(price);

    public InstancePrice? Find(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset at) =>
        Latest(provider, region, zone, instanceType, capacity, at) ?? (zone.Length > 0 ? Latest(provider, region, "", instanceType, capacity, at) : null);

    private InstancePrice? Latest(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset at) =>
        _entries.Where(e => e.Provider == provider && e.Region == region && e.Zone == zone && e.InstanceType == instanceType && e.Capacity == capacity && e.EffectiveFrom <= at)
            .OrderBy(e => e.EffectiveFrom).LastOrDefault();

    public DateTimeOffset? NextChange(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset after, DateTimeOffset before)
    {
        var times = _entries.Where(e => e.Provider == provider && e.Region == region && (e.Zone == zone || e.Zone.Length == 0) && e.InstanceType == instanceType && e.Capacity == capacity && e.EffectiveFrom > after && e.EffectiveFrom < before)
            .Select(e => e.EffectiveFrom).ToList();
        return times.Count == 0 ? null : times.Min();
    }

    public IReadOnlyList<InstancePrice> InForce(DateTimeOffset at) => _entries;
}

/// <summary>A rate card with fixed prices.</summary>
internal sealed class FakeRateCard(decimal egressPerGb = 0.09m, decimal crossRegionPerGb = 0.02m, decimal storagePerGbMonth = 0.08m) : IRateCard
{
    public decimal EgressPerGb(string provider, string region, TransferKind kind) => kind switch
    {
        TransferKind.Internet => egressPerGb,
        TransferKind.CrossRegion => crossRegionPerGb,
        TransferKind.CrossZone => 0.01m,
        _ => 0m,
    };

    public decimal StoragePerGbMonth(string provider, string region, string storageClass) => storagePerGbMonth;
}
