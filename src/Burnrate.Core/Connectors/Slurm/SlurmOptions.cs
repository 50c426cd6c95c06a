using Burnrate.Pricing;

namespace Burnrate.Connectors.Slurm;

/// <summary>Which output the connector reads from <c>sacct</c>.</summary>
public enum SlurmFormat
{
    /// <summary><c>--json</c>, falling back to <c>-P</c> for good when the JSON output is refused or unreadable.</summary>
    Auto,

    /// <summary><c>sacct --json</c> only.</summary>
    Json,

    /// <summary><c>sacct -P</c> only (clusters whose Slurm has no openapi/data_parser plugins).</summary>
    Parsable,
}

/// <summary>
/// How the nodes matching <see cref="Nodes"/> are priced: an internal rate (on-prem: $/GPU-hour plus $/hour for the
/// rest of the node) or the cloud instance under the node, priced from the price book.
/// </summary>
/// <param name="Nodes">A host list (<c>gpu[01-16]</c>), a glob (<c>gpu-*</c>) or a node name.</param>
/// <param name="Type">The node type's name: the instance type in the ledger (on-prem).</param>
/// <param name="Gpus">GPUs per node, when <c>scontrol</c> does not say.</param>
/// <param name="GpuModel">GPU model (<c>A100</c>), for the ledger and <see cref="SlurmOptions.GpuRates"/>.</param>
/// <param name="GpuHour">$/GPU-hour; null takes <see cref="SlurmOptions.GpuRates"/> by GPU model.</param>
/// <param name="NodeHour">$/hour of the node besides its GPUs (CPU, memory, power, space).</param>
/// <param name="Provider">The cloud under the node (<c>aws</c>); null for on-prem.</param>
/// <param name="Region">The cloud region.</param>
/// <param name="Zone">The cloud zone, or empty.</param>
/// <param name="InstanceType">The cloud instance type (the price book key).</param>
/// <param name="Capacity">On-demand, spot or reserved.</param>
public sealed record SlurmNodeType(
    string Nodes,
    string Type,
    int? Gpus,
    string GpuModel,
    decimal? GpuHour,
    decimal NodeHour,
    string? Provider,
    string Region,
    string Zone,
    string InstanceType,
    CapacityType Capacity);

/// <summary>The Slurm connector's settings (config <c>connectors.slurm</c>, docs/connectors.md).</summary>
public sealed class SlurmOptions
{
    /// <summary>The cluster's name: the region of its on-prem nodes in the ledger and a label of its jobs.</summary>
    public string Cluster { get; init; } = "slurm";

    /// <summary>How often squeue and sacct are polled.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The longest one command may run.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How far back the first poll looks for jobs that ended while Burnrate was not watching.</summary>
    public TimeSpan Lookback { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Where squeue, sacct and scontrol are; empty: on <c>PATH</c>.</summary>
    public string BinDir { get; init; } = "";

    /// <summary>Which sacct output to read.</summary>
    public SlurmFormat Format { get; init; } = SlurmFormat.Auto;

    /// <summary>The provider name of on-prem nodes in the ledger.</summary>
    public string Provider { get; init; } = "onprem";

    /// <summary>$/GPU-hour by GPU model or GRES type (keys lower case); <c>default</c> for any other GPU.</summary>
    public IReadOnlyDictionary<string, decimal> GpuRates { get; init; } = new Dictionary<string, decimal>();

    /// <summary>Node types, first match wins.</summary>
    public IReadOnlyList<SlurmNodeType> NodeTypes { get; init; } = [];

    /// <summary>The workload field the Slurm account fills: <c>project</c> (default), <c>team</c> or <c>none</c>.</summary>
    public string AccountAs { get; init; } = "project";

    /// <summary>Where the connector remembers which jobs it has reported (so a restart reports none twice); null: memory only.</summary>
    public string? StateFile { get; init; }

    /// <summary>The node type of <paramref name="node"/>, or null.</summary>
    public SlurmNodeType? TypeOf(string node)
    {
        foreach (var t in NodeTypes)
        {
            if (Hostlist.Matches(t.Nodes, node))
                return t;
        }
        return null;
    }

    /// <summary>The $/GPU-hour of a GPU model or GRES type: its rate, else <c>default</c>, else null.</summary>
    public decimal? GpuRate(string model)
    {
        if (model.Length > 0 && GpuRates.TryGetValue(model.ToLowerInvariant(), out var rate))
            return rate;
        return GpuRates.TryGetValue("default", out var fallback) ? fallback : null;
    }
}
