using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Simulation.Internal;
using Burnrate.Telemetry;

namespace Burnrate.Simulation;

/// <summary>
/// Plays scenarios on virtual time and emits what real telemetry and orchestrators would send: lifecycle events,
/// heartbeats, GPU utilization, work counters, transfers, storage sizes and price changes — never a cost.
/// </summary>
/// <remarks>
/// Pull-based and deterministic: every lifecycle instant is known when the simulator is built, samples fall on
/// fixed grids from <see cref="FleetSimulatorOptions.Epoch"/>, and jitter is a hash of (seed, entity, instant)
/// rather than a sequential random stream. So the same scenarios and options give the same events however
/// <see cref="AdvanceTo"/> calls are chunked. Not thread-safe: one caller advances it.
/// </remarks>
public sealed class FleetSimulator
{

    private readonly FleetSimulatorOptions _options;
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<string, LiveNode> _nodes = new(StringComparer.Ordinal);
    private readonly List<LiveNode> _nodeOrder = [];
    private readonly Dictionary<string, LiveWorkload> _workloads = new(StringComparer.Ordinal);
    private readonly List<LiveWorkload> _workloadOrder = [];
    private readonly ulong _seed;
    private int _cursor;
    private DateTimeOffset _nextHeartbeat;
    private DateTimeOffset _nextUtilization;
    private DateTimeOffset _nextCounter;

    /// <summary>Builds a simulator over <paramref name="scenarios"/>, staggered in the order given.</summary>
    /// <exception cref="ArgumentException">Two scenarios declare the same node or workload id, or an interval is not positive.</exception>
    public FleetSimulator(IEnumerable<Scenario> scenarios, FleetSimulatorOptions? options = null)
    {
        _options = options ?? new FleetSimulatorOptions();
        if (_options.HeartbeatInterval <= TimeSpan.Zero || _options.UtilizationInterval <= TimeSpan.Zero
            || _options.CounterInterval <= TimeSpan.Zero || _options.TransferChunk <= TimeSpan.Zero)
            throw new ArgumentException("Simulator intervals must be positive.", nameof(options));
        _seed = (ulong)(uint)_options.Seed * 0x9E3779B97F4A7C15UL;
        Epoch = _options.Epoch;
        Now = Epoch;
        _nextHeartbeat = Epoch + _options.HeartbeatInterval;
        _nextUtilization = Epoch + _options.UtilizationInterval;
        _nextCounter = Epoch + _options.CounterInterval;

        var schedule = new List<ScheduledScenario>();
        var nodeIds = new Dictionary<string, string>(StringComparer.Ordinal);
        var workloadIds = new Dictionary<string, string>(StringComparer.Ordinal);
        var slot = 0;
        foreach (var scenario in scenarios)
        {
            var start = Epoch + _options.Stagger * slot++;
            if (scenario.Plan.Anchor is { } anchor && !_options.IgnoreAnchors)
                start = anchor.NextAtOrAfter(start);
            schedule.Add(new ScheduledScenario(scenario, start));
            foreach (var node in scenario.Plan.Nodes)
            {
                if (!nodeIds.TryAdd(node.Spec.Id, scenario.Id))
                    throw new ArgumentException($"Node '{node.Spec.Id}' of scenario {scenario.Id} is also declared by {nodeIds[node.Spec.Id]}.", nameof(scenarios));
            }
            foreach (var workload in scenario.Plan.Workloads)
            {
                if (!workloadIds.TryAdd(workload.Info.Id, scenario.Id))
                    throw new ArgumentException($"Workload '{workload.Info.Id}' of scenario {scenario.Id} is also declared by {workloadIds[workload.Info.Id]}.", nameof(scenarios));
            }
            AddEntries(scenario.Plan, start);
        }
        Schedule = schedule;
        // Stable: equal (time, priority) keep declaration order through the sequence number.
        _entries.Sort(static (a, b) =>
            a.Time != b.Time ? a.Time.CompareTo(b.Time)
            : a.Priority != b.Priority ? a.Priority.CompareTo(b.Priority)
            : a.Sequence.CompareTo(b.Sequence));
    }

    /// <summary>Builds a simulator with default options but for <paramref name="seed"/> and <paramref name="epoch"/>.</summary>
    public FleetSimulator(IEnumerable<Scenario> scenarios, int seed, DateTimeOffset epoch)
        : this(scenarios, new FleetSimulatorOptions { Seed = seed, Epoch = epoch })
    {
    }

    /// <summary>The start of virtual time.</summary>
    public DateTimeOffset Epoch { get; }

    /// <summary>How far virtual time has been played: every event at or before it has been returned.</summary>
    public DateTimeOffset Now { get; private set; }

    /// <summary>When each scenario starts.</summary>
    public IReadOnlyList<ScheduledScenario> Schedule { get; }

    /// <summary>Nodes alive at <see cref="Now"/>.</summary>
    public int LiveNodeCount => _nodeOrder.Count;

    /// <summary>Workloads running at <see cref="Now"/>.</summary>
    public int LiveWorkloadCount => _workloadOrder.Count;

    /// <summary>
    /// Every event in (<see cref="Now"/>, <paramref name="until"/>] — on the first call [<see cref="Epoch"/>,
    /// <paramref name="until"/>] — in time order; events at the same instant come in a fixed order (lifecycle
    /// before samples). Returns nothing when <paramref name="until"/> is not after <see cref="Now"/>.
    /// </summary>
    public IReadOnlyList<FleetEvent> AdvanceTo(DateTimeOffset until)
    {
        var output = new List<FleetEvent>();
        while (true)
        {
            var next = _cursor < _entries.Count ? _entries[_cursor].Time : DateTimeOffset.MaxValue;
            if (_nextHeartbeat < next)
                next = _nextHeartbeat;
            if (_nextUtilization < next)
                next = _nextUtilization;
            if (_nextCounter < next)
                next = _nextCounter;
            if (next > until)
                break;
            while (_cursor < _entries.Count && _entries[_cursor].Time == next)
                Execute(_entries[_cursor++], output);
            if (_nextHeartbeat == next)
            {
                foreach (var node in _nodeOrder)
                    output.Add(new NodeHeartbeat(next, node.Spec));
                _nextHeartbeat += _options.HeartbeatInterval;
            }
            if (_nextUtilization == next)
            {
                EmitUtilization(next, output);
                _nextUtilization += _options.UtilizationInterval;
            }
            if (_nextCounter == next)
            {
                foreach (var workload in _workloadOrder)
                    EmitCounters(workload, next, output);
                _nextCounter += _options.CounterInterval;
            }
        }
        if (until > Now)
            Now = until;
        return output;
    }

    private void AddEntries(ScenarioPlan plan, DateTimeOffset start)
    {
        var end = plan.Duration;
        TimeSpan? Clip(TimeSpan? stop) => end is { } e && (stop is null || stop > e) ? e : stop;

        foreach (var node in plan.Nodes)
        {
            if (end is { } e && node.Start >= e)
                continue;
            Add(start + node.Start, Stage.NodeStart, EntryKind.NodeStart, node);
            if (Clip(node.Stop) is { } stop)
                Add(start + stop, Stage.NodeStop, EntryKind.NodeStop, node.Spec.Id);
        }
        foreach (var workload in plan.Workloads)
        {
            if (end is { } e && workload.Start >= e)
                continue;
            Add(start + workload.Start, Stage.WorkloadStart, EntryKind.WorkloadStart, workload);
            if (Clip(workload.Stop) is { } stop)
                Add(start + stop, Stage.WorkloadStop, EntryKind.WorkloadStop, workload.Info.Id);
        }
        foreach (var action in plan.Timeline)
        {
            if (end is { } e && action.At > e)
                continue;
            switch (action)
            {
                case PriceAction:
                    Add(start + action.At, Stage.Price, EntryKind.Action, action);
                    break;
                case CapacityAction:
                    Add(start + action.At, Stage.Capacity, EntryKind.Action, action);
                    break;
                case TransferAction transfer:
                    AddTransferChunks(transfer, start);
                    break;
                default:
                    Add(start + action.At, Stage.Action, EntryKind.Action, action);
                    break;
            }
        }
    }

    // A transfer over a span is reported as the bytes sent in each chunk, at the chunk's end; the chunks add up
    // to the file's total exactly (the last one takes the remainder).
    private void AddTransferChunks(TransferAction transfer, DateTimeOffset start)
    {
        var chunk = _options.TransferChunk;
        var chunks = transfer.Over <= TimeSpan.Zero ? 1 : (int)Math.Ceiling(transfer.Over / chunk);
        var each = transfer.Bytes / chunks;
        for (var k = 0; k < chunks; k++)
        {
            var at = transfer.Over <= TimeSpan.Zero ? transfer.At : transfer.At + TimeSpan.FromTicks(Math.Min(chunk.Ticks * (k + 1), transfer.Over.Ticks));
            var bytes = k == chunks - 1 ? transfer.Bytes - each * (chunks - 1) : each;
            Add(start + at, Stage.Action, EntryKind.Transfer, transfer with { Bytes = bytes });
        }
    }

    private void Add(DateTimeOffset time, Stage priority, EntryKind kind, object payload) =>
        _entries.Add(new Entry(time, priority, _entries.Count, kind, payload));

    private void Execute(in Entry entry, List<FleetEvent> output)
    {
        var t = entry.Time;
        switch (entry.Kind)
        {
            case EntryKind.NodeStart:
                {
                    var plan = (NodePlan)entry.Payload;
                    var node = new LiveNode(plan.Spec);
                    _nodes.Add(plan.Spec.Id, node);
                    _nodeOrder.Add(node);
                    output.Add(new NodeStarted(t, plan.Spec));
                    break;
                }
            case EntryKind.NodeStop:
                {
                    if (!_nodes.Remove((string)entry.Payload, out var node))
                        break;
                    // A node going away takes its allocations with it; the workloads may live on elsewhere.
                    for (var gpu = 0; gpu < node.Gpus.Length; gpu++)
                    {
                        foreach (var holder in node.Gpus[gpu])
                        {
                            holder.Workload.Allocations.RemoveAll(a => a.Node == node && a.Gpu == gpu);
                            output.Add(new GpuReleased(t, holder.Workload.Info.Id, node.Spec.Id, gpu));
                        }
                        node.Gpus[gpu].Clear();
                    }
                    _nodeOrder.Remove(node);
                    output.Add(new NodeStopped(t, node.Spec.Id));
                    break;
                }
            case EntryKind.WorkloadStart:
                StartWorkload((WorkloadPlan)entry.Payload, t, output);
                break;
            case EntryKind.WorkloadStop:
                StopWorkload((string)entry.Payload, t, output);
                break;
            case EntryKind.Transfer:
                {
                    var transfer = (TransferAction)entry.Payload;
                    if (!_workloads.TryGetValue(transfer.Workload, out var workload))
                        break;
                    var nodeId = transfer.Node ?? (workload.Allocations.Count > 0 ? workload.Allocations[0].Node.Spec.Id : null);
                    if (nodeId is not null)
                        output.Add(new BytesTransferred(t, workload.Info.Id, nodeId, transfer.Kind, transfer.Bytes));
                    break;
                }
            case EntryKind.Action:
                ExecuteAction((ActionPlan)entry.Payload, t, output);
                break;
        }
    }

    private void ExecuteAction(ActionPlan action, DateTimeOffset t, List<FleetEvent> output)
    {
        switch (action)
        {
            case UtilizationAction utilization when _workloads.TryGetValue(utilization.Workload, out var workload):
                workload.Level = utilization.Level;
                break;
            case RateAction rate when _workloads.TryGetValue(rate.Workload, out var workload):
                foreach (var counter in workload.Counters)
                {
                    if (counter.Metric == rate.Metric)
                    {
                        Accumulate(workload, counter, t);
                        counter.PerSecond = rate.PerSecond;
                    }
                }
                break;
            case CapacityAction capacity when _nodes.TryGetValue(capacity.Node, out var node):
                node.Spec = node.Spec with { Capacity = capacity.Capacity };
                output.Add(new CapacityChanged(t, node.Spec.Id, capacity.Capacity));
                break;
            case PriceAction price:
                {
                    var value = price.PricePerHour;
                    if (price.Multiplier is { } multiplier
                        && _options.BasePrice?.Invoke(new BasePriceKey(price.Provider, price.Region, price.Zone, price.InstanceType, price.Capacity)) is { } basePrice)
                        value = decimal.Round(basePrice * multiplier, 9, MidpointRounding.AwayFromZero); // to the nano-dollar, like every price
                    output.Add(new PriceChanged(t, price.Provider, price.Region, price.Zone, price.InstanceType, price.Capacity, value));
                    break;
                }
            case StorageAction storage:
                output.Add(new StorageChanged(t, storage.Volume, storage.Workload, storage.Provider, storage.Region, storage.StorageClass, storage.SizeGb));
                break;
        }
    }

    private void StartWorkload(WorkloadPlan plan, DateTimeOffset t, List<FleetEvent> output)
    {
        var workload = new LiveWorkload(plan, t);
        _workloads.Add(plan.Info.Id, workload);
        _workloadOrder.Add(workload);
        output.Add(new WorkloadStarted(t, plan.Info, plan.Estimate));
        // A first counter sample (total 0) at the start: a counter's first sample is only its baseline, so without
        // it the work of the first interval would never reach the ledger.
        EmitCounters(workload, t, output);
        foreach (var placement in plan.Placements)
        {
            if (placement.Node is not null)
            {
                if (!_nodes.TryGetValue(placement.Node, out var node))
                    continue; // the node is not up: the orchestrator could not place this part
                if (placement.Indexes is not null)
                {
                    foreach (var gpu in placement.Indexes)
                        Allocate(workload, node, gpu, placement.Share, t, output);
                }
                else
                {
                    var wanted = placement.All ? node.Gpus.Length : placement.Count;
                    for (var gpu = 0; gpu < node.Gpus.Length && wanted > 0; gpu++)
                    {
                        if (placement.Share.Kind != GpuShareKind.Whole || node.Gpus[gpu].Count == 0)
                        {
                            Allocate(workload, node, gpu, placement.Share, t, output);
                            wanted--;
                        }
                    }
                }
            }
            else
            {
                // First fit over the cluster's live nodes in id order, like a scheduler packing whole GPUs.
                var wanted = placement.Count;
                foreach (var node in _nodeOrder.Where(n => n.Spec.Cluster == placement.Cluster).OrderBy(n => n.Spec.Id, StringComparer.Ordinal))
                {
                    for (var gpu = 0; gpu < node.Gpus.Length && wanted > 0; gpu++)
                    {
                        if (node.Gpus[gpu].Count == 0)
                        {
                            Allocate(workload, node, gpu, placement.Share, t, output);
                            wanted--;
                        }
                    }
                    if (wanted == 0)
                        break;
                }
            }
        }
        foreach (var storage in plan.Storage)
        {
            var home = workload.Allocations.Count > 0 ? workload.Allocations[0].Node.Spec : null;
            output.Add(new StorageChanged(t, storage.Volume, plan.Info.Id, storage.Provider ?? home?.Provider ?? "", storage.Region ?? home?.Region ?? "",
                storage.StorageClass, storage.SizeGb));
        }
    }

    private static void Allocate(LiveWorkload workload, LiveNode node, int gpu, GpuShare share, DateTimeOffset t, List<FleetEvent> output)
    {
        node.Gpus[gpu].Add(new Holder(workload, share));
        workload.Allocations.Add((node, gpu));
        output.Add(new GpuAllocated(t, workload.Info.Id, node.Spec.Id, gpu, share));
    }

    private void StopWorkload(string id, DateTimeOffset t, List<FleetEvent> output)
    {
        if (!_workloads.Remove(id, out var workload))
            return;
        // A last counter sample at the stop instant, so the totals cover the whole run.
        EmitCounters(workload, t, output);
        foreach (var (node, gpu) in workload.Allocations)
        {
            node.Gpus[gpu].RemoveAll(h => h.Workload == workload);
            output.Add(new GpuReleased(t, id, node.Spec.Id, gpu));
        }
        var home = workload.Allocations.Count > 0 ? workload.Allocations[0].Node.Spec : null;
        workload.Allocations.Clear();
        foreach (var storage in workload.Plan.Storage)
        {
            if (!storage.Keep)
                output.Add(new StorageChanged(t, storage.Volume, id, storage.Provider ?? home?.Provider ?? "", storage.Region ?? home?.Region ?? "", storage.StorageClass, 0m));
        }
        _workloadOrder.Remove(workload);
        output.Add(new WorkloadStopped(t, id));
    }

    private void EmitUtilization(DateTimeOffset t, List<FleetEvent> output)
    {
        var tick = (ulong)((t - Epoch).Ticks / _options.UtilizationInterval.Ticks);
        foreach (var node in _nodeOrder)
        {
            for (var gpu = 0; gpu < node.Gpus.Length; gpu++)
            {
                var holders = node.Gpus[gpu];
                double level = 0, jitter = 0;
                foreach (var holder in holders)
                {
                    level += holder.Workload.Level * holder.Share.Numerator / holder.Share.Denominator;
                    jitter = Math.Max(jitter, holder.Workload.Plan.Jitter);
                }
                var value = 0.0;
                if (level > 0)
                {
                    var u = Unit(node.Hash, (ulong)gpu, tick);
                    value = Math.Round(Math.Clamp(Math.Min(level, 1.0) + jitter * (2 * u - 1), 0.0, 1.0), 4);
                }
                output.Add(new GpuUtilization(t, node.Spec.Id, gpu, value));
            }
        }
    }

    private void EmitCounters(LiveWorkload workload, DateTimeOffset t, List<FleetEvent> output)
    {
        foreach (var counter in workload.Counters)
        {
            Accumulate(workload, counter, t);
            output.Add(new WorkCounter(t, workload.Info.Id, counter.Metric, Math.Round(counter.Total, 3)));
        }
    }

    private void Accumulate(LiveWorkload workload, LiveCounter counter, DateTimeOffset t)
    {
        var seconds = (t - counter.Last).TotalSeconds;
        if (seconds > 0 && counter.PerSecond > 0)
        {
            var u = Unit(workload.Hash, counter.Hash, (ulong)t.UtcTicks);
            counter.Total += counter.PerSecond * seconds * (1 + _options.CounterJitter * (2 * u - 1));
        }
        counter.Last = t;
    }

    // A uniform value in [0, 1) from the seed and three keys: SplitMix64 finalizers, no state between calls.
    private double Unit(ulong a, ulong b, ulong c)
    {
        var x = Mix(_seed ^ Mix(a ^ Mix(b ^ Mix(c))));
        return (x >> 11) * (1.0 / (1UL << 53));
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // FNV-1a: string.GetHashCode is randomized per process, which would break determinism across runs.
    internal static ulong StableHash(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }
        return hash;
    }

    // The order of entries at the same instant: a node is up before its workloads start, a GPU is freed
    // before the next workload takes it, and workloads are gone before their node stops.
    private enum Stage
    {
        NodeStart,
        Price,
        Capacity,
        WorkloadStop,
        WorkloadStart,
        Action,
        NodeStop,
    }

    private enum EntryKind
    {
        NodeStart,
        NodeStop,
        WorkloadStart,
        WorkloadStop,
        Action,
        Transfer,
    }

    private readonly record struct Entry(DateTimeOffset Time, Stage Priority, int Sequence, EntryKind Kind, object Payload);

    private sealed class LiveNode(NodeSpec spec)
    {
        public NodeSpec Spec { get; set; } = spec;
        public ulong Hash { get; } = StableHash(spec.Id);
        public List<Holder>[] Gpus { get; } = [.. Enumerable.Range(0, spec.GpuCount).Select(_ => new List<Holder>())];
    }

    private sealed record Holder(LiveWorkload Workload, GpuShare Share);

    private sealed class LiveWorkload(WorkloadPlan plan, DateTimeOffset started)
    {
        public WorkloadPlan Plan { get; } = plan;
        public WorkloadInfo Info => Plan.Info;
        public ulong Hash { get; } = StableHash(plan.Info.Id);
        public double Level { get; set; } = plan.Utilization;
        public List<(LiveNode Node, int Gpu)> Allocations { get; } = [];
        public LiveCounter[] Counters { get; } = [.. plan.Counters.Select(c => new LiveCounter(c.Metric, c.PerSecond, started))];
    }

    private sealed class LiveCounter(string metric, double perSecond, DateTimeOffset started)
    {
        public string Metric { get; } = metric;
        public ulong Hash { get; } = StableHash(metric);
        public double PerSecond { get; set; } = perSecond;
        public double Total { get; set; }
        public DateTimeOffset Last { get; set; } = started;
    }
}
