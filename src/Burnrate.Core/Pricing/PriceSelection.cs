namespace Burnrate.Pricing;

/// <summary>How <c>burnrate prices</c> and <c>GET /api/v1/prices</c> filter and order the price book.</summary>
public static class PriceSelection
{
    /// <summary>
    /// Filters case-insensitively (GPU model by prefix: <c>H100</c> matches H100 and H100-SXM, not A100; the rest
    /// exactly; null or blank: no filter) and sorts by cloud, region, instance type, capacity, zone.
    /// </summary>
    public static IReadOnlyList<InstancePrice> Select(IEnumerable<InstancePrice> prices, string? gpu, string? cloud, string? region, CapacityType? capacity) =>
        prices
            .Where(p => string.IsNullOrWhiteSpace(gpu) || p.GpuModel.StartsWith(gpu.Trim(), StringComparison.OrdinalIgnoreCase))
            .Where(p => string.IsNullOrWhiteSpace(cloud) || p.Provider.Equals(cloud.Trim(), StringComparison.OrdinalIgnoreCase))
            .Where(p => string.IsNullOrWhiteSpace(region) || p.Region.Equals(region.Trim(), StringComparison.OrdinalIgnoreCase))
            .Where(p => capacity is null || p.Capacity == capacity)
            .OrderBy(p => p.Provider, StringComparer.OrdinalIgnoreCase)
            .ThenBy(p => p.Region, StringComparer.OrdinalIgnoreCase)
            .ThenBy(p => p.InstanceType, StringComparer.OrdinalIgnoreCase)
            .ThenBy(p => p.Capacity)
            .ThenBy(p => p.Zone, StringComparer.OrdinalIgnoreCase)
            .ToArray();
}
