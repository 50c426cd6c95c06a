namespace Burnrate.Telemetry.Mapping;

/// <summary>Why <see cref="TelemetryMapper"/> did not use a sample.</summary>
public enum SampleIgnoreReason
{
    /// <summary>No rule reads this metric (clocks, temperatures, histograms, ...).</summary>
    UnknownMetric,
    /// <summary>DCGM's "not available" value (≥ 9.2e18).</summary>
    NotAvailable,
    /// <summary>NaN, ±Inf, or a negative value where a count or ratio was expected.</summary>
    InvalidValue,
    /// <summary>A label the rule needs (node, pod, gpu, UUID, resource) is missing or empty.</summary>
    MissingLabel,
    /// <summary>A GPU whose host matches no node known from <c>kube_node_labels</c> or <c>burnrate_node_info</c> (yet).</summary>
    GpuOnUnknownNode,
    /// <summary>A node-level sample for a node not known from <c>kube_node_labels</c> or <c>burnrate_node_info</c> (yet).</summary>
    UnknownNode,
    /// <summary>A work counter whose series maps to no known pod.</summary>
    UnknownWorkload,
    /// <summary>A network interface that is not a node's way out (<c>lo</c>, veth and bridge devices).</summary>
    VirtualInterface,
}

/// <summary>Counts of samples the mapper used and ignored, by reason: the basis of its self-metrics.</summary>
public sealed class MapperStats
{
    private readonly long[] _ignored = new long[Enum.GetValues<SampleIgnoreReason>().Length];

    /// <summary>Samples that changed the mapper's state or produced an event.</summary>
    public long Used { get; private set; }

    /// <summary>Samples ignored, all reasons together.</summary>
    public long IgnoredTotal
    {
        get
        {
            long sum = 0;
            foreach (var n in _ignored)
                sum += n;
            return sum;
        }
    }

    /// <summary>Samples ignored for <paramref name="reason"/>.</summary>
    public long Ignored(SampleIgnoreReason reason) => _ignored[(int)reason];

    internal void Use() => Used++;

    internal void Ignore(SampleIgnoreReason reason) => _ignored[(int)reason]++;
}
