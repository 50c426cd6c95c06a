using System.Globalization;
using System.Text.RegularExpressions;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;

namespace Burnrate.Simulation.Internal;

/// <summary>
/// Validates a <see cref="ScenarioDocument"/> and turns it into a <see cref="ScenarioPlan"/>. Every problem is
/// reported with the file and the field path (<c>s2.yaml: workloads[0].placement[0].node: ...</c>), all at once.
/// </summary>
internal sealed partial class ScenarioCompiler
{
    private static readonly HashSet<string> s_providers = ["aws", "gcp", "azure", "lambda", "nebius", "runpod", "coreweave", "onprem"];

    private static readonly Dictionary<string, string> s_orchestratorPrefixes = new(StringComparer.Ordinal)
    {
        ["skypilot"] = "skypilot:",
        ["metaflow"] = "metaflow:",
        ["slurm"] = "slurm:",
        ["kubernetes"] = "k8s:",
        ["manual"] = "manual:",
    };

    private readonly string _source;
    private readonly List<string> _errors = [];

    private ScenarioCompiler(string source) => _source = source;

    public static ScenarioPlan Compile(ScenarioDocument doc, string source, out string id, out string title, out string description, out string signal)
    {
        var compiler = new ScenarioCompiler(source);
        var plan = compiler.Run(doc);
        id = doc.Id ?? "";
        title = doc.Title?.Trim() ?? "";
        description = doc.Description?.Trim() ?? "";
        signal = doc.Signal?.Trim() ?? "";
        if (compiler._errors.Count > 0)
            throw new ScenarioFormatException(source, compiler._errors);
        return plan;
    }

    private void Error(string path, string problem) => _errors.Add($"{_source}: {path}: {problem}");

    private ScenarioPlan Run(ScenarioDocument doc)
    {
        if (string.IsNullOrWhiteSpace(doc.Id) || !IdPattern().IsMatch(doc.Id))
            Error("id", $"'{doc.Id}' must be lower-case letters, digits and dashes (e.g. s2, baseline)");
        if (string.IsNullOrWhiteSpace(doc.Title))
            Error("title", "is required");
        if (string.IsNullOrWhiteSpace(doc.Signal))
            Error("signal", "is required: what an alert should catch");

        ScenarioAnchor? anchor = null;
        if (doc.Starts is not null && !ScenarioTime.TryParseAnchor(doc.Starts, out anchor))
            Error("starts", $"'{doc.Starts}' is not an anchor such as 'friday 17:00' or 'daily 22:00'");
        TimeSpan? duration = null;
        if (doc.Duration is not null)
            duration = Offset(doc.Duration, "duration");

        var nodes = new List<NodePlan>();
        var nodeById = new Dictionary<string, NodePlan>(StringComparer.Ordinal);
        var clusters = new HashSet<string>(StringComparer.Ordinal);
        var nodeDocs = doc.Nodes ?? [];
        for (var n = 0; n < nodeDocs.Count; n++)
        {
            foreach (var (node, path) in ExpandNode(nodeDocs[n], $"nodes[{n}]"))
            {
                if (!nodeById.TryAdd(node.Spec.Id, node))
                    Error(path + ".id", $"'{node.Spec.Id}' is declared twice");
                nodes.Add(node);
                if (node.Spec.Cluster.Length > 0)
                    clusters.Add(node.Spec.Cluster);
            }
        }

        var workloads = new List<WorkloadPlan>();
        var workloadIds = new HashSet<string>(StringComparer.Ordinal);
        var timeline = new List<ActionPlan>();
        var workloadDocs = doc.Workloads ?? [];
        for (var w = 0; w < workloadDocs.Count; w++)
        {
            foreach (var (workload, path, transfers) in ExpandWorkload(workloadDocs[w], $"workloads[{w}]", nodeById, clusters))
            {
                if (!workloadIds.Add(workload.Info.Id))
                    Error(path + ".id", $"'{workload.Info.Id}' is declared twice");
                workloads.Add(workload);
                timeline.AddRange(transfers);
            }
        }

        var actionDocs = doc.Timeline ?? [];
        for (var a = 0; a < actionDocs.Count; a++)
        {
            var action = CompileAction(actionDocs[a], $"timeline[{a}]", nodeById, workloadIds);
            if (action is not null)
                timeline.Add(action);
        }

        if (nodes.Count == 0)
            Error("nodes", "a scenario needs at least one node");
        return new ScenarioPlan(nodes, workloads, timeline, duration, anchor);
    }

    private IEnumerable<(NodePlan Node, string Path)> ExpandNode(NodeDocument d, string path)
    {
        var (count, every) = Repeat(d.Repeat, path);
        var start = d.Start is null ? TimeSpan.Zero : Offset(d.Start, path + ".start");
        TimeSpan? stop = d.Stop is null ? null : Offset(d.Stop, path + ".stop");
        if (stop is { } s && s <= start)
            Error(path + ".stop", "must be after start");
        var capacity = CapacityType.OnDemand;
        if (d.Capacity is not null && !CapacityTypes.TryParse(d.Capacity, out capacity))
            Error(path + ".capacity", $"'{d.Capacity}' is not on_demand, spot or reserved");
        if (d.Provider is null || !s_providers.Contains(d.Provider))
            Error(path + ".provider", $"'{d.Provider}' is not one of {string.Join(", ", s_providers)}");
        Required(d.Region, path + ".region");
        Required(d.InstanceType, path + ".instance_type");
        if (d.Gpus < 0)
            Error(path + ".gpus", "must not be negative");
        if (d.Gpus > 0)
            Required(d.GpuModel, path + ".gpu_model");
        Required(d.Id, path + ".id");

        for (var i = 0; i < count; i++)
        {
            var shift = every * i;
            var spec = new NodeSpec(
                Id: Sub(d.Id, i),
                Provider: d.Provider ?? "",
                Region: d.Region ?? "",
                Zone: d.Zone ?? "",
                InstanceType: d.InstanceType ?? "",
                Capacity: capacity,
                GpuCount: d.Gpus,
                GpuModel: d.GpuModel ?? "",
                Cluster: Sub(d.Cluster, i),
                Account: d.Account ?? "",
                Labels: SubLabels(d.Labels, i));
            yield return (new NodePlan(spec, start + shift, stop + shift), count > 1 ? $"{path} (repeat {i})" : path);
        }
    }

    private IEnumerable<(WorkloadPlan Workload, string Path, List<ActionPlan> Transfers)> ExpandWorkload(
        WorkloadDocument d, string path, Dictionary<string, NodePlan> nodes, HashSet<string> clusters)
    {
        var (count, every) = Repeat(d.Repeat, path);
        var start = d.Start is null ? TimeSpan.Zero : Offset(d.Start, path + ".start");
        TimeSpan? stop = d.Stop is null ? null : Offset(d.Stop, path + ".stop");
        if (stop is { } s && s <= start)
            Error(path + ".stop", "must be after start");
        Required(d.Id, path + ".id");
        string? prefix = null;
        if (d.Orchestrator is null || !s_orchestratorPrefixes.TryGetValue(d.Orchestrator, out prefix))
            Error(path + ".orchestrator", $"'{d.Orchestrator}' is not one of {string.Join(", ", s_orchestratorPrefixes.Keys)}");
        else if (d.Id is not null && !d.Id.StartsWith(prefix, StringComparison.Ordinal))
            Error(path + ".id", $"'{d.Id}' must start with '{prefix}' for orchestrator {d.Orchestrator}");
        var utilization = d.Utilization ?? 0.9;
        if (utilization is < 0 or > 1)
            Error(path + ".utilization", $"{utilization} is not within 0–1");
        var jitter = d.Jitter ?? 0.03;
        if (jitter is < 0 or > 0.5)
            Error(path + ".jitter", $"{jitter} is not within 0–0.5");
        if (d.EstimatePerHour is < 0)
            Error(path + ".estimate_per_hour", "must not be negative");

        var counters = new List<CounterPlan>();
        var counterDocs = d.Counters ?? [];
        for (var c = 0; c < counterDocs.Count; c++)
        {
            var cp = $"{path}.counters[{c}]";
            Required(counterDocs[c].Metric, cp + ".metric");
            var rate = Rate(counterDocs[c].PerSecond, counterDocs[c].PerMinute, cp);
            counters.Add(new CounterPlan(counterDocs[c].Metric ?? "", rate));
        }

        for (var i = 0; i < count; i++)
        {
            var shift = every * i;
            var id = Sub(d.Id, i);
            var placements = new List<PlacementPlan>();
            var placementDocs = d.Placement ?? [];
            for (var p = 0; p < placementDocs.Count; p++)
            {
                var placement = CompilePlacement(placementDocs[p], $"{path}.placement[{p}]", i, nodes, clusters);
                if (placement is not null)
                    placements.Add(placement);
            }
            var storage = new List<StoragePlan>();
            var storageDocs = d.Storage ?? [];
            for (var v = 0; v < storageDocs.Count; v++)
            {
                var sd = storageDocs[v];
                Required(sd.Volume, $"{path}.storage[{v}].volume");
                if (sd.SizeGb < 0)
                    Error($"{path}.storage[{v}].size_gb", "must not be negative");
                storage.Add(new StoragePlan(Sub(sd.Volume, i), sd.Class ?? "ssd", sd.SizeGb, sd.Provider, sd.Region, sd.Keep));
            }
            var info = new WorkloadInfo(
                Id: id,
                Orchestrator: d.Orchestrator ?? "",
                Name: Sub(d.Name, i) is { Length: > 0 } name ? name : id,
                User: d.User ?? "",
                Team: d.Team ?? "",
                Project: d.Project ?? "",
                Model: d.Model ?? "",
                Labels: SubLabels(d.Labels, i));
            var wStart = start + shift;
            var wStop = stop + shift;

            var transfers = new List<ActionPlan>();
            var transferDocs = d.Transfers ?? [];
            for (var t = 0; t < transferDocs.Count; t++)
            {
                var td = transferDocs[t];
                var tp = $"{path}.transfers[{t}]";
                var at = td.At is null ? TimeSpan.Zero : Offset(td.At, tp + ".at");
                TimeSpan over;
                if (td.Over is not null)
                    over = Offset(td.Over, tp + ".over");
                else
                    over = wStop is { } ws ? ws - wStart - at : TimeSpan.Zero;
                if (wStop is { } end && wStart + at + over > end)
                    Error(tp + ".over", "the transfer must end before the workload stops");
                var kind = Kind(td.Kind, tp + ".kind");
                if (td.Gb <= 0)
                    Error(tp + ".gb", "must be positive");
                var node = td.Node is null ? null : Sub(td.Node, i);
                if (node is not null && !nodes.ContainsKey(node))
                    Error(tp + ".node", $"'{node}' is not a node of this scenario");
                transfers.Add(new TransferAction(wStart + at, id, node, kind, (long)(td.Gb * 1_000_000_000m), over));
            }

            yield return (new WorkloadPlan(info, d.EstimatePerHour, wStart, wStop, utilization, jitter, placements, counters, storage),
                count > 1 ? $"{path} (repeat {i})" : path, transfers);
        }
    }

    private PlacementPlan? CompilePlacement(PlacementDocument d, string path, int i, Dictionary<string, NodePlan> nodes, HashSet<string> clusters)
    {
        var node = d.Node is null ? null : Sub(d.Node, i);
        var cluster = d.Cluster is null ? null : Sub(d.Cluster, i);
        if ((node is null) == (cluster is null))
        {
            Error(path, "give exactly one of node or cluster");
            return null;
        }
        NodePlan? target = null;
        if (node is not null && !nodes.TryGetValue(node, out target))
            Error(path + ".node", $"'{node}' is not a node of this scenario");
        if (cluster is not null && !clusters.Contains(cluster))
            Error(path + ".cluster", $"'{cluster}' is not the cluster of any node of this scenario");

        var share = GpuShare.Whole;
        var shareText = d.Share ?? "whole";
        if (shareText.StartsWith("mig:", StringComparison.Ordinal))
        {
            if (!GpuShare.TryParseMigProfile(shareText[4..], out _))
                Error(path + ".share", $"'{shareText}' is not a MIG profile such as mig:3g.40gb");
            else
                share = GpuShare.Mig(shareText[4..]);
        }
        else if (shareText.StartsWith("shared:", StringComparison.Ordinal))
        {
            var parts = shareText[7..].Split('/');
            if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var num) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var den)
                || den <= 0 || num <= 0 || num > den)
                Error(path + ".share", $"'{shareText}' is not a share such as shared:1/4");
            else
                share = GpuShare.Shared(num, den);
        }
        else if (shareText != "whole")
        {
            Error(path + ".share", $"'{shareText}' is not whole, mig:PROFILE or shared:N/D");
        }

        if (d.Indexes is { Count: > 0 } indexes)
        {
            if (d.Gpus is not null)
                Error(path, "give gpus or indexes, not both");
            if (cluster is not null)
                Error(path + ".indexes", "indexes need a node, not a cluster");
            foreach (var index in indexes)
            {
                if (index < 0 || (target is not null && index >= target.Spec.GpuCount))
                    Error(path + ".indexes", $"GPU {index} does not exist on {node}");
            }
            return new PlacementPlan(node, cluster, false, 0, indexes, share);
        }
        var gpus = d.Gpus ?? "all";
        if (gpus == "all")
        {
            if (cluster is not null)
                Error(path + ".gpus", "a cluster placement needs a GPU count");
            return new PlacementPlan(node, cluster, true, 0, null, share);
        }
        if (!int.TryParse(gpus, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0)
        {
            Error(path + ".gpus", $"'{gpus}' is not 'all' or a GPU count");
            return null;
        }
        if (target is not null && count > target.Spec.GpuCount)
            Error(path + ".gpus", $"{count} GPUs do not fit on {node} ({target.Spec.GpuCount} GPUs)");
        if (cluster is not null && share.Kind != GpuShareKind.Whole)
            Error(path + ".share", "a cluster placement takes whole GPUs; place shares on a node");
        return new PlacementPlan(node, cluster, false, count, null, share);
    }

    private ActionPlan? CompileAction(ActionDocument d, string path, Dictionary<string, NodePlan> nodes, HashSet<string> workloads)
    {
        if (d.At is null)
        {
            Error(path + ".at", "is required");
            return null;
        }
        var at = Offset(d.At, path + ".at");
        switch (d.Action)
        {
            case "utilization":
                RequireWorkload(d.Workload, path, workloads);
                if (d.Level is null or < 0 or > 1)
                    Error(path + ".level", "is required, within 0–1");
                return new UtilizationAction(at, d.Workload ?? "", d.Level ?? 0);
            case "rate":
                RequireWorkload(d.Workload, path, workloads);
                Required(d.Metric, path + ".metric");
                return new RateAction(at, d.Workload ?? "", d.Metric ?? "", Rate(d.PerSecond, d.PerMinute, path));
            case "capacity":
                {
                    RequireNode(d.Node, path, nodes);
                    if (!CapacityTypes.TryParse(d.Capacity, out var capacity))
                        Error(path + ".capacity", $"'{d.Capacity}' is not on_demand, spot or reserved");
                    return new CapacityAction(at, d.Node ?? "", capacity);
                }
            case "price":
                {
                    if (d.Provider is null || !s_providers.Contains(d.Provider))
                        Error(path + ".provider", $"'{d.Provider}' is not a known provider");
                    Required(d.Region, path + ".region");
                    Required(d.InstanceType, path + ".instance_type");
                    var capacity = CapacityType.Spot;
                    if (d.Capacity is not null && !CapacityTypes.TryParse(d.Capacity, out capacity))
                        Error(path + ".capacity", $"'{d.Capacity}' is not on_demand, spot or reserved");
                    if (d.PricePerHour is null or <= 0)
                        Error(path + ".price_per_hour", "is required (the $/h used when no base price is known), positive");
                    if (d.Multiplier is <= 0)
                        Error(path + ".multiplier", "must be positive");
                    return new PriceAction(at, d.Provider ?? "", d.Region ?? "", d.Zone ?? "", d.InstanceType ?? "", capacity, d.PricePerHour ?? 0, d.Multiplier);
                }
            case "transfer":
                {
                    RequireWorkload(d.Workload, path, workloads);
                    if (d.Node is not null)
                        RequireNode(d.Node, path, nodes);
                    var kind = Kind(d.Kind, path + ".kind");
                    if (d.Gb is null or <= 0)
                        Error(path + ".gb", "is required, positive");
                    var over = d.Over is null ? TimeSpan.Zero : Offset(d.Over, path + ".over");
                    return new TransferAction(at, d.Workload ?? "", d.Node, kind, (long)((d.Gb ?? 0) * 1_000_000_000m), over);
                }
            case "storage":
                RequireWorkload(d.Workload, path, workloads);
                Required(d.Volume, path + ".volume");
                Required(d.Provider, path + ".provider");
                Required(d.Region, path + ".region");
                if (d.SizeGb is null or < 0)
                    Error(path + ".size_gb", "is required, not negative");
                return new StorageAction(at, d.Volume ?? "", d.Workload ?? "", d.Provider ?? "", d.Region ?? "", d.Class ?? "ssd", d.SizeGb ?? 0);
            default:
                Error(path + ".action", $"'{d.Action}' is not one of utilization, rate, capacity, price, transfer, storage");
                return null;
        }
    }

    private void RequireWorkload(string? id, string path, HashSet<string> workloads)
    {
        if (id is null || !workloads.Contains(id))
            Error(path + ".workload", $"'{id}' is not a workload of this scenario");
    }

    private void RequireNode(string? id, string path, Dictionary<string, NodePlan> nodes)
    {
        if (id is null || !nodes.ContainsKey(id))
            Error(path + ".node", $"'{id}' is not a node of this scenario");
    }

    private double Rate(double? perSecond, double? perMinute, string path)
    {
        if ((perSecond is null) == (perMinute is null))
        {
            Error(path, "give exactly one of per_second or per_minute");
            return 0;
        }
        var rate = perSecond ?? perMinute!.Value / 60.0;
        if (rate < 0 || double.IsNaN(rate) || double.IsInfinity(rate))
            Error(path, "a counter rate must not be negative");
        return rate;
    }

    private TransferKind Kind(string? text, string path)
    {
        switch (text)
        {
            case "internet": return TransferKind.Internet;
            case "cross_region": return TransferKind.CrossRegion;
            case "cross_zone": return TransferKind.CrossZone;
            case "same_zone": return TransferKind.SameZone;
            default:
                Error(path, $"'{text}' is not internet, cross_region, cross_zone or same_zone");
                return TransferKind.Internet;
        }
    }

    private (int Count, TimeSpan Every) Repeat(RepeatDocument? repeat, string path)
    {
        if (repeat is null)
            return (1, TimeSpan.Zero);
        if (repeat.Count is < 1 or > 10_000)
            Error(path + ".repeat.count", $"{repeat.Count} is not within 1–10000");
        var every = repeat.Every is null ? TimeSpan.Zero : Offset(repeat.Every, path + ".repeat.every");
        return (Math.Clamp(repeat.Count, 1, 10_000), every);
    }

    private TimeSpan Offset(string text, string path)
    {
        if (ScenarioTime.TryParseOffset(text, out var offset))
            return offset;
        Error(path, $"'{text}' is not an offset such as 90s, 14m, 6h, 2d or 1h30m");
        return TimeSpan.Zero;
    }

    private void Required(string? value, string path)
    {
        if (string.IsNullOrWhiteSpace(value))
            Error(path, "is required");
    }

    // {i} is the repeat index (0-based); {i+N} adds N, for run ids such as 1000 + i.
    private static string Sub(string? text, int i)
    {
        if (string.IsNullOrEmpty(text) || !text.Contains('{', StringComparison.Ordinal))
            return text ?? "";
        return Placeholder().Replace(text, m =>
            (i + (m.Groups[1].Success ? int.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture) : 0)).ToString(CultureInfo.InvariantCulture));
    }

    private static Dictionary<string, string>? SubLabels(Dictionary<string, string>? labels, int i)
    {
        if (labels is null)
            return null;
        var result = new Dictionary<string, string>(labels.Count, StringComparer.Ordinal);
        foreach (var (key, value) in labels)
            result[key] = Sub(value, i);
        return result;
    }

    [GeneratedRegex(@"\{i(?:\+(\d+))?\}")]
    private static partial Regex Placeholder();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]*$")]
    private static partial Regex IdPattern();
}
