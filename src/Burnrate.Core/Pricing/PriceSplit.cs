namespace Burnrate.Pricing;

/// <summary>
/// Splits an instance price into a GPU part and a CPU/memory ("compute") part, so a GPU's minute can be priced
/// apart from the host's.
/// </summary>
/// <remarks>
/// Where the provider prices GPUs apart (GCP accelerator SKUs) the GPU part is the accelerator's own price, see
/// <see cref="PricedApart"/>. Otherwise the default rule: the compute part is the smaller of half the instance price
/// and the instance's vCPUs and memory at a reference price (GCP N2 list rates in us-central1: $0.031611 per
/// vCPU-hour, $0.004237 per GiB-hour); the rest is the GPUs', shared equally. The 50% cap keeps a GPU instance's GPUs
/// at least half its price where the reference rates would otherwise eat most of a cheap GPU cloud's price.
/// All amounts are $/hour, rounded half away from zero to the nano-dollar.
/// </remarks>
public static class PriceSplit
{
    /// <summary>Reference price of one vCPU, $/hour (GCP N2, us-central1).</summary>
    public const decimal ReferenceVCpuPerHour = 0.031611m;

    /// <summary>Reference price of one GiB of memory, $/hour (GCP N2, us-central1).</summary>
    public const decimal ReferenceMemoryGiBPerHour = 0.004237m;

    /// <summary>The largest share of an instance price the compute part may take under the default rule.</summary>
    public const decimal MaxComputeShare = 0.5m;

    /// <summary>The compute (CPU + memory) part of <paramref name="pricePerHour"/>, $/hour, by the default rule.</summary>
    public static decimal ComputePricePerHour(decimal pricePerHour, int gpuCount, int vCpus, decimal memoryGiB)
    {
        if (gpuCount <= 0)
            return pricePerHour;
        var reference = (Math.Max(vCpus, 0) * ReferenceVCpuPerHour) + (Math.Max(memoryGiB, 0m) * ReferenceMemoryGiBPerHour);
        return Round(Math.Min(pricePerHour * MaxComputeShare, reference));
    }

    /// <summary>
    /// $/hour of one GPU of an instance whose GPUs are not priced apart: (price − compute part) / GPU count;
    /// 0 for an instance without GPUs.
    /// </summary>
    public static decimal GpuPricePerHour(decimal pricePerHour, int gpuCount, int vCpus, decimal memoryGiB)
    {
        if (gpuCount <= 0)
            return 0m;
        var compute = ComputePricePerHour(pricePerHour, gpuCount, vCpus, memoryGiB);
        return Round((pricePerHour - compute) / gpuCount);
    }

    /// <summary>
    /// The instance price and per-GPU price where GPUs are priced apart: instance = machine + GPU count × GPU price.
    /// </summary>
    /// <param name="machinePerHour">$/hour of the machine without GPUs.</param>
    /// <param name="gpuEachPerHour">$/hour of one GPU.</param>
    /// <param name="gpuCount">GPUs attached.</param>
    public static (decimal PricePerHour, decimal GpuPricePerHour) PricedApart(decimal machinePerHour, decimal gpuEachPerHour, int gpuCount) =>
        gpuCount <= 0
            ? (machinePerHour, 0m)
            : (Round(machinePerHour + (gpuCount * gpuEachPerHour)), Round(gpuEachPerHour));

    internal static decimal Round(decimal dollarsPerHour) =>
        decimal.Round(dollarsPerHour, 9, MidpointRounding.AwayFromZero);
}
