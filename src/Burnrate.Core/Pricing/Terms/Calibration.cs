using System.Collections.Frozen;

namespace Burnrate.Pricing.Terms;

/// <summary>What a calibration factor is for: compute (GPU and node time) or data transfer.</summary>
public enum CalibratedUsage
{
    Compute,
    Network,
}

/// <summary>
/// A learned ratio of what the bill charged (effective cost) to what Burnrate estimated, for one provider, usage,
/// instance type and capacity, and the evidence it was learned from.
/// </summary>
/// <param name="Provider">The provider as the ledger spells it.</param>
/// <param name="Usage">Compute or network.</param>
/// <param name="InstanceType">The instance type (empty for network, or for a provider-wide factor).</param>
/// <param name="Capacity">The capacity type (on demand for network).</param>
/// <param name="Factor">The multiplier live rates get from now on (0.92: the bill charges 8 % less than the list-based estimate).</param>
/// <param name="Estimated">Burnrate's estimate over the evidence, before this factor.</param>
/// <param name="Effective">The bill's effective cost over the same usage.</param>
/// <param name="From">Start of the billed period learned from.</param>
/// <param name="To">End of the billed period learned from.</param>
/// <param name="LearnedAt">When it was learned.</param>
public sealed record CalibrationFactor(
    string Provider,
    CalibratedUsage Usage,
    string InstanceType,
    CapacityType Capacity,
    decimal Factor,
    decimal Estimated,
    decimal Effective,
    DateTimeOffset From,
    DateTimeOffset To,
    DateTimeOffset LearnedAt);

/// <summary>
/// The calibration factors in force: immutable, replaced whole when a reconciliation teaches new ones (so the rating
/// loop reads one consistent set without locks). A rate looks for the factor of its (provider, usage, instance type,
/// capacity), then of its (provider, usage, any type, capacity); without one it is left as priced.
/// </summary>
public sealed class Calibration
{
    private readonly FrozenDictionary<(string Provider, CalibratedUsage Usage, string InstanceType, CapacityType Capacity), CalibrationFactor> _factors;

    /// <summary>No factors: every rate as priced.</summary>
    public static Calibration None { get; } = new([]);

    /// <summary>A calibration of these factors (a later one for the same key wins).</summary>
    public Calibration(IEnumerable<CalibrationFactor> factors)
    {
        ArgumentNullException.ThrowIfNull(factors);
        var map = new Dictionary<(string, CalibratedUsage, string, CapacityType), CalibrationFactor>();
        foreach (var f in factors)
            map[Key(f.Provider, f.Usage, f.InstanceType, f.Capacity)] = f;
        _factors = map.ToFrozenDictionary();
        Factors = [.. map.Values.OrderBy(f => f.Provider, StringComparer.Ordinal).ThenBy(f => f.Usage).ThenBy(f => f.InstanceType, StringComparer.Ordinal).ThenBy(f => f.Capacity)];
    }

    /// <summary>Every factor, ordered by provider, usage, instance type and capacity.</summary>
    public IReadOnlyList<CalibrationFactor> Factors { get; }

    /// <summary>Whether there is any factor.</summary>
    public bool IsEmpty => Factors.Count == 0;

    /// <summary>The factor for a rate, or null when none applies.</summary>
    public CalibrationFactor? Find(string provider, CalibratedUsage usage, string instanceType, CapacityType capacity)
    {
        if (_factors.Count == 0)
            return null;
        if (_factors.TryGetValue(Key(provider, usage, instanceType, capacity), out var exact))
            return exact;
        return _factors.TryGetValue(Key(provider, usage, "", capacity), out var wide) ? wide : null;
    }

    /// <summary>This calibration with <paramref name="learned"/> replacing the factors of the same keys.</summary>
    public Calibration With(IEnumerable<CalibrationFactor> learned) => new(Factors.Concat(learned));

    private static (string, CalibratedUsage, string, CapacityType) Key(string provider, CalibratedUsage usage, string instanceType, CapacityType capacity) =>
        (provider.ToLowerInvariant(), usage, instanceType.ToLowerInvariant(), usage == CalibratedUsage.Network ? CapacityType.OnDemand : capacity);
}
