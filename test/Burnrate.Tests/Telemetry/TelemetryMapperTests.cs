using System.Text;
using Burnrate.Configuration;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Protocols.Exposition;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Burnrate.Telemetry.Mapping;

namespace Burnrate.Tests.Telemetry;

/// <summary>The exporters' fixture pages, scraped as Prometheus would, through the mapper (and on into the rating engine).</summary>
public sealed class TelemetryMapperTests
{
    private const string SpotNode = "ip-10-0-1-23.ec2.internal";     // p4d.24xlarge, Karpenter spot, runs the vLLM pod
    private const string OnDemandNode = "ip-10-0-2-41.ec2.internal"; // p5.48xlarge, EKS ON_DEMAND, runs the MIG trainer
    private const string LlamaPod = "llama-serve-7d9f8c6b5-x2kqp";
    private const string Llama = "k8s:inference/" + LlamaPod;
    private const string Trainer = "k8s:ml-research/train-resnet-0";
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// One fixture page as Prometheus stores it after a scrape: the target labels added, and (honor_labels off) an
    /// exporter label that collides with a target label renamed to <c>exported_*</c>.
    /// </summary>
    private static List<MetricSample> Scrape(string fixture, DateTimeOffset at, params (string Name, string Value)[] target) =>
        ScrapeText(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Protocols", "Fixtures", fixture)), at, target);

    private static List<MetricSample> ScrapeText(string page, DateTimeOffset at, params (string Name, string Value)[] target)
    {
        var result = new ExpositionParser(strict: true).Parse(Encoding.UTF8.GetBytes(page), at.ToUnixTimeMilliseconds());
        var samples = new List<MetricSample>();
        foreach (var s in result.Samples)
        {
            var labels = new List<Label>();
            foreach (var l in s.Labels)
            {
                var collides = Array.Exists(target, t => t.Name == l.Name);
                labels.Add(collides ? new Label("exported_" + l.Name, l.Value) : l);
            }
            foreach (var (name, value) in target)
                labels.Add(new Label(name, value));
            labels.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            samples.Add(s with { Labels = [.. labels] });
        }
        return samples;
    }

    /// <summary>Every exporter of the fixture cluster, scraped once at <paramref name="at"/>.</summary>
    private static List<MetricSample> Cluster(DateTimeOffset at, double transmitExtra = 0)
    {
        var batch = new List<MetricSample>();
        batch.AddRange(Scrape("kube-state-metrics.prom", at, ("instance", "10.244.0.5:8080"), ("job", "kube-state-metrics")));
        // dcgm-exporter behind a ServiceMonitor: pod/namespace name the exporter, the workload moves to exported_pod.
        batch.AddRange(Scrape("dcgm-gpus.prom", at, ("instance", "10.244.1.3:9400"), ("job", "gpu-metrics"),
            ("namespace", "gpu-operator"), ("pod", "nvidia-dcgm-exporter-x7k2p"), ("node", SpotNode)));
        batch.AddRange(Scrape("dcgm-mig.prom", at, ("instance", "10.244.2.3:9400"), ("job", "gpu-metrics"), ("node", OnDemandNode)));
        var nodeExporter = Scrape("node-exporter.prom", at, ("instance", "10.0.1.23:9100"), ("job", "node-exporter"));
        for (var i = 0; i < nodeExporter.Count; i++)
        {
            if (nodeExporter[i].Name == "node_network_transmit_bytes_total" && nodeExporter[i].Get("device") == "eth0")
                nodeExporter[i] = nodeExporter[i] with { Value = nodeExporter[i].Value + transmitExtra };
        }
        batch.AddRange(nodeExporter);
        batch.AddRange(Scrape("vllm.prom", at, ("instance", "10.244.1.17:8000"), ("job", "vllm"),
            ("namespace", "inference"), ("pod", LlamaPod)));
        return batch;
    }

    private static T Single<T>(IEnumerable<FleetEvent> events, Func<T, bool> where)
    {
        var matches = events.OfType<T>().Where(where).ToList();
        Assert.True(matches.Count == 1, $"Expected one matching {typeof(T).Name}, found {matches.Count}.");
        return matches[0];
    }

    [Fact]
    public void Nodes_come_from_kube_node_labels_with_instance_type_region_zone_capacity_and_gpu_count()
    {
        var events = new TelemetryMapper().Map(Cluster(s_t0));

        var spot = Single<NodeHeartbeat>(events, h => h.Node.Id == SpotNode).Node;
        Assert.Equal(("aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.Spot, 8),
            (spot.Provider, spot.Region, spot.Zone, spot.InstanceType, spot.Capacity, spot.GpuCount));
        var onDemand = Single<NodeHeartbeat>(events, h => h.Node.Id == OnDemandNode).Node;
        Assert.Equal(("aws", "us-east-1", "us-east-1b", "p5.48xlarge", CapacityType.OnDemand, "NVIDIA-H100-80GB-HBM3"),
            (onDemand.Provider, onDemand.Region, onDemand.Zone, onDemand.InstanceType, onDemand.Capacity, onDemand.GpuModel));
        // No kube_node_status_capacity for it in the fixture: the GPUs DCGM reported are the floor.
        Assert.Equal(1, onDemand.GpuCount);
        Assert.All(events, e => Assert.Equal(s_t0, e.Time));
    }

    [Theory]
    [InlineData("label_cloud_google_com_gke_spot=\"true\",label_node_kubernetes_io_instance_type=\"a2-highgpu-1g\"", "gcp", CapacityType.Spot)]
    [InlineData("label_cloud_google_com_gke_provisioning=\"standard\"", "gcp", CapacityType.OnDemand)]
    [InlineData("label_kubernetes_azure_com_scalesetpriority=\"spot\"", "azure", CapacityType.Spot)]
    [InlineData("label_kubernetes_azure_com_agentpool=\"gpu\"", "azure", CapacityType.OnDemand)]
    [InlineData("label_eks_amazonaws_com_capacity_type=\"SPOT\"", "aws", CapacityType.Spot)]
    [InlineData("label_karpenter_sh_capacity_type=\"reserved\"", "aws", CapacityType.Reserved)]
    [InlineData("label_failure_domain_beta_kubernetes_io_region=\"eu-west-1\"", "lambda", CapacityType.OnDemand)]
    public void Provider_and_capacity_are_read_from_the_labels_of_each_cloud(string labels, string provider, CapacityType capacity)
    {
        var mapper = new TelemetryMapper(new TelemetryMapperOptions { DefaultProvider = "lambda" });

        var events = mapper.Map(ScrapeText($"kube_node_labels{{node=\"n1\",{labels}}} 1\n", s_t0));

        var node = Single<NodeHeartbeat>(events, _ => true).Node;
        Assert.Equal((provider, capacity), (node.Provider, node.Capacity));
    }

    [Fact]
    public void Gpus_belong_to_nodes_and_report_utilization_with_mig_slices_weighted_by_compute()
    {
        var events = new TelemetryMapper().Map(Cluster(s_t0));

        var utilization = events.OfType<GpuUtilization>().OrderBy(u => u.NodeId, StringComparer.Ordinal).ThenBy(u => u.GpuIndex).ToList();
        Assert.Equal(3, utilization.Count);
        Assert.Equal((SpotNode, 0, 0.87), (utilization[0].NodeId, utilization[0].GpuIndex, utilization[0].Utilization));
        Assert.Equal((SpotNode, 1, 0.0), (utilization[1].NodeId, utilization[1].GpuIndex, utilization[1].Utilization));
        Assert.Equal((OnDemandNode, 0), (utilization[2].NodeId, utilization[2].GpuIndex));
        Assert.Equal(0.734512 * 3 / 7 + 0 * 4 / 7.0, utilization[2].Utilization, 9); // GR_ENGINE_ACTIVE of the 3g and 4g slices
    }

    [Fact]
    public void Dcgm_not_available_values_are_dropped_and_counted()
    {
        var mapper = new TelemetryMapper();

        mapper.Map(Cluster(s_t0));

        // DCGM_FI_DEV_MEMORY_TEMP of GPU 1 is 9223372036854775794 in the fixture.
        Assert.Equal(1, mapper.Stats.Ignored(SampleIgnoreReason.NotAvailable));
        Assert.Equal(1, mapper.Stats.Ignored(SampleIgnoreReason.VirtualInterface)); // transmit on lo
        Assert.True(mapper.Stats.Used > 0);
    }

    [Fact]
    public void Pods_become_workloads_once_and_their_gpu_requests_become_allocations()
    {
        var mapper = new TelemetryMapper();
        var events = mapper.Map(Cluster(s_t0));

        var llama = Single<WorkloadStarted>(events, w => w.Workload.Id == Llama && w.Workload.Model.Length == 0).Workload;
        Assert.Equal(("kubernetes", "search", "inference"), (llama.Orchestrator, llama.Team, llama.Labels!["namespace"]));
        Single<WorkloadStarted>(events, w => w.Workload.Id == Trainer && w.Workload.Team == "vision");
        // The exact GPU comes from DCGM's exported_pod label; the MIG request becomes a 3/7 share.
        Single<GpuAllocated>(events, a => a.WorkloadId == Llama && a.NodeId == SpotNode && a.GpuIndex == 0 && a.Share == GpuShare.Whole);
        Single<GpuAllocated>(events, a => a.WorkloadId == Trainer && a.NodeId == OnDemandNode && a.GpuIndex == 0 && a.Share == GpuShare.Mig("3g.40gb"));
        Assert.Equal(2, events.OfType<GpuAllocated>().Count());

        var again = mapper.Map(Cluster(s_t0.AddMinutes(1)));
        Assert.Empty(again.OfType<WorkloadStarted>());
        Assert.Empty(again.OfType<GpuAllocated>());
    }

    [Fact]
    public void A_gpu_request_without_dcgm_pod_labels_takes_the_lowest_free_gpus()
    {
        const string page = """
            kube_node_labels{node="n1",label_node_kubernetes_io_instance_type="p4d.24xlarge",label_topology_kubernetes_io_region="us-east-1"} 1
            kube_node_status_capacity{node="n1",resource="nvidia_com_gpu",unit="integer"} 8
            kube_pod_info{namespace="a",pod="p1",uid="u1",node="n1"} 1
            kube_pod_info{namespace="a",pod="p2",uid="u2",node="n1"} 1
            kube_pod_container_resource_requests{namespace="a",pod="p1",uid="u1",container="c",node="n1",resource="nvidia_com_gpu",unit="integer"} 2
            kube_pod_container_resource_requests{namespace="a",pod="p2",uid="u2",container="c",node="n1",resource="nvidia_com_gpu",unit="integer"} 3
            """;

        var allocations = new TelemetryMapper().Map(ScrapeText(page, s_t0)).OfType<GpuAllocated>()
            .Select(a => $"{a.WorkloadId}@{a.GpuIndex}").Order(StringComparer.Ordinal);

        Assert.Equal(["k8s:a/p1@0", "k8s:a/p1@1", "k8s:a/p2@2", "k8s:a/p2@3", "k8s:a/p2@4"], allocations);
    }

    [Fact]
    public void Time_sliced_gpus_are_shared_by_allocation_or_left_idle_by_option()
    {
        const string page = """
            kube_node_labels{node="n1",label_nvidia_com_gpu_replicas="4",label_nvidia_com_gpu_count="2"} 1
            kube_node_status_capacity{node="n1",resource="nvidia_com_gpu",unit="integer"} 8
            kube_pod_info{namespace="a",pod="p1",uid="u1",node="n1"} 1
            kube_pod_container_resource_requests{namespace="a",pod="p1",uid="u1",container="c",node="n1",resource="nvidia_com_gpu",unit="integer"} 1
            """;

        var shared = new TelemetryMapper().Map(ScrapeText(page, s_t0));
        var idle = new TelemetryMapper(new TelemetryMapperOptions { TimeSlicedByAllocation = false }).Map(ScrapeText(page, s_t0));

        Assert.Equal(2, Single<NodeHeartbeat>(shared, _ => true).Node.GpuCount);
        Single<GpuAllocated>(shared, a => a.GpuIndex == 0 && a.Share == GpuShare.Shared(1, 4));
        Assert.Empty(idle.OfType<GpuAllocated>());
    }

    [Fact]
    public void SkyPilot_labels_and_Metaflow_annotations_name_the_higher_level_workload()
    {
        const string page = """
            kube_node_labels{node="n1",label_node_kubernetes_io_instance_type="a2-highgpu-1g",label_cloud_google_com_gke_spot="true"} 1
            kube_pod_info{namespace="default",pod="train-llama-2ea4-head",uid="u1",node="n1"} 1
            kube_pod_info{namespace="default",pod="train-llama-2ea4-worker1",uid="u2",node="n1"} 1
            kube_pod_labels{namespace="default",pod="train-llama-2ea4-head",uid="u1",label_parent="skypilot",label_skypilot_cluster_name="train-llama",label_skypilot_user="alice",label_team="nlp"} 1
            kube_pod_labels{namespace="default",pod="train-llama-2ea4-worker1",uid="u2",label_parent="skypilot",label_skypilot_cluster_name="train-llama",label_skypilot_user="alice",label_team="nlp"} 1
            kube_pod_info{namespace="ml",pod="t-1a2b3c4d-x9z",uid="u3",node="n1"} 1
            kube_pod_labels{namespace="ml",pod="t-1a2b3c4d-x9z",uid="u3",label_app_kubernetes_io_part_of="metaflow"} 1
            kube_pod_annotations{namespace="ml",pod="t-1a2b3c4d-x9z",uid="u3",annotation_metaflow_flow_name="TrainFlow",annotation_metaflow_run_id="argo-trainflow-42",annotation_metaflow_step_name="train",annotation_metaflow_task_id="t-7",annotation_metaflow_user="bob"} 1
            """;

        var started = new TelemetryMapper().Map(ScrapeText(page, s_t0)).OfType<WorkloadStarted>().Select(w => w.Workload).ToList();

        Assert.Equal(2, started.Count);
        var sky = started.Single(w => w.Id == "skypilot:train-llama");
        Assert.Equal(("skypilot", "alice", "nlp"), (sky.Orchestrator, sky.User, sky.Team));
        var flow = started.Single(w => w.Id == "metaflow:TrainFlow/argo-trainflow-42/train");
        Assert.Equal(("metaflow", "bob", "t-7"), (flow.Orchestrator, flow.User, flow.Labels!["metaflow_task_id"]));
    }

    [Fact]
    public void Vllm_tokens_and_requests_become_cumulative_work_counters_of_the_serving_pod()
    {
        var events = new TelemetryMapper().Map(Cluster(s_t0));

        Assert.Equal(1_843_502 + 27_453, Single<WorkCounter>(events, c => c.WorkloadId == Llama && c.Metric == "tokens").Total);
        Assert.Equal(1 + 131 + 0, Single<WorkCounter>(events, c => c.WorkloadId == Llama && c.Metric == "requests").Total);
    }

    [Fact]
    public void A_node_whose_gpu_count_arrives_in_a_later_request_still_gets_its_pods_gpus_allocated()
    {
        // Prometheus shards series across remote write requests: the node's labels and its pod can come before its capacity.
        const string first = """
            kube_node_labels{node="n1",label_node_kubernetes_io_instance_type="p4d.24xlarge",label_topology_kubernetes_io_region="us-east-1"} 1
            kube_pod_info{namespace="a",pod="p1",uid="u1",node="n1"} 1
            kube_pod_container_resource_requests{namespace="a",pod="p1",uid="u1",container="c",node="n1",resource="nvidia_com_gpu",unit="integer"} 2
            """;
        const string second = """
            kube_node_status_capacity{node="n1",resource="nvidia_com_gpu",unit="integer"} 8
            """;
        var mapper = new TelemetryMapper();

        var before = mapper.Map(ScrapeText(first, s_t0));
        var after = mapper.Map(ScrapeText(second, s_t0.AddSeconds(15)));

        Assert.Empty(before.OfType<GpuAllocated>());
        Assert.Equal(8, after.OfType<NodeHeartbeat>().First().Node.GpuCount); // the engine learns the count from this
        Assert.Equal([0, 1], after.OfType<GpuAllocated>().Where(a => a.WorkloadId == "k8s:a/p1").Select(a => a.GpuIndex).Order());
    }

    [Fact]
    public void The_serving_pods_workload_learns_its_model_from_vllm_once()
    {
        var mapper = new TelemetryMapper();
        var first = mapper.Map(Cluster(s_t0));
        var second = mapper.Map(Cluster(s_t0.AddMinutes(1)));

        var announced = first.OfType<WorkloadStarted>().Where(w => w.Workload.Id == Llama).ToList();
        Assert.Equal(2, announced.Count); // first seen, then with the model its vLLM serves
        Assert.Equal("", announced[0].Workload.Model);
        Assert.Equal("meta-llama/Llama-3.1-8B-Instruct", announced[1].Workload.Model);
        Assert.Equal("search", announced[1].Workload.Team);
        Assert.DoesNotContain(second.OfType<WorkloadStarted>(), w => w.Workload.Id == Llama);
    }

    [Fact]
    public void Work_counters_are_found_by_pod_ip_and_stay_monotonic_across_a_counter_reset()
    {
        const string ksm = """
            kube_pod_info{namespace="a",pod="trainer",uid="u1",node="n1",pod_ip="10.1.2.3"} 1
            """;
        var mapper = new TelemetryMapper();
        mapper.Map(ScrapeText(ksm, s_t0));

        var first = mapper.Map(ScrapeText("training_steps_total 500\n", s_t0.AddMinutes(1), ("instance", "10.1.2.3:9090")));
        var afterRestart = mapper.Map(ScrapeText("training_steps_total 20\n", s_t0.AddMinutes(2), ("instance", "10.1.2.3:9090")));

        Assert.Equal(500, Single<WorkCounter>(first, c => c.WorkloadId == "k8s:a/trainer" && c.Metric == "steps").Total);
        Assert.Equal(520, Single<WorkCounter>(afterRestart, c => c.Metric == "steps").Total);
    }

    [Fact]
    public void Network_bytes_are_the_increase_since_the_last_scrape_booked_to_the_sole_gpu_holder()
    {
        var mapper = new TelemetryMapper();

        var first = mapper.Map(Cluster(s_t0));
        var second = mapper.Map(Cluster(s_t0.AddMinutes(1), transmitExtra: 1_500_000));

        Assert.Empty(first.OfType<BytesTransferred>()); // the first total is a baseline
        var sent = Single<BytesTransferred>(second, _ => true);
        Assert.Equal((Llama, SpotNode, TransferKind.Internet, 1_500_000L), (sent.WorkloadId, sent.NodeId, sent.Kind, sent.Bytes));
    }

    [Fact]
    public void A_capacity_flip_between_two_batches_is_a_capacity_change_at_that_samples_time()
    {
        var mapper = new TelemetryMapper();
        mapper.Map(Cluster(s_t0));
        var flipped = Cluster(s_t0.AddMinutes(1)).Select(s => s.Name == "kube_node_labels" && s.Get("node") == SpotNode
            ? s with { Labels = [.. s.Labels.Select(l => l.Name == "label_karpenter_sh_capacity_type" ? l with { Value = "on-demand" } : l)] }
            : s).ToList();

        var events = mapper.Map(flipped);

        var change = Single<CapacityChanged>(events, _ => true);
        Assert.Equal((s_t0.AddMinutes(1), SpotNode, CapacityType.OnDemand), (change.Time, change.NodeId, change.Capacity));
        Assert.Empty(mapper.Map(Cluster(s_t0.AddMinutes(2)).Where(s => s.Name != "kube_node_labels" || s.Get("node") != SpotNode).ToList()).OfType<CapacityChanged>());
    }

    [Fact]
    public void A_gpu_seen_before_its_node_is_counted_and_its_pod_gets_that_gpu_once_the_node_is_known()
    {
        var mapper = new TelemetryMapper();
        var dcgm = Scrape("dcgm-gpus.prom", s_t0, ("node", SpotNode));
        // The vLLM pod shows on GPU 1 in this variant.
        dcgm = [.. dcgm.Select(s => s with { Labels = [.. s.Labels.Select(l => l.Name == "gpu" ? l with { Value = l.Value == "0" ? "1" : "0" } : l)] })];

        var early = mapper.Map(dcgm);
        var later = mapper.Map(Scrape("kube-state-metrics.prom", s_t0.AddSeconds(15)));

        Assert.Empty(early);
        Assert.True(mapper.Stats.Ignored(SampleIgnoreReason.GpuOnUnknownNode) > 0);
        Single<GpuAllocated>(later, a => a.WorkloadId == Llama && a.GpuIndex == 1);
    }

    [Fact]
    public void A_pod_gone_from_kube_pod_info_past_the_staleness_stops_its_workload()
    {
        var mapper = new TelemetryMapper(new TelemetryMapperOptions { PodStaleness = TimeSpan.FromMinutes(2) });
        mapper.Map(Cluster(s_t0));
        List<MetricSample> WithoutTrainer(DateTimeOffset at) =>
            [.. Scrape("kube-state-metrics.prom", at).Where(s => s.Get("pod") != "train-resnet-0")];

        var stillFresh = mapper.Map(WithoutTrainer(s_t0.AddMinutes(2)));
        var stale = mapper.Map(WithoutTrainer(s_t0.AddMinutes(3)));

        Assert.Empty(stillFresh.OfType<WorkloadStopped>());
        var stopped = Single<WorkloadStopped>(stale, _ => true);
        Assert.Equal((Trainer, s_t0.AddMinutes(3)), (stopped.WorkloadId, stopped.Time));
    }

    [Fact]
    public void Burnrate_node_info_makes_a_node_known_with_its_declared_fields_and_free_labels()
    {
        const string page = """
            burnrate_node_info{node="gpu-box-1",provider="AWS",region="us-east-1",zone="us-east-1a",instance_type="p4d.24xlarge",capacity_type="on-demand",gpus="8",gpu_model="NVIDIA A100-SXM4-40GB",cluster="lab",team="research",project="llm",user="ana",rack="r7"} 1
            """;

        var events = new TelemetryMapper().Map(ScrapeText(page, s_t0, ("instance", "10.0.0.9:9100"), ("job", "agents")));

        var node = Single<NodeHeartbeat>(events, _ => true).Node;
        Assert.Equal(("gpu-box-1", "aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.OnDemand, 8, "NVIDIA A100-SXM4-40GB", "lab"),
            (node.Id, node.Provider, node.Region, node.Zone, node.InstanceType, node.Capacity, node.GpuCount, node.GpuModel, node.Cluster));
        // Fields and scrape target labels are not node labels; the rest are, so team/project/user own the idle cost.
        Assert.Equal(["project=llm", "rack=r7", "team=research", "user=ana"], node.Labels!.Select(l => $"{l.Key}={l.Value}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Dcgm_gpus_on_a_burnrate_node_info_node_report_utilization_and_are_the_floor_of_its_gpu_count()
    {
        const string page = """
            burnrate_node_info{node="gpu-box-1",provider="aws",region="us-east-1",instance_type="p4d.24xlarge",capacity_type="spot"} 1
            DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-box-1"} 87
            DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-box-1"} 3
            DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-box-1"} 19818
            """;
        var mapper = new TelemetryMapper();

        var events = mapper.Map(ScrapeText(page, s_t0));

        var node = Single<NodeHeartbeat>(events, _ => true).Node;
        Assert.Equal((CapacityType.Spot, 2, "aws"), (node.Capacity, node.GpuCount, node.Provider));
        Assert.Equal([(0, 0.87), (1, 0.03)], events.OfType<GpuUtilization>().Select(u => (u.GpuIndex, u.Utilization)).Order());
        Assert.Equal(0, mapper.Stats.Ignored(SampleIgnoreReason.GpuOnUnknownNode));
    }

    [Fact]
    public void A_capacity_flip_in_burnrate_node_info_is_a_capacity_change_at_that_samples_time()
    {
        const string spot = """burnrate_node_info{node="n1",provider="aws",region="us-east-1",instance_type="p4d.24xlarge",capacity_type="spot",gpus="8"} 1""";
        var mapper = new TelemetryMapper();
        mapper.Map(ScrapeText(spot + "\n", s_t0));

        var events = mapper.Map(ScrapeText(spot.Replace("spot", "on-demand", StringComparison.Ordinal) + "\n", s_t0.AddMinutes(1)));

        var change = Single<CapacityChanged>(events, _ => true);
        Assert.Equal((s_t0.AddMinutes(1), "n1", CapacityType.OnDemand), (change.Time, change.NodeId, change.Capacity));
        Assert.Equal(CapacityType.OnDemand, Single<NodeHeartbeat>(events, _ => true).Node.Capacity);
    }

    [Theory]
    [InlineData("""burnrate_node_info{provider="aws",instance_type="p4d.24xlarge"} 1""", SampleIgnoreReason.MissingLabel)]
    [InlineData("""burnrate_node_info{node="n1",capacity_type="cheap"} 1""", SampleIgnoreReason.InvalidValue)]
    [InlineData("""burnrate_node_info{node="n1",gpus="eight"} 1""", SampleIgnoreReason.InvalidValue)]
    [InlineData("""burnrate_node_info{node="n1",gpus="-1"} 1""", SampleIgnoreReason.InvalidValue)]
    public void A_burnrate_node_info_without_a_node_or_with_a_bad_field_is_counted_and_makes_no_node(string line, SampleIgnoreReason reason)
    {
        var mapper = new TelemetryMapper();

        var events = mapper.Map(ScrapeText(line + "\n", s_t0));

        Assert.Empty(events);
        Assert.Equal(1, mapper.Stats.Ignored(reason));
    }

    [Fact]
    public void The_mapped_fixture_cluster_rates_a_minute_of_the_spot_node_at_its_catalog_price()
    {
        var (book, rateCard) = PricingSetup.Load(new BurnrateConfig());
        var engine = new RatingEngine(book, rateCard);
        var mapper = new TelemetryMapper();
        for (var minute = 0; minute <= 2; minute++)
        {
            foreach (var e in mapper.Map(Cluster(s_t0.AddMinutes(minute))))
                engine.Apply(e);
        }

        var rated = engine.RateMinute(s_t0);

        // Catalog (aws.yaml): p4d.24xlarge spot in us-east-1 is $9.89785/h, so one minute is
        // 9.89785 / 60 = $0.164964166… = 164,964,166.7 nano-dollars, split over the node's lines (GPU 0 to the vLLM pod,
        // the rest idle) with each line rounded to the nano-dollar.
        var spot = rated.Lines.Where(l => l.ResourceId == SpotNode).ToList();
        Assert.InRange(spot.Sum(l => l.Cost.Nanos), 164_964_160L, 164_964_173L);
        Assert.All(spot, l => Assert.Equal(CapacityType.Spot, l.Capacity));
        Assert.Contains(spot, l => l.WorkloadId == Llama && l.GpuIndex == 0);
    }
}
