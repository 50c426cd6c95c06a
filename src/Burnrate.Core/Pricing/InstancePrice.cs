namespace Burnrate.Pricing;

/// <summary>
/// One effective-dated price of an instance type (or a GPU node of an on-prem cluster) for one capacity type
/// in one region, and optionally one zone.
/// </summary>
/// <param name="Provider">Lower-case provider name: <c>aws</c>, <c>gcp</c>, <c>azure</c>, <c>lambda</c>, <c>nebius</c>, <c>runpod</c>, <c>coreweave</c>, or an on-prem cluster's name.</param>
/// <param name="Region">Provider region, e.g. <c>us-east-1</c>.</param>
/// <param name="Zone">Availability zone, or empty for a region-wide price.</param>
/// <param name="InstanceType">Provider instance type, e.g. <c>p5.48xlarge</c>.</param>
/// <param name="Capacity">On-demand, spot or reserved.</param>
/// <param name="PricePerHour">$/hour for the whole instance, machine and GPUs together.</param>
/// <param name="GpuPricePerHour">$/hour of one GPU within <paramref name="PricePerHour"/> (the GPU part of the split).</param>
/// <param name="GpuCount">GPUs in the instance (0 for CPU instances).</param>
/// <param name="GpuModel">GPU model as the catalogs name it (<c>H100</c>, <c>A100-80GB</c>), or empty.</param>
/// <param name="VCpus">vCPUs of the instance.</param>
/// <param name="MemoryGiB">Memory of the instance, GiB.</param>
/// <param name="EffectiveFrom">The first instant this price is in force; it stays in force until the next entry for the same key.</param>
/// <param name="Source">Where the price came from, for tracing a ledger amount back to it (e.g. <c>builtin:aws</c>, <c>skypilot:v9/aws/vms.csv:17</c>, <c>spot-feed</c>).</param>
public sealed record InstancePrice(
    string Provider,
    string Region,
    string Zone,
    string InstanceType,
    CapacityType Capacity,
    decimal PricePerHour,
    decimal GpuPricePerHour,
    int GpuCount,
    string GpuModel,
    int VCpus,
    decimal MemoryGiB,
    DateTimeOffset EffectiveFrom,
    string Source);

/// <summary>
/// The prices in force at any instant. Implementations are safe for concurrent readers and one writer.
/// </summary>
public interface IPriceBook
{
    /// <summary>
    /// The price in force at <paramref name="at"/>: the zone's entry if there is one, else the region's; for spot
    /// with no spot price known, <c>null</c> (the caller decides the fallback). Never a price from another region.
    /// </summary>
    InstancePrice? Find(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset at);

    /// <summary>
    /// The first instant in (<paramref name="after"/>, <paramref name="before"/>) at which the answer of
    /// <see cref="Find"/> for this key changes, or <c>null</c> if it does not change in that span.
    /// </summary>
    DateTimeOffset? NextChange(string provider, string region, string zone, string instanceType, CapacityType capacity, DateTimeOffset after, DateTimeOffset before);

    /// <summary>Adds an effective-dated entry (a later <see cref="InstancePrice.EffectiveFrom"/> supersedes earlier ones for the same key).</summary>
    void Add(InstancePrice price);

    /// <summary>Every entry in force at <paramref name="at"/>, one per key.</summary>
    IReadOnlyList<InstancePrice> InForce(DateTimeOffset at);
}
