using System.Collections.Frozen;
using System.Globalization;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;

namespace Burnrate.Telemetry.Mapping;

/// <summary>
/// Turns decoded metric samples (DCGM exporter, kube-state-metrics, node-exporter, vLLM, training progress, Burnrate's own
/// <c>burnrate_node_info</c>) into the
/// rating engine's <see cref="FleetEvent"/>s. Pure: no I/O and no clock, every time comes from a sample. Stateful across
/// <see cref="Map"/> calls: it remembers nodes, pods, workloads, GPU identities, counter totals and what it already
/// announced, so each batch yields only what is new. docs/metrics.md lists every metric and label it reads and the rule.
/// </summary>
/// <remarks>Not thread-safe: one mapper per ingest pipeline, fed by its single reader.</remarks>
public sealed class TelemetryMapper
{
    /// <summary>DCGM prints an unavailable field as a value near 2^63 (9223372036854775794); anything this large is no reading.</summary>
    public const double NotAvailableThreshold = 9.2e18;

    private const string LabelPrefix = "label_";
    private const string AnnotationPrefix = "annotation_";
    private const string MigResourcePrefix = "nvidia_com_mig_";

    /// <summary>Labels of <c>burnrate_node_info</c> that are fields of the node, not free node labels (scrape target labels included).</summary>
    private static readonly FrozenSet<string> s_nodeInfoFields = FrozenSet.ToFrozenSet(
        [MetricSample.NameLabel, "node", "provider", "region", "zone", "instance_type", "capacity_type", "gpus", "gpu_model", "cluster", "job", "instance"],
        StringComparer.Ordinal);

    private readonly TelemetryMapperOptions _options;
    private readonly FrozenDictionary<string, string> _workMetrics;
    private readonly Dictionary<string, NodeState> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _nodeByIp = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GpuIdentity> _gpus = new(StringComparer.Ordinal);
    private readonly Dictionary<PodKey, PodState> _pods = [];
    private readonly Dictionary<string, PodKey> _podByIp = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<PodKey>> _workloadPods = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WorkloadInfo> _workloadInfo = new(StringComparer.Ordinal);
    private readonly Dictionary<string, decimal> _estimates = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Workload, string Metric), Dictionary<string, SeriesCounter>> _counters = [];
    private readonly Dictionary<(string Node, string Device), double> _transmitted = [];
    private DateTimeOffset? _ksmTime;

    // dcgm-exporter's HPC job mapping (hpc_job label): per node, the Slurm jobs the mapper has told the engine hold
    // each GPU, every job it has seen there, and which (job, GPU) pairs it already released.
    private readonly Dictionary<string, HpcNode> _hpcNodes = new(StringComparer.Ordinal);

    // Per-batch scratch, cleared at the start of each Map call.
    private readonly List<FleetEvent> _events = [];
    private readonly Dictionary<string, (DateTimeOffset First, DateTimeOffset Last)> _seenNodes = new(StringComparer.Ordinal);
    private readonly List<(MetricSample Sample, string Metric)> _workSamples = [];
    private readonly Dictionary<(string Workload, string Metric), DateTimeOffset> _touchedCounters = [];
    private readonly Dictionary<string, (DateTimeOffset Time, long Bytes)> _sentBytes = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Node, int Gpu), (DateTimeOffset Time, double Busy)> _migBusy = [];
    private readonly Dictionary<(string Node, int Gpu, DateTimeOffset Time), SortedSet<string>> _hpcSeen = [];

    /// <summary>Creates a mapper with <paramref name="options"/> (defaults when null).</summary>
    public TelemetryMapper(TelemetryMapperOptions? options = null)
    {
        _options = options ?? new TelemetryMapperOptions();
        var work = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["vllm:generation_tokens_total"] = "tokens",
            ["vllm:prompt_tokens_total"] = "tokens",
            ["vllm:request_success_total"] = "requests",
        };
        foreach (var name in _options.StepMetrics)
            work[name] = "steps";
        foreach (var name in _options.SampleMetrics)
            work[name] = "samples";
        _workMetrics = work.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Samples used and ignored so far, by reason.</summary>
    public MapperStats Stats { get; } = new();

    /// <summary>
    /// The prices Metaflow steps' launch-time estimates are taken from (the engine's price book; the ingest pipeline
    /// sets it); null: no estimates. Read, never written.
    /// </summary>
    public IPriceBook? Prices { get; set; }

    /// <summary>
    /// Maps one batch of samples (any mix of sources, any order) to the events it implies, ordered by time. Within a
    /// batch, facts that depend on each other (a pod's labels, its node, its GPU request, the node's GPU count) are
    /// joined before anything is announced, so a batch from one scrape of each exporter gives the complete picture.
    /// </summary>
    public IReadOnlyList<FleetEvent> Map(IReadOnlyList<MetricSample> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        _events.Clear();
        _seenNodes.Clear();
        _workSamples.Clear();
        _touchedCounters.Clear();
        _sentBytes.Clear();
        _migBusy.Clear();
        _hpcSeen.Clear();

        for (var i = 0; i < samples.Count; i++)
            MapSample(samples[i]);

        var heartbeats = new List<FleetEvent>();
        foreach (var (name, seen) in _seenNodes)
        {
            var node = _nodes[name];
            if (!node.LabelsSeen)
                continue;
            var spec = node.BuildSpec(_options.DefaultProvider);
            node.AnnouncedCapacity = spec.Capacity;
            heartbeats.Add(new NodeHeartbeat(seen.First, spec));
            if (seen.Last > seen.First)
                heartbeats.Add(new NodeHeartbeat(seen.Last, spec));
        }
        _events.InsertRange(0, heartbeats);

        AnnounceWorkloads();
        AllocateGpus();
        EstimateMetaflowSteps();
        AllocateHpcJobs();
        EmitMigUtilization();
        EmitWorkCounters();
        EmitTransfers();
        ReleaseStalePods();

        // Stable: at equal times, heartbeats come before workloads, workloads before their allocations.
        return [.. _events.OrderBy(e => e.Time)];
    }

    private void MapSample(in MetricSample sample)
    {
        var name = sample.Name;
        var time = DateTimeOffset.FromUnixTimeMilliseconds(sample.TimestampMs);
        if (name.StartsWith("DCGM_FI_", StringComparison.OrdinalIgnoreCase))
        {
            MapDcgm(sample, name, time);
            return;
        }
        switch (name)
        {
            case "kube_node_labels":
                MapNodeLabels(sample, time);
                return;
            case "kube_node_status_capacity":
                MapNodeCapacity(sample, time);
                return;
            case "kube_node_info":
                MapNodeInfo(sample, time);
                return;
            case "kube_pod_info":
                MapPodInfo(sample, time);
                return;
            case "kube_pod_labels":
            case "kube_pod_annotations":
                MapPodMetadata(sample, name == "kube_pod_labels" ? LabelPrefix : AnnotationPrefix);
                return;
            case "kube_pod_container_resource_requests":
                MapPodRequest(sample);
                return;
            case "node_network_transmit_bytes_total":
                MapTransmit(sample, time);
                return;
            case "burnrate_node_info":
                MapBurnrateNodeInfo(sample, time);
                return;
        }
        if (_workMetrics.TryGetValue(name, out var metric))
        {
            if (!double.IsFinite(sample.Value) || sample.Value < 0)
            {
                Stats.Ignore(SampleIgnoreReason.InvalidValue);
                return;
            }
            // Resolved after the batch's pod facts are in (the pod may be announced by this same batch).
            _workSamples.Add((sample, metric));
            return;
        }
        Stats.Ignore(SampleIgnoreReason.UnknownMetric);
    }

    // ---- kube-state-metrics: nodes ----

    private void MapNodeLabels(in MetricSample sample, DateTimeOffset time)
    {
        var name = sample.Get("node");
        if (string.IsNullOrEmpty(name))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        var node = Node(name);
        node.Labels.Clear();
        foreach (var label in sample.Labels)
        {
            if (label.Name.StartsWith(LabelPrefix, StringComparison.Ordinal))
                node.Labels[label.Name[LabelPrefix.Length..]] = label.Value;
        }
        node.Cluster = sample.Get("cluster") ?? node.Cluster;
        node.LabelsSeen = true;
        NoteCapacity(node, time);
        See(node, time);
        Stats.Use();
    }

    private void NoteCapacity(NodeState node, DateTimeOffset time)
    {
        var capacity = node.Capacity();
        if (node.AnnouncedCapacity is { } announced && announced != capacity)
        {
            _events.Add(new CapacityChanged(time, node.Name, capacity));
            node.AnnouncedCapacity = capacity;
        }
    }

    private void MapNodeCapacity(in MetricSample sample, DateTimeOffset time)
    {
        var name = sample.Get("node");
        var resource = sample.Get("resource");
        if (string.IsNullOrEmpty(name) || string.IsNullOrEmpty(resource))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        if (resource is not ("nvidia_com_gpu" or "nvidia_com_gpu_shared"))
        {
            Stats.Ignore(SampleIgnoreReason.UnknownMetric);
            return;
        }
        if (!double.IsFinite(sample.Value) || sample.Value < 0)
        {
            Stats.Ignore(SampleIgnoreReason.InvalidValue);
            return;
        }
        var node = Node(name);
        node.CapacityGpus = (int)sample.Value;
        See(node, time);
        Stats.Use();
    }

    private void MapNodeInfo(in MetricSample sample, DateTimeOffset time)
    {
        var name = sample.Get("node");
        if (string.IsNullOrEmpty(name))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        var node = Node(name);
        var providerId = sample.Get("provider_id") ?? "";
        var scheme = providerId.IndexOf("://", StringComparison.Ordinal);
        node.ProviderFromId = scheme <= 0 ? "" : providerId[..scheme] switch
        {
            "aws" => "aws",
            "gce" => "gcp",
            "azure" => "azure",
            _ => "",
        };
        if (sample.Get("internal_ip") is { Length: > 0 } ip)
            _nodeByIp[ip] = name;
        See(node, time);
        Stats.Use();
    }

    // ---- Burnrate's node convention (burnrate agent, hosts without Kubernetes) ----

    /// <summary>
    /// <c>burnrate_node_info{node, provider, region, zone, instance_type, capacity_type, gpus, gpu_model, cluster, ...} 1</c>
    /// makes a node known as <c>kube_node_labels</c> does, with its fields named outright; other labels are free node
    /// labels (<c>team</c>, <c>project</c>, <c>user</c> own its idle cost).
    /// </summary>
    private void MapBurnrateNodeInfo(in MetricSample sample, DateTimeOffset time)
    {
        var name = sample.Get("node");
        if (string.IsNullOrEmpty(name))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        var capacity = CapacityType.OnDemand;
        var gpus = 0;
        if ((sample.Get("capacity_type") is { Length: > 0 } capacityText && !CapacityTypes.TryParse(capacityText, out capacity))
            || (sample.Get("gpus") is { Length: > 0 } gpuText && !int.TryParse(gpuText, NumberStyles.None, CultureInfo.InvariantCulture, out gpus)))
        {
            Stats.Ignore(SampleIgnoreReason.InvalidValue);
            return;
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var label in sample.Labels)
        {
            if (!s_nodeInfoFields.Contains(label.Name))
                labels[label.Name] = label.Value;
        }
        var node = Node(name);
        node.Declared = new DeclaredNode(
            (sample.Get("provider") ?? "").ToLowerInvariant(), sample.Get("region") ?? "", sample.Get("zone") ?? "",
            sample.Get("instance_type") ?? "", capacity, gpus, sample.Get("gpu_model") ?? "", labels);
        node.Cluster = sample.Get("cluster") ?? node.Cluster;
        node.LabelsSeen = true;
        NoteCapacity(node, time);
        See(node, time);
        Stats.Use();
    }

    private NodeState Node(string name)
    {
        if (!_nodes.TryGetValue(name, out var node))
        {
            node = new NodeState(name);
            _nodes.Add(name, node);
        }
        return node;
    }

    private void See(NodeState node, DateTimeOffset time)
    {
        _seenNodes[node.Name] = _seenNodes.TryGetValue(node.Name, out var seen)
            ? (seen.First < time ? seen.First : time, seen.Last > time ? seen.Last : time)
            : (time, time);
    }

    /// <summary>
    /// A node known from <c>kube_node_labels</c> or <c>burnrate_node_info</c> by any of: the exporter's host label, Prometheus' <c>node</c> target
    /// label, or the scrape <c>instance</c> (node name or node internal IP, port stripped).
    /// </summary>
    private NodeState? ResolveNode(string? host, string? nodeLabel, string? instance)
    {
        if (Known(host) is { } byHost)
            return byHost;
        if (Known(nodeLabel) is { } byNode)
            return byNode;
        if (string.IsNullOrEmpty(instance))
            return null;
        var colon = instance.LastIndexOf(':');
        var address = colon > 0 && instance.IndexOf(']', StringComparison.Ordinal) < colon ? instance[..colon] : instance;
        address = address.Trim('[', ']');
        return Known(address) ?? (_nodeByIp.TryGetValue(address, out var name) ? Known(name) : null);

        NodeState? Known(string? name) =>
            !string.IsNullOrEmpty(name) && _nodes.TryGetValue(name, out var n) && n.LabelsSeen ? n : null;
    }

    // ---- kube-state-metrics: pods ----

    private void MapPodInfo(in MetricSample sample, DateTimeOffset time)
    {
        if (PodKeyOf(sample, exported: false) is not { } key || string.IsNullOrEmpty(sample.Get("node")))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        var pod = Pod(key);
        pod.Node = sample.Get("node");
        pod.Uid = sample.Get("uid") ?? pod.Uid;
        pod.LastSeen = pod.LastSeen is { } last && last > time ? last : time;
        pod.FirstSeen ??= time;
        if (sample.Get("pod_ip") is { Length: > 0 } ip && sample.Get("host_network") != "true")
            _podByIp[ip] = key;
        if (_ksmTime is null || time > _ksmTime)
            _ksmTime = time;
        Stats.Use();
    }

    private void MapPodMetadata(in MetricSample sample, string prefix)
    {
        if (PodKeyOf(sample, exported: false) is not { } key)
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        var target = prefix == LabelPrefix ? Pod(key).Labels : Pod(key).Annotations;
        target.Clear();
        foreach (var label in sample.Labels)
        {
            if (label.Name.StartsWith(prefix, StringComparison.Ordinal))
                target[label.Name[prefix.Length..]] = label.Value;
        }
        Stats.Use();
    }

    private void MapPodRequest(in MetricSample sample)
    {
        var resource = sample.Get("resource");
        if (PodKeyOf(sample, exported: false) is not { } key || string.IsNullOrEmpty(resource))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        string profile;
        if (resource is "nvidia_com_gpu" or "nvidia_com_gpu_shared")
            profile = "";
        else if (resource.StartsWith(MigResourcePrefix, StringComparison.Ordinal))
        {
            // nvidia.com/mig-3g.40gb is sanitized to nvidia_com_mig_3g_40gb: the first '_' was the '.'.
            var raw = resource[MigResourcePrefix.Length..];
            var underscore = raw.IndexOf('_', StringComparison.Ordinal);
            profile = underscore < 0 ? raw : string.Concat(raw.AsSpan(0, underscore), ".", raw.AsSpan(underscore + 1));
            if (!GpuShare.TryParseMigProfile(profile, out _))
            {
                Stats.Ignore(SampleIgnoreReason.UnknownMetric);
                return;
            }
        }
        else
        {
            Stats.Ignore(SampleIgnoreReason.UnknownMetric);
            return;
        }
        if (!double.IsFinite(sample.Value) || sample.Value < 0)
        {
            Stats.Ignore(SampleIgnoreReason.InvalidValue);
            return;
        }
        Pod(key).Requests[(sample.Get("container") ?? "", profile)] = (int)Math.Round(sample.Value);
        Stats.Use();
    }

    private PodState Pod(PodKey key)
    {
        if (!_pods.TryGetValue(key, out var pod))
        {
            pod = new PodState(key);
            _pods.Add(key, pod);
        }
        return pod;
    }

    /// <summary>
    /// The workload pod of a series. With <paramref name="exported"/>, Prometheus' renamed labels win: when it scrapes an
    /// exporter without honor_labels, <c>pod</c>/<c>namespace</c> name the exporter and <c>exported_pod</c> the workload.
    /// </summary>
    private static PodKey? PodKeyOf(in MetricSample sample, bool exported)
    {
        string? pod = null, ns = null;
        if (exported && sample.Get("exported_pod") is { } exportedPod)
        {
            pod = exportedPod;
            ns = sample.Get("exported_namespace");
        }
        else
        {
            pod = sample.Get("pod") ?? (exported ? sample.Get("pod_name") : null);
            ns = sample.Get("namespace") ?? (exported ? sample.Get("pod_namespace") : null);
        }
        return string.IsNullOrEmpty(pod) || string.IsNullOrEmpty(ns) ? null : new PodKey(ns, pod);
    }

    // ---- DCGM exporter ----

    private void MapDcgm(in MetricSample sample, string name, DateTimeOffset time)
    {
        var value = sample.Value;
        if (value >= NotAvailableThreshold)
        {
            Stats.Ignore(SampleIgnoreReason.NotAvailable);
            return;
        }
        if (!double.IsFinite(value))
        {
            Stats.Ignore(SampleIgnoreReason.InvalidValue);
            return;
        }
        var uuid = sample.Get("UUID") ?? sample.Get("uuid");
        if (string.IsNullOrEmpty(uuid) || !int.TryParse(sample.Get("gpu"), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        var host = sample.Get("Hostname") ?? sample.Get("hostname");
        var nodeLabel = sample.Get("node");
        _gpus[uuid] = new GpuIdentity(host, nodeLabel, index);
        var profile = sample.Get("GPU_I_PROFILE") ?? "";
        var isMig = profile.Length > 0;

        // Pod → GPU is remembered even while the node is unknown: the allocation waits for the node.
        var usedForPod = false;
        if (PodKeyOf(sample, exported: true) is { } key)
        {
            Pod(key).DcgmGpus.Add(new DcgmGpu(uuid, isMig ? profile : ""));
            usedForPod = true;
        }

        var node = ResolveNode(host, nodeLabel, null);

        // HPC job mapping: the Slurm job on this GPU, by the node's own name (the Slurm connector's node id) when the
        // mapper does not know the node from kube_node_labels or burnrate_node_info.
        var hpcJob = sample.Get("hpc_job");
        var hpcNode = node?.Name ?? (!string.IsNullOrEmpty(host) ? host : nodeLabel);
        var usedForJob = false;
        // An unlabelled series counts (as "no job") on a node the mapping is on, and for GPU_UTIL (one a GPU a scrape)
        // anywhere, so a GPU listed before the first labelled one of its node is seen too.
        if (!isMig && !string.IsNullOrEmpty(hpcNode)
            && (!string.IsNullOrEmpty(hpcJob) || _hpcNodes.ContainsKey(hpcNode) || name.Equals("DCGM_FI_DEV_GPU_UTIL", StringComparison.OrdinalIgnoreCase)))
        {
            // A batch may hold several scrapes: the jobs are kept per sample time, each scrape applied in turn.
            var gpuAt = (hpcNode, index, time);
            if (!_hpcSeen.TryGetValue(gpuAt, out var seen))
            {
                seen = new SortedSet<string>(StringComparer.Ordinal);
                _hpcSeen.Add(gpuAt, seen);
            }
            if (!string.IsNullOrEmpty(hpcJob))
            {
                foreach (var job in hpcJob.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    seen.Add(job);
                usedForJob = true;
            }
        }

        if (node is null)
        {
            if (usedForJob)
                Stats.Use();
            else
                Stats.Ignore(SampleIgnoreReason.GpuOnUnknownNode);
            return;
        }
        node.DcgmGpus = Math.Max(node.DcgmGpus, index + 1);
        See(node, time);

        if (!isMig && name.Equals("DCGM_FI_DEV_GPU_UTIL", StringComparison.OrdinalIgnoreCase))
        {
            _events.Add(new GpuUtilization(time, node.Name, index, Math.Clamp(value / 100, 0, 1)));
            Stats.Use();
            return;
        }
        if (isMig && name.Equals("DCGM_FI_PROF_GR_ENGINE_ACTIVE", StringComparison.OrdinalIgnoreCase)
            && GpuShare.TryParseMigProfile(profile, out var slices))
        {
            // GPU_UTIL does not exist per MIG instance; the parent GPU is busy by each slice's activity times its weight.
            var busy = Math.Clamp(value, 0, 1) * slices / GpuShare.MigComputeSlices;
            _migBusy[(node.Name, index)] = _migBusy.TryGetValue((node.Name, index), out var sum)
                ? (sum.Time > time ? sum.Time : time, sum.Busy + busy)
                : (time, busy);
            Stats.Use();
            return;
        }
        if (usedForPod || usedForJob)
            Stats.Use();
        else
            Stats.Ignore(SampleIgnoreReason.UnknownMetric);
    }

    /// <summary>The workload id of a Slurm job named by dcgm-exporter's <c>hpc_job</c> label: the Slurm connector's (<c>slurm:4242</c>).</summary>
    public static string HpcJobWorkloadId(string jobId) => "slurm:" + jobId;

    /// <summary>
    /// dcgm-exporter's HPC job mapping: where a GPU's series carry <c>hpc_job</c>, the jobs they name hold that GPU
    /// (each an equal share when several do), whatever the Slurm connector said; a job the label no longer names on a
    /// GPU (the series of a node with the mapping on, without that job) is released from it. A GPU whose series this
    /// batch does not carry is left as it is.
    /// </summary>
    private void AllocateHpcJobs()
    {
        foreach (var scrape in _hpcSeen.GroupBy(p => p.Key.Time).OrderBy(g => g.Key))
        {
            var time = scrape.Key;
            // Every job of this scrape is known on its node before any GPU is looked at, so a GPU listed before the
            // job's own GPU is released from it too.
            foreach (var ((nodeName, _, _), jobs) in scrape)
            {
                if (jobs.Count == 0)
                    continue;
                if (!_hpcNodes.TryGetValue(nodeName, out var known))
                {
                    known = new HpcNode();
                    _hpcNodes.Add(nodeName, known);
                }
                known.Known.UnionWith(jobs);
            }
            foreach (var ((nodeName, gpu, _), jobs) in scrape.OrderBy(p => p.Key.Node, StringComparer.Ordinal).ThenBy(p => p.Key.Gpu))
            {
                if (!_hpcNodes.TryGetValue(nodeName, out var hpc))
                    continue;
                var held = hpc.Holders.TryGetValue(gpu, out var h) ? h : [];
                var share = jobs.Count == 1 ? GpuShare.Whole : GpuShare.Shared(1, Math.Max(jobs.Count, 1));
                foreach (var job in jobs)
                {
                    hpc.Released.Remove((job, gpu));
                    if (!held.Contains(job) || held.Count != jobs.Count)
                        _events.Add(new GpuAllocated(time, HpcJobWorkloadId(job), nodeName, gpu, share));
                }
                // The label wins: a job known on this node but not named on this GPU does not hold it (a connector's
                // guess of its indexes, or a job that ended), released once.
                foreach (var job in hpc.Known.Order(StringComparer.Ordinal))
                {
                    if (!jobs.Contains(job) && hpc.Released.Add((job, gpu)))
                        _events.Add(new GpuReleased(time, HpcJobWorkloadId(job), nodeName, gpu));
                }
                if (jobs.Count == 0)
                    hpc.Holders.Remove(gpu);
                else
                    hpc.Holders[gpu] = new HashSet<string>(jobs, StringComparer.Ordinal);
                hpc.Gpus = Math.Max(hpc.Gpus, gpu + 1);
            }
        }
        foreach (var hpc in _hpcNodes.Values)
        {
            // Forget a job once it holds nothing on the node and was released from each of its GPUs.
            hpc.Known.RemoveWhere(job => !hpc.Holders.Values.Any(set => set.Contains(job))
                && Enumerable.Range(0, hpc.Gpus).All(g => hpc.Released.Contains((job, g))));
            hpc.Released.RemoveWhere(p => !hpc.Known.Contains(p.Job));
        }
    }

    private void EmitMigUtilization()
    {
        foreach (var ((node, gpu), (time, busy)) in _migBusy)
            _events.Add(new GpuUtilization(time, node, gpu, Math.Min(busy, 1)));
    }

    // ---- Workloads and allocations ----

    private void AnnounceWorkloads()
    {
        foreach (var pod in _pods.Values)
        {
            if (pod.WorkloadId is not null || pod.Node is null || pod.FirstSeen is not { } since)
                continue;
            var workload = Identify(pod);
            pod.WorkloadId = workload.Id;
            if (!_workloadPods.TryGetValue(workload.Id, out var members))
            {
                members = [];
                _workloadPods.Add(workload.Id, members);
                _workloadInfo[workload.Id] = workload;
                _events.Add(new WorkloadStarted(since, workload));
            }
            members.Add(pod.Key);
        }
    }

    private static readonly string[] s_metaflowFields = ["flow_name", "run_id", "step_name", "task_id", "attempt", "user", "project_name", "branch_name"];

    /// <summary>SkyPilot labels, then Metaflow annotations, else the pod itself (orchestrators.md §1.2, §2.1).</summary>
    private static WorkloadInfo Identify(PodState pod)
    {
        var labels = new Dictionary<string, string>(pod.Labels, StringComparer.Ordinal) { ["namespace"] = pod.Key.Namespace };
        var team = pod.Labels.GetValueOrDefault("team", "");
        var project = pod.Labels.GetValueOrDefault("project", "");
        var cluster = pod.Labels.GetValueOrDefault("skypilot_cluster_name") ?? pod.Labels.GetValueOrDefault("skypilot_cluster");
        if (!string.IsNullOrEmpty(cluster))
        {
            return new WorkloadInfo($"skypilot:{cluster}", "skypilot", cluster,
                pod.Labels.GetValueOrDefault("skypilot_user", ""), team, project, "", labels);
        }
        var flow = Metaflow(pod, "flow_name");
        var run = Metaflow(pod, "run_id");
        var step = Metaflow(pod, "step_name");
        if (flow.Length > 0 && run.Length > 0 && step.Length > 0)
        {
            var name = $"{flow}/{run}/{step}";
            if (Metaflow(pod, "task_id") is { Length: > 0 } task)
                labels["metaflow_task_id"] = task;
            // Metaflow's own annotation names as labels: what step_change groups runs by (group_by: [metaflow/flow_name]).
            foreach (var field in s_metaflowFields)
            {
                if (Metaflow(pod, field) is { Length: > 0 } value)
                    labels["metaflow/" + field] = value;
            }
            var metaflowProject = Metaflow(pod, "project_name");
            return new WorkloadInfo($"metaflow:{name}", "metaflow", name, Metaflow(pod, "user"), team,
                project.Length > 0 ? project : metaflowProject, "", labels);
        }
        return new WorkloadInfo($"k8s:{pod.Key.Namespace}/{pod.Key.Name}", "kubernetes", pod.Key.Name,
            pod.Labels.GetValueOrDefault("user", ""), team, project, "", labels);

        static string Metaflow(PodState pod, string field) =>
            pod.Annotations.GetValueOrDefault("metaflow_" + field) ?? pod.Labels.GetValueOrDefault("metaflow_" + field) ?? "";
    }

    private void AllocateGpus()
    {
        foreach (var pod in _pods.Values)
        {
            if (pod.Allocated || pod.WorkloadId is null || pod.Requests.Count == 0 || pod.LastSeen is not { } time
                || pod.Node is null || !_nodes.TryGetValue(pod.Node, out var node) || !node.LabelsSeen)
                continue;
            var gpus = node.PhysicalGpus();
            if (gpus == 0)
                continue;
            pod.Allocated = true;
            int whole = 0;
            foreach (var ((_, profile), count) in pod.Requests)
            {
                if (profile.Length == 0)
                    whole += count;
            }
            var preferred = PreferredGpus(pod, node);
            if (whole > 0)
            {
                var replicas = node.Replicas();
                if (replicas > 1)
                {
                    if (_options.TimeSlicedByAllocation)
                        AllocateReplicas(pod, node, gpus, replicas, whole, preferred, time);
                }
                else
                    AllocateWhole(pod, node, gpus, whole, preferred, time);
            }
            foreach (var ((_, profile), count) in pod.Requests)
            {
                for (var i = 0; i < count && profile.Length > 0; i++)
                    AllocateMig(pod, node, gpus, profile, preferred, time);
            }
        }
    }

    /// <summary>
    /// A Metaflow step's launch-time estimate: each of its task pods' GPU requests (<c>@resources(gpu=N)</c>) as that
    /// share of its node's instance price when the pod was first seen (spot without a spot price: on demand), summed over
    /// the step's pods; announced again (a <see cref="WorkloadStarted"/> with the new estimate) whenever a pod adds to it.
    /// </summary>
    private void EstimateMetaflowSteps()
    {
        if (Prices is null)
            return;
        Dictionary<string, DateTimeOffset>? changed = null;
        foreach (var pod in _pods.Values)
        {
            if (pod.Estimate is not null || pod.WorkloadId is not { } workload || !workload.StartsWith("metaflow:", StringComparison.Ordinal)
                || pod.FirstSeen is not { } since || pod.Node is null || !_nodes.TryGetValue(pod.Node, out var node) || !node.LabelsSeen)
                continue;
            var gpus = 0;
            foreach (var ((_, profile), count) in pod.Requests)
            {
                if (profile.Length == 0)
                    gpus += count;
            }
            var physical = node.PhysicalGpus();
            if (gpus == 0 || physical == 0)
                continue;
            var spec = node.BuildSpec(_options.DefaultProvider);
            var price = Prices.Find(spec.Provider, spec.Region, spec.Zone, spec.InstanceType, spec.Capacity, since)
                ?? (spec.Capacity == CapacityType.Spot ? Prices.Find(spec.Provider, spec.Region, spec.Zone, spec.InstanceType, CapacityType.OnDemand, since) : null);
            if (price is null)
                continue;
            pod.Estimate = decimal.Round(price.PricePerHour * Math.Min(gpus, physical) / physical, 9, MidpointRounding.AwayFromZero);
            _estimates[workload] = _estimates.GetValueOrDefault(workload) + pod.Estimate.Value;
            changed ??= new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            changed[workload] = changed.TryGetValue(workload, out var t) && t > since ? t : since;
        }
        foreach (var (workload, time) in changed ?? [])
        {
            if (_workloadInfo.TryGetValue(workload, out var info))
                _events.Add(new WorkloadStarted(time, info, _estimates[workload]));
        }
    }

    private List<(int Gpu, string Profile)> PreferredGpus(PodState pod, NodeState node)
    {
        var result = new List<(int, string)>();
        foreach (var g in pod.DcgmGpus)
        {
            if (_gpus.TryGetValue(g.Uuid, out var id) && ResolveNode(id.Host, id.NodeLabel, null) == node)
                result.Add((id.Index, g.Profile));
        }
        result.Sort();
        return result;
    }

    private void AllocateWhole(PodState pod, NodeState node, int gpus, int count, List<(int Gpu, string Profile)> preferred, DateTimeOffset time)
    {
        foreach (var (gpu, profile) in preferred)
        {
            if (count > 0 && profile.Length == 0 && gpu < gpus && node.Holders(gpu).Count == 0)
            {
                Hold(pod, node, gpu, GpuShare.Whole, time);
                count--;
            }
        }
        for (var gpu = 0; gpu < gpus && count > 0; gpu++)
        {
            if (node.Holders(gpu).Count == 0)
            {
                Hold(pod, node, gpu, GpuShare.Whole, time);
                count--;
            }
        }
    }

    private void AllocateReplicas(PodState pod, NodeState node, int gpus, int replicas, int count, List<(int Gpu, string Profile)> preferred, DateTimeOffset time)
    {
        var order = new List<int>();
        foreach (var (gpu, _) in preferred)
        {
            if (gpu < gpus && !order.Contains(gpu))
                order.Add(gpu);
        }
        for (var gpu = 0; gpu < gpus; gpu++)
        {
            if (!order.Contains(gpu))
                order.Add(gpu);
        }
        foreach (var gpu in order)
        {
            if (count == 0)
                break;
            var used = 0;
            foreach (var h in node.Holders(gpu))
                used += h.Share.Numerator;
            var take = Math.Min(replicas - used, count);
            if (take <= 0)
                continue;
            Hold(pod, node, gpu, GpuShare.Shared(take, replicas), time);
            count -= take;
        }
    }

    private void AllocateMig(PodState pod, NodeState node, int gpus, string profile, List<(int Gpu, string Profile)> preferred, DateTimeOffset time)
    {
        var share = GpuShare.Mig(profile);
        foreach (var (gpu, p) in preferred)
        {
            if (p == profile && gpu < gpus && Fits(gpu))
            {
                Hold(pod, node, gpu, share, time);
                return;
            }
        }
        for (var gpu = 0; gpu < gpus; gpu++)
        {
            if (Fits(gpu))
            {
                Hold(pod, node, gpu, share, time);
                return;
            }
        }

        bool Fits(int gpu)
        {
            var slices = 0;
            foreach (var h in node.Holders(gpu))
            {
                if (h.Share.Kind != GpuShareKind.Mig)
                    return false;
                slices += h.Share.Numerator;
            }
            return slices + share.Numerator <= GpuShare.MigComputeSlices;
        }
    }

    private void Hold(PodState pod, NodeState node, int gpu, GpuShare share, DateTimeOffset time)
    {
        node.Holders(gpu).Add((pod.Key, pod.WorkloadId!, share));
        pod.Holds.Add((node.Name, gpu));
        _events.Add(new GpuAllocated(time, pod.WorkloadId!, node.Name, gpu, share));
    }

    private void ReleaseStalePods()
    {
        if (_ksmTime is not { } now)
            return;
        List<PodState>? stale = null;
        foreach (var pod in _pods.Values)
        {
            if (pod.LastSeen is { } last && now - last > _options.PodStaleness)
                (stale ??= []).Add(pod);
        }
        if (stale is null)
            return;
        foreach (var pod in stale)
        {
            _pods.Remove(pod.Key);
            foreach (var (nodeName, gpu) in pod.Holds)
                _nodes[nodeName].Holders(gpu).RemoveAll(h => h.Pod == pod.Key);
            if (pod.WorkloadId is not { } workload || !_workloadPods.TryGetValue(workload, out var members))
                continue;
            members.Remove(pod.Key);
            if (pod.Estimate is { } part && _estimates.TryGetValue(workload, out var estimate))
                _estimates[workload] = estimate - part; // the next pod's estimate adds to what still runs
            if (members.Count == 0)
            {
                // The workload's last pod: stopping it releases all its GPUs in the engine.
                _workloadPods.Remove(workload);
                _workloadInfo.Remove(workload);
                _estimates.Remove(workload);
                _events.Add(new WorkloadStopped(now, workload));
                continue;
            }
            foreach (var (nodeName, gpu) in pod.Holds)
                _events.Add(new GpuReleased(now, workload, nodeName, gpu));
        }
    }

    // ---- Work counters (vLLM, training progress) ----

    private void EmitWorkCounters()
    {
        foreach (var (sample, metric) in _workSamples)
        {
            var pod = PodKeyOf(sample, exported: true) is { } key && _pods.TryGetValue(key, out var byName) ? byName : null;
            if (pod is null && sample.Get("instance") is { } instance)
            {
                var colon = instance.LastIndexOf(':');
                var ip = colon > 0 ? instance[..colon] : instance;
                if (_podByIp.TryGetValue(ip, out var byIp))
                    _pods.TryGetValue(byIp, out pod);
            }
            if (pod?.WorkloadId is not { } workload)
            {
                Stats.Ignore(SampleIgnoreReason.UnknownWorkload);
                continue;
            }
            if (!_counters.TryGetValue((workload, metric), out var series))
            {
                series = new Dictionary<string, SeriesCounter>(StringComparer.Ordinal);
                _counters.Add((workload, metric), series);
            }
            var seriesKey = SeriesKey(sample);
            var value = sample.Value;
            series[seriesKey] = series.TryGetValue(seriesKey, out var previous)
                ? new SeriesCounter(value, value < previous.Last ? previous.Offset + previous.Last : previous.Offset) // a reset keeps what was counted
                : new SeriesCounter(value, 0);
            var time = DateTimeOffset.FromUnixTimeMilliseconds(sample.TimestampMs);
            // vLLM names the model it serves: the workload learns it (once), for cost per token by model.
            if (sample.Get("model_name") is { Length: > 0 } model && _workloadInfo.TryGetValue(workload, out var info) && info.Model.Length == 0)
            {
                info = info with { Model = model };
                _workloadInfo[workload] = info;
                _events.Add(new WorkloadStarted(time, info));
            }
            _touchedCounters[(workload, metric)] = _touchedCounters.TryGetValue((workload, metric), out var t) && t > time ? t : time;
            Stats.Use();
        }
        foreach (var ((workload, metric), time) in _touchedCounters)
        {
            double total = 0;
            foreach (var counter in _counters[(workload, metric)].Values)
                total += counter.Offset + counter.Last;
            _events.Add(new WorkCounter(time, workload, metric, total));
        }
    }

    private static string SeriesKey(in MetricSample sample)
    {
        var parts = new string[sample.Labels.Length];
        for (var i = 0; i < parts.Length; i++)
            parts[i] = sample.Labels[i].Name + "=" + sample.Labels[i].Value;
        return string.Join('\u0001', parts);
    }

    // ---- node-exporter ----

    private void MapTransmit(in MetricSample sample, DateTimeOffset time)
    {
        var device = sample.Get("device");
        if (string.IsNullOrEmpty(device))
        {
            Stats.Ignore(SampleIgnoreReason.MissingLabel);
            return;
        }
        if (IsVirtualInterface(device))
        {
            Stats.Ignore(SampleIgnoreReason.VirtualInterface);
            return;
        }
        if (!double.IsFinite(sample.Value) || sample.Value < 0)
        {
            Stats.Ignore(SampleIgnoreReason.InvalidValue);
            return;
        }
        var node = ResolveNode(sample.Get("nodename"), sample.Get("node"), sample.Get("instance"));
        if (node is null)
        {
            Stats.Ignore(SampleIgnoreReason.UnknownNode);
            return;
        }
        See(node, time);
        Stats.Use();
        var value = sample.Value;
        if (!_transmitted.TryGetValue((node.Name, device), out var previous))
        {
            _transmitted[(node.Name, device)] = value; // the first total is the baseline, not traffic of this minute
            return;
        }
        _transmitted[(node.Name, device)] = value;
        var increase = value >= previous ? value - previous : value; // a counter reset (reboot) restarts from zero
        var sent = _sentBytes.TryGetValue(node.Name, out var s) ? s : (Time: time, Bytes: 0L);
        _sentBytes[node.Name] = (sent.Time > time ? sent.Time : time, sent.Bytes + (long)increase);
    }

    private static bool IsVirtualInterface(string device) =>
        device == "lo" || device.StartsWith("veth", StringComparison.Ordinal) || device.StartsWith("cali", StringComparison.Ordinal)
        || device.StartsWith("cni", StringComparison.Ordinal) || device.StartsWith("flannel", StringComparison.Ordinal)
        || device.StartsWith("docker", StringComparison.Ordinal) || device.StartsWith("br-", StringComparison.Ordinal)
        || device.StartsWith("cilium", StringComparison.Ordinal) || device.StartsWith("tunl", StringComparison.Ordinal)
        || device.StartsWith("vxlan", StringComparison.Ordinal);

    private void EmitTransfers()
    {
        foreach (var (nodeName, (time, bytes)) in _sentBytes)
        {
            if (bytes <= 0)
                continue;
            _events.Add(new BytesTransferred(time, _nodes[nodeName].SoleHolder() ?? WorkloadInfo.IdleId, nodeName, TransferKind.Internet, bytes));
        }
    }

    // ---- State ----

    private readonly record struct PodKey(string Namespace, string Name);

    /// <summary>A node's GPUs as the <c>hpc_job</c> label last said: holders per GPU, jobs seen, releases sent.</summary>
    private sealed class HpcNode
    {
        public Dictionary<int, HashSet<string>> Holders { get; } = [];
        public HashSet<string> Known { get; } = new(StringComparer.Ordinal);
        public HashSet<(string Job, int Gpu)> Released { get; } = [];
        public int Gpus { get; set; }
    }

    private readonly record struct GpuIdentity(string? Host, string? NodeLabel, int Index);

    private readonly record struct DcgmGpu(string Uuid, string Profile);

    private readonly record struct SeriesCounter(double Last, double Offset);

    /// <summary>A node as <c>burnrate_node_info</c> declares it (provider lower-cased; empty where not given).</summary>
    private sealed record DeclaredNode(string Provider, string Region, string Zone, string InstanceType, CapacityType Capacity,
        int Gpus, string GpuModel, Dictionary<string, string> Labels);

    private sealed class PodState(PodKey key)
    {
        public PodKey Key { get; } = key;
        public string? Node { get; set; }
        public string Uid { get; set; } = "";
        public DateTimeOffset? FirstSeen { get; set; }
        public DateTimeOffset? LastSeen { get; set; }
        public Dictionary<string, string> Labels { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> Annotations { get; } = new(StringComparer.Ordinal);
        /// <summary>GPUs requested per (container, MIG profile or "" for whole or time-sliced GPUs).</summary>
        public Dictionary<(string Container, string Profile), int> Requests { get; } = [];
        public HashSet<DcgmGpu> DcgmGpus { get; } = [];
        public string? WorkloadId { get; set; }
        public bool Allocated { get; set; }
        /// <summary>Its part of its workload's launch-time estimate ($/h), once priced.</summary>
        public decimal? Estimate { get; set; }
        public List<(string Node, int Gpu)> Holds { get; } = [];
    }

    private sealed class NodeState(string name)
    {
        private readonly Dictionary<int, List<(PodKey Pod, string Workload, GpuShare Share)>> _holders = [];

        public string Name { get; } = name;
        public Dictionary<string, string> Labels { get; } = new(StringComparer.Ordinal);
        /// <summary>Known: seen in <c>kube_node_labels</c> or <c>burnrate_node_info</c>.</summary>
        public bool LabelsSeen { get; set; }
        /// <summary>The fields of the last <c>burnrate_node_info</c>; when set they win over the Kubernetes labels.</summary>
        public DeclaredNode? Declared { get; set; }
        public string Cluster { get; set; } = "";
        public string ProviderFromId { get; set; } = "";
        public int CapacityGpus { get; set; }
        public int DcgmGpus { get; set; }
        public CapacityType? AnnouncedCapacity { get; set; }

        public List<(PodKey Pod, string Workload, GpuShare Share)> Holders(int gpu)
        {
            if (!_holders.TryGetValue(gpu, out var list))
            {
                list = [];
                _holders.Add(gpu, list);
            }
            return list;
        }

        /// <summary>The one workload holding the node's GPUs, or null when none or several do.</summary>
        public string? SoleHolder()
        {
            string? sole = null;
            foreach (var list in _holders.Values)
            {
                foreach (var h in list)
                {
                    if (sole is null)
                        sole = h.Workload;
                    else if (!string.Equals(sole, h.Workload, StringComparison.Ordinal))
                        return null;
                }
            }
            return sole;
        }

        /// <summary>Time-slicing or MPS replicas per GPU (GFD label <c>nvidia.com/gpu.replicas</c>), 1 when not shared.</summary>
        public int Replicas() => int.TryParse(Labels.GetValueOrDefault("nvidia_com_gpu_replicas"), CultureInfo.InvariantCulture, out var r) && r > 1 ? r : 1;

        /// <summary>GFD's <c>nvidia.com/gpu.count</c>, else the advertised capacity over replicas, at least the GPUs DCGM showed.</summary>
        public int PhysicalGpus()
        {
            if (Declared is { } declared)
                return Math.Max(declared.Gpus, DcgmGpus);
            var count = int.TryParse(Labels.GetValueOrDefault("nvidia_com_gpu_count"), CultureInfo.InvariantCulture, out var c) && c > 0
                ? c
                : CapacityGpus / Replicas();
            return Math.Max(count, DcgmGpus);
        }

        public CapacityType Capacity()
        {
            if (Declared is { } declared)
                return declared.Capacity;
            if (Label("karpenter_sh_capacity_type") is { } karpenter && CapacityTypes.TryParse(karpenter, out var k))
                return k;
            if (Label("eks_amazonaws_com_capacity_type") is { } eks)
                return eks.Equals("CAPACITY_BLOCK", StringComparison.OrdinalIgnoreCase) ? CapacityType.Reserved
                    : CapacityTypes.TryParse(eks, out var e) ? e : CapacityType.OnDemand;
            if (IsTrue("cloud_google_com_gke_spot") || IsTrue("cloud_google_com_gke_preemptible"))
                return CapacityType.Spot;
            if (Label("cloud_google_com_gke_provisioning") is { } provisioning && CapacityTypes.TryParse(provisioning, out var g))
                return g;
            if (Label("kubernetes_azure_com_scalesetpriority") is { } priority && CapacityTypes.TryParse(priority, out var a))
                return a;
            return CapacityType.OnDemand;
        }

        public NodeSpec BuildSpec(string defaultProvider)
        {
            if (Declared is { } d)
            {
                return new NodeSpec(Name, d.Provider.Length > 0 ? d.Provider : defaultProvider, d.Region, d.Zone, d.InstanceType,
                    d.Capacity, PhysicalGpus(), d.GpuModel, Cluster, Labels: new Dictionary<string, string>(d.Labels, StringComparer.Ordinal));
            }
            var instanceType = Label("node_kubernetes_io_instance_type") ?? Label("beta_kubernetes_io_instance_type") ?? "";
            return new NodeSpec(
                Name,
                Provider(instanceType, defaultProvider),
                Label("topology_kubernetes_io_region") ?? Label("failure_domain_beta_kubernetes_io_region") ?? "",
                Label("topology_kubernetes_io_zone") ?? Label("failure_domain_beta_kubernetes_io_zone") ?? "",
                instanceType,
                Capacity(),
                PhysicalGpus(),
                Label("nvidia_com_gpu_product") ?? Label("cloud_google_com_gke_accelerator") ?? "",
                Cluster,
                Labels: new Dictionary<string, string>(Labels, StringComparer.Ordinal));
        }

        private string Provider(string instanceType, string defaultProvider)
        {
            var karpenter = false;
            foreach (var key in Labels.Keys)
            {
                if (key.StartsWith("cloud_google_com_", StringComparison.Ordinal))
                    return "gcp";
                if (key.StartsWith("kubernetes_azure_com_", StringComparison.Ordinal))
                    return "azure";
                if (key.StartsWith("eks_amazonaws_com_", StringComparison.Ordinal) || key.StartsWith("karpenter_k8s_aws_", StringComparison.Ordinal))
                    return "aws";
                karpenter |= key.StartsWith("karpenter_sh_", StringComparison.Ordinal);
            }
            if (ProviderFromId.Length > 0)
                return ProviderFromId;
            if (karpenter)
                return instanceType.StartsWith("Standard_", StringComparison.Ordinal) ? "azure" : "aws";
            return defaultProvider;
        }

        private string? Label(string key) => Labels.TryGetValue(key, out var v) && v.Length > 0 ? v : null;

        private bool IsTrue(string key) => string.Equals(Label(key), "true", StringComparison.OrdinalIgnoreCase);
    }
}
