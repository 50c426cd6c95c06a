using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;

namespace Burnrate.Telemetry;

/// <summary>
/// One normalized fact about the fleet, at an instant. Receivers (remote write, OTLP, events API, orchestrator
/// connectors) and the simulator produce these; the rating engine is the only consumer that turns them into money.
/// Events carry usage and prices, never costs.
/// </summary>
public abstract record FleetEvent(DateTimeOffset Time);

/// <summary>A machine began to be billed (an exact lifecycle event from an orchestrator or the cloud).</summary>
public sealed record NodeStarted(DateTimeOffset Time, NodeSpec Node) : FleetEvent(Time);

/// <summary>A machine stopped being billed.</summary>
public sealed record NodeStopped(DateTimeOffset Time, string NodeId) : FleetEvent(Time);

/// <summary>
/// Evidence that a machine is alive (a sample from its exporters). A node known only from heartbeats is billed
/// from its first to its last heartbeat; gaps up to the staleness window count as alive.
/// </summary>
public sealed record NodeHeartbeat(DateTimeOffset Time, NodeSpec Node) : FleetEvent(Time);

/// <summary>The capacity type under a running machine changed (spot reclaimed and replaced by on-demand, for example).</summary>
public sealed record CapacityChanged(DateTimeOffset Time, string NodeId, CapacityType Capacity) : FleetEvent(Time);

/// <summary>
/// A new spot (or any) price took effect for an instance type in a region or zone. <paramref name="GpuPricePerHour"/>,
/// when given, is the part of the price each GPU accounts for (an on-prem node's $/GPU-hour); the rest is the node's
/// CPU/memory part. Without it the split is taken from the price book's entry for the same instance, if any.
/// </summary>
public sealed record PriceChanged(DateTimeOffset Time, string Provider, string Region, string Zone, string InstanceType, CapacityType Capacity, decimal PricePerHour,
    decimal? GpuPricePerHour = null) : FleetEvent(Time);

/// <summary>A workload became known; <paramref name="EstimatePerHour"/> is the launch-time estimate in $/hour, if one was given.</summary>
public sealed record WorkloadStarted(DateTimeOffset Time, WorkloadInfo Workload, decimal? EstimatePerHour = null) : FleetEvent(Time);

/// <summary>A workload ended; all its GPU allocations end with it.</summary>
public sealed record WorkloadStopped(DateTimeOffset Time, string WorkloadId) : FleetEvent(Time);

/// <summary>A workload took (part of) one GPU of a node.</summary>
public sealed record GpuAllocated(DateTimeOffset Time, string WorkloadId, string NodeId, int GpuIndex, GpuShare Share) : FleetEvent(Time);

/// <summary>
/// A workload holding no GPU of a node took <paramref name="Cpus"/> of its <paramref name="NodeCpus"/> CPUs (a CPU-only
/// Slurm job on a GPU node): it pays that share of the node's CPU/memory part, out of what the node's GPU holders leave.
/// It ends with the workload or the node.
/// </summary>
public sealed record CpuAllocated(DateTimeOffset Time, string WorkloadId, string NodeId, int Cpus, int NodeCpus) : FleetEvent(Time);

/// <summary>A workload gave back its part of one GPU.</summary>
public sealed record GpuReleased(DateTimeOffset Time, string WorkloadId, string NodeId, int GpuIndex) : FleetEvent(Time);

/// <summary>Measured GPU utilization, 0–1 (DCGM <c>DCGM_FI_DEV_GPU_UTIL</c>/100).</summary>
public sealed record GpuUtilization(DateTimeOffset Time, string NodeId, int GpuIndex, double Utilization) : FleetEvent(Time);

/// <summary>
/// A cumulative work counter of a workload (tokens, requests, steps, samples), as a monotonically increasing
/// total; the unit economics use its increase per minute.
/// </summary>
public sealed record WorkCounter(DateTimeOffset Time, string WorkloadId, string Metric, double Total) : FleetEvent(Time);

/// <summary>Bytes a workload sent off a node, priced per GB from the rate card by <paramref name="Kind"/>.</summary>
public sealed record BytesTransferred(DateTimeOffset Time, string WorkloadId, string NodeId, TransferKind Kind, long Bytes) : FleetEvent(Time);

/// <summary>
/// A volume or bucket of <paramref name="SizeGb"/> GB billed to a workload from this instant (a new size replaces
/// the old one); size 0 ends it.
/// </summary>
public sealed record StorageChanged(DateTimeOffset Time, string VolumeId, string WorkloadId, string Provider, string Region, string StorageClass, decimal SizeGb) : FleetEvent(Time);
