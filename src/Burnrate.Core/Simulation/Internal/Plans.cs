using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;

namespace Burnrate.Simulation.Internal;

// A validated scenario, with repeats expanded and offsets parsed. Offsets are from the scenario's start.

internal sealed record ScenarioPlan(
    IReadOnlyList<NodePlan> Nodes,
    IReadOnlyList<WorkloadPlan> Workloads,
    IReadOnlyList<ActionPlan> Timeline,
    TimeSpan? Duration,
    ScenarioAnchor? Anchor);

internal sealed record NodePlan(NodeSpec Spec, TimeSpan Start, TimeSpan? Stop);

/// <summary>Where a workload's GPUs are: a node's GPUs (all, a count, or indexes) or a count first-fit in a cluster.</summary>
internal sealed record PlacementPlan(string? Node, string? Cluster, bool All, int Count, IReadOnlyList<int>? Indexes, GpuShare Share);

internal sealed record CounterPlan(string Metric, double PerSecond);

internal sealed record StoragePlan(string Volume, string StorageClass, decimal SizeGb, string? Provider, string? Region, bool Keep);

internal sealed record WorkloadPlan(
    WorkloadInfo Info,
    decimal? Estimate,
    TimeSpan Start,
    TimeSpan? Stop,
    double Utilization,
    double Jitter,
    IReadOnlyList<PlacementPlan> Placements,
    IReadOnlyList<CounterPlan> Counters,
    IReadOnlyList<StoragePlan> Storage);

internal abstract record ActionPlan(TimeSpan At);

internal sealed record UtilizationAction(TimeSpan At, string Workload, double Level) : ActionPlan(At);

internal sealed record RateAction(TimeSpan At, string Workload, string Metric, double PerSecond) : ActionPlan(At);

internal sealed record CapacityAction(TimeSpan At, string Node, CapacityType Capacity) : ActionPlan(At);

internal sealed record PriceAction(TimeSpan At, string Provider, string Region, string Zone, string InstanceType, CapacityType Capacity, decimal PricePerHour, decimal? Multiplier) : ActionPlan(At);

/// <summary><paramref name="Bytes"/> sent over <paramref name="Over"/> (in one-minute chunks), or at once when zero.</summary>
internal sealed record TransferAction(TimeSpan At, string Workload, string? Node, TransferKind Kind, long Bytes, TimeSpan Over) : ActionPlan(At);

internal sealed record StorageAction(TimeSpan At, string Volume, string Workload, string Provider, string Region, string StorageClass, decimal SizeGb) : ActionPlan(At);
