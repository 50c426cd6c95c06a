using System.Globalization;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;

namespace Burnrate.LoadGen;

/// <summary>How a series' value moves from one round (scrape) to the next.</summary>
internal enum ValueKind
{
    /// <summary>Always the same value (kube-state-metrics info series, capacities, requests).</summary>
    Constant,
    /// <summary>A gauge that wanders inside [Min, Max] (utilization, power, temperature, memory).</summary>
    Gauge,
    /// <summary>A counter that grows by about Max per round (energy in mJ).</summary>
    Counter,
}

/// <summary>One series of the fleet: its labels (sorted by name, <c>__name__</c> included) and how its value moves.</summary>
internal sealed record FleetSeries(Label[] Labels, ValueKind Kind, double Min, double Max)
{
    /// <summary>The value of this series (number <paramref name="index"/> of the fleet) in <paramref name="round"/>.</summary>
    public double ValueAt(int index, long round) => Kind switch
    {
        ValueKind.Constant => Min,
        ValueKind.Gauge => Math.Round(Min + (Max - Min) * Noise(index, round), 1),
        _ => Math.Round(Min + round * Max + Max * 0.5 * Noise(index, round)), // grows by 0.5–1.5 × Max a round
    };

    /// <summary>A repeatable number in [0, 1) for (series, round): splitmix64, no shared state between threads.</summary>
    private static double Noise(int index, long round)
    {
        var z = (ulong)index * 0x9E3779B97F4A7C15UL + (ulong)round * 0xBF58476D1CE4E5B9UL + 0x94D049BB133111EBUL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}

/// <summary>
/// A Kubernetes GPU fleet as Prometheus would remote-write it: <c>gpus / 8</c> p4d.24xlarge nodes (8 A100s each) in
/// us-east-1a, with kube-state-metrics node and pod series and one dcgm-exporter per node. Three nodes in four run pods
/// (one 8-GPU pod, two 4-GPU pods or four 2-GPU pods, by node); the fourth is idle. Labels follow
/// docs/metrics.md and reference/telemetry-formats.md §3–§4, target labels (<c>job</c>, <c>instance</c>) included,
/// so the telemetry mapper uses every node, pod and utilization sample.
/// </summary>
internal sealed class Fleet
{
    public const int GpusPerNode = 8;
    public const string InstanceType = "p4d.24xlarge";

    /// <summary>
    /// dcgm-exporter's default fields (telemetry-formats.md §3.1), with the range each reading moves in; the fields
    /// marked <c>Load</c> read zero on a GPU no pod holds.
    /// </summary>
    private static readonly (string Name, ValueKind Kind, double Min, double Max, bool Load)[] s_dcgmFields =
    [
        ("DCGM_FI_DEV_SM_CLOCK", ValueKind.Gauge, 210, 1410, false),
        ("DCGM_FI_DEV_MEM_CLOCK", ValueKind.Constant, 1215, 1215, false),
        ("DCGM_FI_DEV_GPU_TEMP", ValueKind.Gauge, 28, 75, false),
        ("DCGM_FI_DEV_POWER_USAGE", ValueKind.Gauge, 55, 400, false),
        ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", ValueKind.Counter, 1e9, 3_000_000, false),
        ("DCGM_FI_DEV_GPU_UTIL", ValueKind.Gauge, 0, 100, true),
        ("DCGM_FI_DEV_MEM_COPY_UTIL", ValueKind.Gauge, 0, 60, true),
        ("DCGM_FI_DEV_FB_FREE", ValueKind.Gauge, 0, 40_536, false),
        ("DCGM_FI_DEV_FB_USED", ValueKind.Gauge, 0, 40_536, true),
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", ValueKind.Gauge, 0, 1, true),
    ];

    private static readonly string[] s_teams = ["research", "inference", "platform", "vision", "speech", "ads"];

    private Fleet(int nodes, int pods, List<FleetSeries> series, List<int> nodeGroupStarts)
    {
        Nodes = nodes;
        Pods = pods;
        Series = series;
        NodeGroupStarts = nodeGroupStarts;
    }

    public int Nodes { get; }

    public int Gpus => Nodes * GpusPerNode;

    public int Pods { get; }

    /// <summary>Every series, node by node: the node's kube-state-metrics series, its pods' series, its GPUs' series.</summary>
    public IReadOnlyList<FleetSeries> Series { get; }

    /// <summary>Where each node's group of series starts in <see cref="Series"/>.</summary>
    public IReadOnlyList<int> NodeGroupStarts { get; }

    public static Fleet Build(int gpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(gpus, GpusPerNode);
        var nodes = gpus / GpusPerNode;
        var series = new List<FleetSeries>(nodes * 110);
        var starts = new List<int>(nodes);
        var pods = 0;
        const string Ksm = "kube-state-metrics";
        const string KsmInstance = "100.64.0.2:8080";
        for (var n = 0; n < nodes; n++)
        {
            starts.Add(series.Count);
            var node = $"ip-100-65-{n / 250}-{n % 250}.ec2.internal";
            var nodeIp = $"100.65.{n / 250}.{n % 250}";
            series.Add(Constant(1, "kube_node_labels",
                ("instance", KsmInstance), ("job", Ksm), ("node", node),
                ("label_beta_kubernetes_io_arch", "amd64"),
                ("label_karpenter_sh_capacity_type", "on-demand"),
                ("label_karpenter_sh_nodepool", "gpu"),
                ("label_kubernetes_io_hostname", node),
                ("label_node_kubernetes_io_instance_type", InstanceType),
                ("label_nvidia_com_gpu_product", "NVIDIA-A100-SXM4-40GB"),
                ("label_topology_kubernetes_io_region", "us-east-1"),
                ("label_topology_kubernetes_io_zone", "us-east-1a")));
            series.Add(Constant(GpusPerNode, "kube_node_status_capacity",
                ("instance", KsmInstance), ("job", Ksm), ("node", node), ("resource", "nvidia_com_gpu"), ("unit", "integer")));

            // Pods: a layout per node, cycling; the GPUs each pod holds, in index order.
            int[] podGpus = (n % 4) switch
            {
                0 => [8],
                1 => [4, 4],
                2 => [2, 2, 2, 2],
                _ => [],
            };
            var gpuPod = new string?[GpusPerNode];
            var nextGpu = 0;
            for (var p = 0; p < podGpus.Length; p++)
            {
                var team = s_teams[(n + p) % s_teams.Length];
                var pod = $"{team}-train-{n:D5}-{p}";
                var ns = team;
                var uid = $"{n:x8}-{p:x4}-4000-8000-{n * 8 + p:x12}";
                series.Add(Constant(1, "kube_pod_info",
                    ("created_by_kind", "Job"), ("created_by_name", $"{team}-train-{n:D5}"), ("host_ip", nodeIp),
                    ("host_network", "false"), ("instance", KsmInstance), ("job", Ksm), ("namespace", ns), ("node", node),
                    ("pod", pod), ("pod_ip", $"100.96.{n / 250}.{(n % 250) * 4 + p}"), ("priority_class", "batch"), ("uid", uid)));
                series.Add(Constant(1, "kube_pod_labels",
                    ("instance", KsmInstance), ("job", Ksm), ("label_app", "trainer"), ("label_project", $"{team}-p{n % 5}"),
                    ("label_team", team), ("label_user", $"user{n % 40}"), ("namespace", ns), ("pod", pod), ("uid", uid)));
                series.Add(Constant(podGpus[p], "kube_pod_container_resource_requests",
                    ("container", "trainer"), ("instance", KsmInstance), ("job", Ksm), ("namespace", ns), ("node", node),
                    ("pod", pod), ("resource", "nvidia_com_gpu"), ("uid", uid), ("unit", "integer")));
                series.Add(Constant(12 * podGpus[p], "kube_pod_container_resource_requests",
                    ("container", "trainer"), ("instance", KsmInstance), ("job", Ksm), ("namespace", ns), ("node", node),
                    ("pod", pod), ("resource", "cpu"), ("uid", uid), ("unit", "core")));
                series.Add(Constant(137_438_953_472.0 * podGpus[p] / 8, "kube_pod_container_resource_requests",
                    ("container", "trainer"), ("instance", KsmInstance), ("job", Ksm), ("namespace", ns), ("node", node),
                    ("pod", pod), ("resource", "memory"), ("uid", uid), ("unit", "byte")));
                for (var g = 0; g < podGpus[p]; g++)
                    gpuPod[nextGpu++] = pod + "\n" + ns;
                pods++;
            }

            foreach (var (field, kind, min, max, load) in s_dcgmFields)
            {
                for (var g = 0; g < GpusPerNode; g++)
                {
                    var gpu = g.ToString(CultureInfo.InvariantCulture);
                    var labels = new List<(string, string)>
                    {
                        ("DCGM_FI_DRIVER_VERSION", "535.183.01"), ("Hostname", node), ("UUID", GpuUuid(n, g)),
                        ("device", "nvidia" + gpu), ("gpu", gpu), ("instance", nodeIp + ":9400"), ("job", "dcgm-exporter"),
                        ("modelName", "NVIDIA A100-SXM4-40GB"), ("pci_bus_id", $"00000000:{0x10 + g * 0x10:X2}:00.0"),
                    };
                    if (gpuPod[g] is { } holder)
                    {
                        var newline = holder.IndexOf('\n', StringComparison.Ordinal);
                        labels.Add(("container", "trainer"));
                        labels.Add(("namespace", holder[(newline + 1)..]));
                        labels.Add(("pod", holder[..newline]));
                    }
                    var idle = load && gpuPod[g] is null;
                    series.Add(new FleetSeries(RemoteWriteEncoder.Series(field, [.. labels]), idle ? ValueKind.Constant : kind, idle ? 0 : min, idle ? 0 : max));
                }
            }
        }
        return new Fleet(nodes, pods, series, starts);
    }

    /// <summary>A stable UUID-shaped GPU id, as dcgm-exporter prints it.</summary>
    private static string GpuUuid(int node, int gpu) => $"GPU-{node:x8}-{gpu:x4}-4a1e-9c3d-{(node * 8 + gpu) * 2654435761L & 0xFFFFFFFFFFFF:x12}";

    private static FleetSeries Constant(double value, string name, params (string Name, string Value)[] labels) =>
        new(RemoteWriteEncoder.Series(name, labels), ValueKind.Constant, value, value);
}
