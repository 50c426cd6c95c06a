namespace Burnrate.Pricing;

/// <summary>
/// The rate card read from catalog files: egress $/GB by provider and <see cref="TransferKind"/>, storage $/GB-month
/// by provider and storage class, each with optional per-region overrides.
/// </summary>
/// <remarks>
/// Lookups never throw. The order is: the region's override, the provider's rate, the catalog's <c>default</c>
/// provider, then the built-in defaults (<see cref="DefaultInternetEgressPerGb"/> and its siblings, AWS's first-tier
/// list rates, chosen because they are the most common and at the high end, so an unknown provider is not
/// under-costed). <see cref="TransferKind.SameZone"/> is free unless a file says otherwise. An unknown storage class
/// costs what the provider's <c>ssd</c> class costs.
/// </remarks>
public sealed class RateCardTable : IRateCard
{
    /// <summary>Built-in fallback for internet egress, $/GB (AWS first tier).</summary>
    public const decimal DefaultInternetEgressPerGb = 0.09m;

    /// <summary>Built-in fallback for inter-region transfer, $/GB (AWS).</summary>
    public const decimal DefaultCrossRegionEgressPerGb = 0.02m;

    /// <summary>Built-in fallback for cross-zone transfer, $/GB (AWS, each direction).</summary>
    public const decimal DefaultCrossZoneEgressPerGb = 0.01m;

    /// <summary>Built-in fallback for SSD block storage, $/GB-month (AWS gp3).</summary>
    public const decimal DefaultSsdPerGbMonth = 0.08m;

    /// <summary>Built-in fallback for HDD block storage, $/GB-month (AWS st1).</summary>
    public const decimal DefaultHddPerGbMonth = 0.045m;

    /// <summary>Built-in fallback for object storage, $/GB-month (AWS S3 Standard, first tier).</summary>
    public const decimal DefaultObjectPerGbMonth = 0.023m;

    /// <summary>The provider name under which a catalog file gives the rates of providers it does not name.</summary>
    public const string DefaultProvider = "default";

    private readonly Dictionary<string, Rates> _providers;

    internal RateCardTable(Dictionary<string, Rates> providers) => _providers = providers;

    /// <summary>A rate card with only the built-in defaults.</summary>
    public static RateCardTable Defaults { get; } = new(new Dictionary<string, Rates>(StringComparer.OrdinalIgnoreCase));

    /// <summary>The providers (and <c>default</c>) the card has rates for.</summary>
    public IReadOnlyCollection<string> Providers => _providers.Keys;

    /// <inheritdoc />
    public decimal EgressPerGb(string provider, string region, TransferKind kind)
    {
        if (TryProvider(provider, region, (r, out v) => r.Egress.TryGetValue(kind, out v), out var value))
            return value;
        return kind switch
        {
            TransferKind.Internet => DefaultInternetEgressPerGb,
            TransferKind.CrossRegion => DefaultCrossRegionEgressPerGb,
            TransferKind.CrossZone => DefaultCrossZoneEgressPerGb,
            _ => 0m,
        };
    }

    /// <inheritdoc />
    public decimal StoragePerGbMonth(string provider, string region, string storageClass)
    {
        storageClass ??= "";
        if (TryProvider(provider, region, (r, out v) => r.Storage.TryGetValue(storageClass, out v), out var value))
            return value;
        if (TryProvider(provider, region, (r, out v) => r.Storage.TryGetValue("ssd", out v), out value))
            return value;
        return storageClass.ToLowerInvariant() switch
        {
            "hdd" => DefaultHddPerGbMonth,
            "object" => DefaultObjectPerGbMonth,
            _ => DefaultSsdPerGbMonth,
        };
    }

    private delegate bool RateLookup(Rates rates, out decimal value);

    private bool TryProvider(string? provider, string? region, RateLookup lookup, out decimal value)
    {
        if (provider is not null && _providers.TryGetValue(provider, out var rates))
        {
            if (region is not null && rates.Regions.TryGetValue(region, out var regional) && lookup(regional, out value))
                return true;
            if (lookup(rates, out value))
                return true;
        }

        if (_providers.TryGetValue(DefaultProvider, out var defaults) && lookup(defaults, out value))
            return true;
        value = 0m;
        return false;
    }

    /// <summary>One provider's (or one region's) rates; a region's <see cref="Regions"/> is empty.</summary>
    internal sealed class Rates
    {
        public Dictionary<TransferKind, decimal> Egress { get; } = [];

        public Dictionary<string, decimal> Storage { get; } = new(StringComparer.OrdinalIgnoreCase);

        public Dictionary<string, Rates> Regions { get; } = new(StringComparer.OrdinalIgnoreCase);
    }
}
