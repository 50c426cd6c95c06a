namespace Burnrate.Simulation.Internal;

// The YAML shape of a scenario file, bound by YamlDotNet with snake_case keys (docs/simulator.md).
// Everything is optional here; ScenarioCompiler validates and turns it into plans.

internal sealed class ScenarioDocument
{
    public string? Id { get; set; }
    public string? Title { get; set; }
    public string? Description { get; set; }
    public string? Signal { get; set; }
    public string? Starts { get; set; }
    public string? Duration { get; set; }
    public List<NodeDocument>? Nodes { get; set; }
    public List<WorkloadDocument>? Workloads { get; set; }
    public List<ActionDocument>? Timeline { get; set; }
}

internal sealed class RepeatDocument
{
    public int Count { get; set; }
    public string? Every { get; set; }
}

internal sealed class NodeDocument
{
    public string? Id { get; set; }
    public string? Provider { get; set; }
    public string? Region { get; set; }
    public string? Zone { get; set; }
    public string? InstanceType { get; set; }
    public string? Capacity { get; set; }
    public int Gpus { get; set; }
    public string? GpuModel { get; set; }
    public string? Cluster { get; set; }
    public string? Account { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public string? Start { get; set; }
    public string? Stop { get; set; }
    public RepeatDocument? Repeat { get; set; }
}

internal sealed class WorkloadDocument
{
    public string? Id { get; set; }
    public string? Orchestrator { get; set; }
    public string? Name { get; set; }
    public string? User { get; set; }
    public string? Team { get; set; }
    public string? Project { get; set; }
    public string? Model { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public decimal? EstimatePerHour { get; set; }
    public string? Start { get; set; }
    public string? Stop { get; set; }
    public double? Utilization { get; set; }
    public double? Jitter { get; set; }
    public List<PlacementDocument>? Placement { get; set; }
    public List<CounterDocument>? Counters { get; set; }
    public List<TransferDocument>? Transfers { get; set; }
    public List<StorageDocument>? Storage { get; set; }
    public RepeatDocument? Repeat { get; set; }
}

internal sealed class PlacementDocument
{
    public string? Node { get; set; }
    public string? Cluster { get; set; }
    public string? Gpus { get; set; }
    public List<int>? Indexes { get; set; }
    public string? Share { get; set; }
}

internal sealed class CounterDocument
{
    public string? Metric { get; set; }
    public double? PerSecond { get; set; }
    public double? PerMinute { get; set; }
}

internal sealed class TransferDocument
{
    public string? Kind { get; set; }
    public decimal Gb { get; set; }
    public string? Node { get; set; }
    public string? At { get; set; }
    public string? Over { get; set; }
}

internal sealed class StorageDocument
{
    public string? Volume { get; set; }
    public string? Class { get; set; }
    public decimal SizeGb { get; set; }
    public string? Provider { get; set; }
    public string? Region { get; set; }
    public bool Keep { get; set; }
}

internal sealed class ActionDocument
{
    public string? At { get; set; }
    public string? Action { get; set; }
    public string? Workload { get; set; }
    public string? Node { get; set; }
    public double? Level { get; set; }
    public string? Metric { get; set; }
    public double? PerSecond { get; set; }
    public double? PerMinute { get; set; }
    public string? Capacity { get; set; }
    public string? Provider { get; set; }
    public string? Region { get; set; }
    public string? Zone { get; set; }
    public string? InstanceType { get; set; }
    public decimal? PricePerHour { get; set; }
    public decimal? Multiplier { get; set; }
    public string? Kind { get; set; }
    public decimal? Gb { get; set; }
    public string? Over { get; set; }
    public string? Volume { get; set; }
    public string? Class { get; set; }
    public decimal? SizeGb { get; set; }
}
