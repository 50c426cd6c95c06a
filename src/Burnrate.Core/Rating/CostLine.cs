using Burnrate.Pricing;

namespace Burnrate.Rating;

/// <summary>What a ledger amount pays for.</summary>
public enum CostComponent
{
    /// <summary>The GPU part of a node's price.</summary>
    Gpu,
    /// <summary>The CPU and memory part of a node's price (all of it for a node without GPUs).</summary>
    Compute,
    /// <summary>Volumes and buckets.</summary>
    Storage,
    /// <summary>Data transfer.</summary>
    Network,
    /// <summary>
    /// The part of a savings plan's hourly commitment that the minute's eligible usage left unused: billed whether used
    /// or not, so it is a ledger line of its own (no workload; idle).
    /// </summary>
    Commitment,
}

/// <summary>
/// One row of the per-minute ledger: what one workload (or idle) paid for one component of one resource during
/// (part of) one minute. The key (<see cref="Minute"/>, <see cref="ResourceId"/>, <see cref="GpuIndex"/>,
/// <see cref="WorkloadId"/>, <see cref="Component"/>, <see cref="SegmentStart"/>) is unique: writing the same row
/// twice replaces it.
/// Every amount traces to a rate, a quantity and a span: <see cref="Cost"/> is <see cref="Rate"/> ×
/// <see cref="Seconds"/> / 3600 (to within the nano-dollar carried between minutes) for time-priced components, and
/// <see cref="Quantity"/> × unit price for <see cref="CostComponent.Network"/>.
/// </summary>
public sealed record CostLine
{
    /// <summary>Start of the minute (UTC, whole minute).</summary>
    public required DateTimeOffset Minute { get; init; }
    /// <summary>Seconds into the minute where this segment starts (0 unless a price, capacity or allocation changed within the minute).</summary>
    public required int SegmentStart { get; init; }
    /// <summary>Seconds of the minute this row covers.</summary>
    public required int Seconds { get; init; }
    /// <summary>Node id, volume id, or node id for transfers.</summary>
    public required string ResourceId { get; init; }
    /// <summary>GPU index on the node for <see cref="CostComponent.Gpu"/> rows, else -1.</summary>
    public required int GpuIndex { get; init; }
    /// <summary>The workload, or <see cref="Attribution.WorkloadInfo.IdleId"/> for idle capacity.</summary>
    public required string WorkloadId { get; init; }
    public required CostComponent Component { get; init; }
    /// <summary>The rate this row was charged at (already multiplied by the workload's share), nano-dollars/hour; 0 for transfers.</summary>
    public required HourlyRate Rate { get; init; }
    /// <summary>The workload's part of the resource in this row, in parts per million (1,000,000 = all of it).</summary>
    public required int SharePpm { get; init; }
    /// <summary>Usage quantity: GPU-seconds or node-seconds × share for time-priced rows; bytes for transfers; GB-seconds for storage.</summary>
    public required decimal Quantity { get; init; }
    /// <summary>The amount, nano-dollars.</summary>
    public required Money Cost { get; init; }
    /// <summary>Where the price came from (<see cref="InstancePrice.Source"/>, or the rate card).</summary>
    public required string PriceSource { get; init; }

    // Denormalized dimensions so that reports group without joins.
    public required string Provider { get; init; }
    public required string Region { get; init; }
    public required string InstanceType { get; init; }
    public required CapacityType Capacity { get; init; }
    public required string GpuModel { get; init; }
    public required string Cluster { get; init; }
    public required string Orchestrator { get; init; }
    public required string Team { get; init; }
    public required string Project { get; init; }
    public required string User { get; init; }

    /// <summary>True when no workload used this capacity.</summary>
    public bool IsIdle => WorkloadId.Length == 0;
}
