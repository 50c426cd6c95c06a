using System.Globalization;
using Burnrate.Pricing;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;

namespace Burnrate.Agent;

/// <summary>
/// The node a <c>burnrate agent</c> reports for: its name (the <c>Hostname</c> of its GPU series) and the price book keys
/// the server prices it by. Empty strings and a null capacity are left out of <c>burnrate_node_info</c>, where the
/// mapper's defaults apply (docs/metrics.md).
/// </summary>
/// <param name="Name">The node name.</param>
/// <param name="Provider">Lower-case provider (<c>aws</c>, <c>gcp</c>, <c>lambda</c>, ...).</param>
/// <param name="Region">Provider region.</param>
/// <param name="Zone">Availability zone.</param>
/// <param name="InstanceType">Provider instance type, the price book key.</param>
/// <param name="Capacity">Capacity type; null leaves it to the server (on-demand).</param>
/// <param name="Labels">Free labels (<c>team</c>, <c>project</c>, <c>user</c>, <c>cluster</c>, ...), valid Prometheus names, not the fields above.</param>
public sealed record AgentNode(
    string Name,
    string Provider = "",
    string Region = "",
    string Zone = "",
    string InstanceType = "",
    CapacityType? Capacity = null,
    IReadOnlyList<KeyValuePair<string, string>>? Labels = null);

/// <summary>
/// Turns nvidia-smi readings into the series the server's mapper understands: per GPU, DCGM exporter names and labels
/// (telemetry-formats.md §3: <c>gpu</c>, <c>UUID</c>, <c>device</c>, <c>modelName</c>, <c>pci_bus_id</c>,
/// <c>Hostname</c>) with DCGM's units, and one <c>burnrate_node_info</c> for the node.
/// </summary>
public static class AgentSeries
{
    /// <summary>The info metric that makes a node without Kubernetes known (docs/metrics.md).</summary>
    public const string NodeInfoMetric = "burnrate_node_info";

    /// <summary>Label names of <see cref="NodeInfoMetric"/> that carry node fields; free labels may not use them.</summary>
    public static IReadOnlyList<string> ReservedLabels { get; } =
        ["node", "provider", "region", "zone", "instance_type", "capacity_type", "gpus", "gpu_model", "job", "instance"];

    /// <summary>One round: the node's info series (GPU count and model from <paramref name="gpus"/>) and every GPU's series, at <paramref name="at"/>.</summary>
    public static List<MetricSample> Round(AgentNode node, IReadOnlyList<NvidiaSmiGpu> gpus, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(gpus);
        var ms = at.ToUnixTimeMilliseconds();
        var samples = new List<MetricSample>(1 + gpus.Count * 8) { NodeInfo(node, gpus.Count, gpus.Count > 0 ? gpus[0].Name : "", ms) };
        foreach (var gpu in gpus)
            AddGpu(samples, node.Name, gpu, ms);
        return samples;
    }

    /// <summary><c>burnrate_node_info{node, provider, region, zone, instance_type, capacity_type, gpus, gpu_model, labels...} 1</c>.</summary>
    public static MetricSample NodeInfo(AgentNode node, int gpus, string gpuModel, long timestampMs)
    {
        ArgumentNullException.ThrowIfNull(node);
        var labels = new List<(string, string)> { ("node", node.Name), ("gpus", gpus.ToString(CultureInfo.InvariantCulture)) };
        AddIfSet(labels, "provider", node.Provider);
        AddIfSet(labels, "region", node.Region);
        AddIfSet(labels, "zone", node.Zone);
        AddIfSet(labels, "instance_type", node.InstanceType);
        AddIfSet(labels, "capacity_type", node.Capacity?.ToName());
        AddIfSet(labels, "gpu_model", gpuModel);
        foreach (var (name, value) in node.Labels ?? [])
            AddIfSet(labels, name, value);
        return new MetricSample(RemoteWriteEncoder.Series(NodeInfoMetric, [.. labels]), timestampMs, 1);
    }

    /// <summary>Adds the DCGM-named series of one GPU; a reading nvidia-smi did not give (null) has no sample.</summary>
    public static void AddGpu(List<MetricSample> samples, string host, NvidiaSmiGpu gpu, long timestampMs)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(gpu);
        var index = gpu.Index.ToString(CultureInfo.InvariantCulture);
        var labels = new List<(string, string)> { ("gpu", index), ("UUID", gpu.Uuid), ("device", "nvidia" + index), ("Hostname", host) };
        AddIfSet(labels, "modelName", gpu.Name);
        AddIfSet(labels, "pci_bus_id", gpu.PciBusId);
        var identity = labels.ToArray();

        Add("DCGM_FI_DEV_GPU_UTIL", gpu.UtilizationPercent);          // %
        Add("DCGM_FI_DEV_MEM_COPY_UTIL", gpu.MemoryUtilizationPercent); // %
        Add("DCGM_FI_DEV_FB_USED", gpu.MemoryUsedMiB);                 // MiB
        Add("DCGM_FI_DEV_FB_FREE", gpu.MemoryFreeMiB);                 // MiB
        Add("DCGM_FI_DEV_FB_TOTAL", gpu.MemoryTotalMiB);               // MiB
        Add("DCGM_FI_DEV_POWER_USAGE", gpu.PowerWatts);                // W
        Add("DCGM_FI_DEV_GPU_TEMP", gpu.TemperatureCelsius);           // °C
        Add("DCGM_FI_DEV_SM_CLOCK", gpu.SmClockMHz);                   // MHz

        void Add(string name, double? value)
        {
            if (value is { } v)
                samples.Add(new MetricSample(RemoteWriteEncoder.Series(name, identity), timestampMs, v));
        }
    }

    // Remote write allows no empty label values (telemetry-formats.md §1.1).
    private static void AddIfSet(List<(string, string)> labels, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
            labels.Add((name, value));
    }
}
