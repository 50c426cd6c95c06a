using Burnrate.Agent;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Telemetry;
using Burnrate.Telemetry.Mapping;

namespace Burnrate.Tests.Agent;

/// <summary>What the agent sends: DCGM-named GPU series and burnrate_node_info, and what the server's mapper makes of them.</summary>
public sealed class AgentSeriesTests
{
    private static readonly DateTimeOffset s_at = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    private static readonly AgentNode s_node = new("gpu-box-1", "aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.Spot,
        [new("team", "research"), new("cluster", "lab")]);

    private static readonly NvidiaSmiGpu[] s_gpus =
    [
        new(0, "GPU-a", "NVIDIA A100-SXM4-40GB", "00000000:10:1C.0", 87, 35, 19818, 20716, 40960, 301.52, 52, 1410, false),
        // In MIG mode nvidia-smi has no utilization (§6), and this one reads no power either.
        new(1, "GPU-b", "NVIDIA A100-SXM4-40GB", "00000000:10:1D.0", null, null, 11125, 29835, 40960, null, 48, 1410, true),
    ];

    [Fact]
    public void Each_gpu_becomes_dcgm_exporter_series_with_its_labels_and_units_and_missing_readings_are_left_out()
    {
        var samples = AgentSeries.Round(s_node, s_gpus, s_at);

        Assert.All(samples, s => Assert.Equal(s_at.ToUnixTimeMilliseconds(), s.TimestampMs));
        Assert.All(samples, s => Assert.True(s.Labels.Select(l => l.Name).SequenceEqual(s.Labels.Select(l => l.Name).Order(StringComparer.Ordinal)), "labels sorted by name"));
        var gpu0 = samples.Where(s => s.Get("UUID") == "GPU-a").ToDictionary(s => s.Name, s => s.Value);
        Assert.Equal(new Dictionary<string, double>
        {
            ["DCGM_FI_DEV_GPU_UTIL"] = 87,
            ["DCGM_FI_DEV_MEM_COPY_UTIL"] = 35,
            ["DCGM_FI_DEV_FB_USED"] = 19818,
            ["DCGM_FI_DEV_FB_FREE"] = 20716,
            ["DCGM_FI_DEV_FB_TOTAL"] = 40960,
            ["DCGM_FI_DEV_POWER_USAGE"] = 301.52,
            ["DCGM_FI_DEV_GPU_TEMP"] = 52,
            ["DCGM_FI_DEV_SM_CLOCK"] = 1410,
        }, gpu0);
        var util = samples.Single(s => s.Name == "DCGM_FI_DEV_GPU_UTIL");
        Assert.Equal(
            ["Hostname=gpu-box-1", "UUID=GPU-a", "__name__=DCGM_FI_DEV_GPU_UTIL", "device=nvidia0", "gpu=0", "modelName=NVIDIA A100-SXM4-40GB", "pci_bus_id=00000000:10:1C.0"],
            util.Labels.Select(l => $"{l.Name}={l.Value}"));
        Assert.Equal(
            ["DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_TOTAL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK"],
            samples.Where(s => s.Get("UUID") == "GPU-b").Select(s => s.Name).Order(StringComparer.Ordinal));

        var info = samples.Single(s => s.Name == AgentSeries.NodeInfoMetric);
        Assert.Equal(
            ["__name__=burnrate_node_info", "capacity_type=spot", "cluster=lab", "gpu_model=NVIDIA A100-SXM4-40GB", "gpus=2", "instance_type=p4d.24xlarge",
             "node=gpu-box-1", "provider=aws", "region=us-east-1", "team=research", "zone=us-east-1a"],
            info.Labels.Select(l => $"{l.Name}={l.Value}"));
        Assert.Equal(1, info.Value);
    }

    [Fact]
    public void Unset_node_fields_are_left_out_of_the_node_info_since_remote_write_allows_no_empty_values()
    {
        var info = AgentSeries.NodeInfo(new AgentNode("box"), 0, "", 0);

        Assert.Equal(["__name__=burnrate_node_info", "gpus=0", "node=box"], info.Labels.Select(l => $"{l.Name}={l.Value}"));
    }

    [Fact]
    public void The_mapper_makes_the_agents_round_a_known_node_with_its_gpus_and_their_utilization()
    {
        var mapper = new TelemetryMapper();

        var events = mapper.Map(AgentSeries.Round(s_node, s_gpus, s_at));

        var node = Assert.Single(events.OfType<NodeHeartbeat>()).Node;
        Assert.Equal(("gpu-box-1", "aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.Spot, 2, "NVIDIA A100-SXM4-40GB", "lab", "research"),
            (node.Id, node.Provider, node.Region, node.Zone, node.InstanceType, node.Capacity, node.GpuCount, node.GpuModel, node.Cluster, node.Labels!["team"]));
        var utilization = Assert.Single(events.OfType<GpuUtilization>());
        Assert.Equal(("gpu-box-1", 0, 0.87), (utilization.NodeId, utilization.GpuIndex, utilization.Utilization));
        Assert.Equal(0, mapper.Stats.Ignored(SampleIgnoreReason.GpuOnUnknownNode));
        Assert.Equal(0, mapper.Stats.Ignored(SampleIgnoreReason.MissingLabel));
    }
}
