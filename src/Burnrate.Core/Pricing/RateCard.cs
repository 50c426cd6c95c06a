namespace Burnrate.Pricing;

/// <summary>Where transferred bytes went, which decides their price.</summary>
public enum TransferKind
{
    /// <summary>To the internet.</summary>
    Internet,
    /// <summary>To another region of the same provider.</summary>
    CrossRegion,
    /// <summary>To another zone of the same region.</summary>
    CrossZone,
    /// <summary>Within the zone (free on every provider we know, but still recorded).</summary>
    SameZone,
}

/// <summary>Per-unit prices for things that are not instances: data transfer and storage.</summary>
public interface IRateCard
{
    /// <summary>$/GB (1e9 bytes) for a transfer out of <paramref name="region"/>.</summary>
    decimal EgressPerGb(string provider, string region, TransferKind kind);

    /// <summary>$/GB-month (730 hours) for a volume or bucket of <paramref name="storageClass"/> (e.g. <c>ssd</c>, <c>hdd</c>, <c>object</c>).</summary>
    decimal StoragePerGbMonth(string provider, string region, string storageClass);
}
