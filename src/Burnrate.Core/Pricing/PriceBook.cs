using System.Collections.Concurrent;

namespace Burnrate.Pricing;

/// <summary>
/// The effective-dated price book. Each key (provider, region, zone, instance type, capacity) owns an immutable
/// timeline sorted by <see cref="InstancePrice.EffectiveFrom"/>; a writer replaces a key's timeline with a new one,
/// so readers never lock and never see a half-written timeline. <see cref="Find"/> does at most two hash lookups and
/// two binary searches and allocates nothing.
/// </summary>
/// <remarks>
/// Provider, region, zone and instance type match case-insensitively (ordinal). An entry added with the same key and
/// the same <see cref="InstancePrice.EffectiveFrom"/> as an existing one replaces it (a correction).
/// </remarks>
public sealed class PriceBook : IPriceBook
{
    private readonly ConcurrentDictionary<PriceKey, Timeline> _timelines = new(PriceKeyComparer.Instance);
    private readonly Lock _writeLock = new();

    /// <summary>An empty book.</summary>
    public PriceBook()
    {
    }

    /// <summary>A book holding <paramref name="prices"/>.</summary>
    public PriceBook(IEnumerable<InstancePrice> prices) => AddRange(prices);

    /// <summary>The number of entries in the book, over all keys and dates.</summary>
    public int Count
    {
        get
        {
            var count = 0;
            foreach (var pair in _timelines)
                count += pair.Value.Prices.Length;
            return count;
        }
    }

    /// <inheritdoc />
    public InstancePrice? Find(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset at)
    {
        var ticks = at.UtcTicks;
        if (!string.IsNullOrEmpty(zone)
            && _timelines.TryGetValue(new PriceKey(provider, region, zone, instanceType, capacity), out var zoned))
        {
            var price = zoned.At(ticks);
            if (price is not null)
                return price;
        }

        return _timelines.TryGetValue(new PriceKey(provider, region, "", instanceType, capacity), out var regional)
            ? regional.At(ticks)
            : null;
    }

    /// <inheritdoc />
    public DateTimeOffset? NextChange(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset after, DateTimeOffset before)
    {
        if (before <= after)
            return null;
        Timeline? zoned = null;
        if (!string.IsNullOrEmpty(zone))
            _timelines.TryGetValue(new PriceKey(provider, region, zone, instanceType, capacity), out zoned);
        _timelines.TryGetValue(new PriceKey(provider, region, "", instanceType, capacity), out var regional);
        if (zoned is null && regional is null)
            return null;

        // Find's answer can only change at an effective date of the zone's or the region's timeline; walk those
        // dates in order and report the first where the answer differs from the one just before it. A region date
        // hidden by a zone entry in force is not a change.
        long afterTicks = after.UtcTicks, beforeTicks = before.UtcTicks;
        var current = Resolve(zoned, regional, afterTicks);
        int zi = zoned?.FirstAfter(afterTicks) ?? 0, ri = regional?.FirstAfter(afterTicks) ?? 0;
        while (true)
        {
            var zt = zoned is not null && zi < zoned.Ticks.Length ? zoned.Ticks[zi] : long.MaxValue;
            var rt = regional is not null && ri < regional.Ticks.Length ? regional.Ticks[ri] : long.MaxValue;
            var next = Math.Min(zt, rt);
            if (next >= beforeTicks)
                return null;
            if (zt == next)
                zi++;
            if (rt == next)
                ri++;
            var answer = Resolve(zoned, regional, next);
            if (!ReferenceEquals(answer, current))
                return new DateTimeOffset(next, TimeSpan.Zero);
            current = answer;
        }
    }

    /// <inheritdoc />
    public void Add(InstancePrice price)
    {
        Validate(price);
        lock (_writeLock)
        {
            var key = KeyOf(price);
            _timelines[key] = _timelines.TryGetValue(key, out var existing) ? existing.With(price) : Timeline.Of(price);
        }
    }

    /// <summary>Adds many entries under one write lock (a catalog load).</summary>
    public void AddRange(IEnumerable<InstancePrice> prices)
    {
        ArgumentNullException.ThrowIfNull(prices);
        var byKey = new Dictionary<PriceKey, List<InstancePrice>>(PriceKeyComparer.Instance);
        foreach (var price in prices)
        {
            Validate(price);
            var key = KeyOf(price);
            if (!byKey.TryGetValue(key, out var list))
                byKey[key] = list = [];
            list.Add(price);
        }

        lock (_writeLock)
        {
            foreach (var (key, list) in byKey)
            {
                _timelines.TryGetValue(key, out var existing);
                _timelines[key] = Timeline.Merge(existing, list);
            }
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<InstancePrice> InForce(DateTimeOffset at)
    {
        var ticks = at.UtcTicks;
        var result = new List<InstancePrice>(_timelines.Count);
        foreach (var pair in _timelines)
        {
            var price = pair.Value.At(ticks);
            if (price is not null)
                result.Add(price);
        }

        result.Sort(static (a, b) =>
        {
            var c = string.CompareOrdinal(a.Provider, b.Provider);
            if (c == 0) c = string.CompareOrdinal(a.Region, b.Region);
            if (c == 0) c = string.CompareOrdinal(a.InstanceType, b.InstanceType);
            if (c == 0) c = string.CompareOrdinal(a.Zone, b.Zone);
            if (c == 0) c = a.Capacity.CompareTo(b.Capacity);
            return c;
        });
        return result;
    }

    private static InstancePrice? Resolve(Timeline? zoned, Timeline? regional, long ticks) =>
        zoned?.At(ticks) ?? regional?.At(ticks);

    private static PriceKey KeyOf(InstancePrice price) =>
        new(price.Provider, price.Region, price.Zone ?? "", price.InstanceType, price.Capacity);

    private static void Validate(InstancePrice price)
    {
        ArgumentNullException.ThrowIfNull(price);
        if (string.IsNullOrWhiteSpace(price.Provider) || string.IsNullOrWhiteSpace(price.Region) || string.IsNullOrWhiteSpace(price.InstanceType))
            throw new ArgumentException($"A price needs a provider, region and instance type (source {price.Source}).", nameof(price));
        if (price.PricePerHour < 0 || price.GpuPricePerHour < 0)
            throw new ArgumentException($"A price cannot be negative: {price.InstanceType} in {price.Region} (source {price.Source}).", nameof(price));
    }

    private readonly record struct PriceKey(string Provider, string Region, string Zone, string InstanceType, CapacityType Capacity);

    private sealed class PriceKeyComparer : IEqualityComparer<PriceKey>
    {
        public static readonly PriceKeyComparer Instance = new();

        public bool Equals(PriceKey x, PriceKey y) =>
            x.Capacity == y.Capacity
            && string.Equals(x.InstanceType, y.InstanceType, StringComparison.OrdinalIgnoreCase)
            && string.Equals(x.Region, y.Region, StringComparison.OrdinalIgnoreCase)
            && string.Equals(x.Zone, y.Zone, StringComparison.OrdinalIgnoreCase)
            && string.Equals(x.Provider, y.Provider, StringComparison.OrdinalIgnoreCase);

        public int GetHashCode(PriceKey key) => HashCode.Combine(
            StringComparer.OrdinalIgnoreCase.GetHashCode(key.Provider),
            StringComparer.OrdinalIgnoreCase.GetHashCode(key.Region),
            StringComparer.OrdinalIgnoreCase.GetHashCode(key.Zone),
            StringComparer.OrdinalIgnoreCase.GetHashCode(key.InstanceType),
            key.Capacity);
    }

    /// <summary>One key's entries, immutable, sorted by effective instant (UTC ticks), no two at the same instant.</summary>
    private sealed class Timeline
    {
        private Timeline(long[] ticks, InstancePrice[] prices)
        {
            Ticks = ticks;
            Prices = prices;
        }

        public long[] Ticks { get; }

        public InstancePrice[] Prices { get; }

        public static Timeline Of(InstancePrice price) => new([price.EffectiveFrom.UtcTicks], [price]);

        public static Timeline Merge(Timeline? existing, List<InstancePrice> added)
        {
            // Later additions win over earlier ones at the same instant, so merge the old entries first.
            var byTicks = new SortedDictionary<long, InstancePrice>();
            if (existing is not null)
                for (var i = 0; i < existing.Ticks.Length; i++)
                    byTicks[existing.Ticks[i]] = existing.Prices[i];
            foreach (var price in added)
                byTicks[price.EffectiveFrom.UtcTicks] = price;
            return new Timeline([.. byTicks.Keys], [.. byTicks.Values]);
        }

        public Timeline With(InstancePrice price)
        {
            var ticks = price.EffectiveFrom.UtcTicks;
            var index = Array.BinarySearch(Ticks, ticks);
            if (index >= 0)
            {
                var replaced = (InstancePrice[])Prices.Clone();
                replaced[index] = price;
                return new Timeline(Ticks, replaced);
            }

            index = ~index;
            var newTicks = new long[Ticks.Length + 1];
            var newPrices = new InstancePrice[Prices.Length + 1];
            Array.Copy(Ticks, newTicks, index);
            Array.Copy(Prices, newPrices, index);
            newTicks[index] = ticks;
            newPrices[index] = price;
            Array.Copy(Ticks, index, newTicks, index + 1, Ticks.Length - index);
            Array.Copy(Prices, index, newPrices, index + 1, Prices.Length - index);
            return new Timeline(newTicks, newPrices);
        }

        /// <summary>The entry in force at <paramref name="ticks"/>: the latest with EffectiveFrom &lt;= it.</summary>
        public InstancePrice? At(long ticks)
        {
            var index = Array.BinarySearch(Ticks, ticks);
            if (index < 0)
                index = ~index - 1;
            return index >= 0 ? Prices[index] : null;
        }

        /// <summary>The index of the first entry strictly after <paramref name="ticks"/>.</summary>
        public int FirstAfter(long ticks)
        {
            var index = Array.BinarySearch(Ticks, ticks);
            return index >= 0 ? index + 1 : ~index;
        }
    }
}
