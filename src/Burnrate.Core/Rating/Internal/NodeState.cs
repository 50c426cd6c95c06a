using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;

namespace Burnrate.Rating;

/// <summary>A GPU allocation interval: [From, To).</summary>
internal sealed class Allocation(string workloadId, GpuShare share, DateTimeOffset from)
{
    public string WorkloadId { get; } = workloadId;
    public GpuShare Share { get; } = share;
    public DateTimeOffset From { get; } = from;
    public DateTimeOffset? To { get; set; }

    public bool ActiveAt(DateTimeOffset t) => From <= t && (To is null || t < To);
}

/// <summary>What the engine knows of one node: when it was alive, its capacity over time, its GPUs' holders.</summary>
internal sealed class NodeState
{
    /// <summary>One life of the node: [From, To), To null while running; Exact when it came from lifecycle events.</summary>
    private readonly record struct Life(DateTimeOffset From, DateTimeOffset? To, bool Exact);

    private readonly List<Life> _alive = [];
    private readonly List<(DateTimeOffset At, CapacityType Capacity)> _capacity = [];

    public NodeState(NodeSpec spec, WorkloadInfo owner)
    {
        Spec = spec;
        Owner = owner;
        Gpus = new List<Allocation>[Math.Max(spec.GpuCount, 0)];
        for (var i = 0; i < Gpus.Length; i++)
            Gpus[i] = [];
        Utilization = new double[Gpus.Length];
    }

    public NodeSpec Spec { get; private set; }
    /// <summary>Who pays the node's idle part (derived from the node's labels).</summary>
    public WorkloadInfo Owner { get; }
    public List<Allocation>[] Gpus { get; private set; }
    /// <summary>CPU shares of workloads holding no GPU here (<see cref="Allocation.Share"/> is CPUs over the node's).</summary>
    public List<Allocation> Cpus { get; } = [];
    public double[] Utilization { get; private set; }

    /// <summary>
    /// Takes what a later description of the node adds: more GPUs than first known (telemetry often names a node before
    /// its GPU count arrives — remote write shards series across requests) and a GPU model where none was known. The
    /// price key (provider, region, instance type) stays as first described.
    /// </summary>
    public void Learn(NodeSpec later)
    {
        if (later.GpuCount > Gpus.Length)
        {
            var gpus = new List<Allocation>[later.GpuCount];
            Array.Copy(Gpus, gpus, Gpus.Length);
            for (var i = Gpus.Length; i < gpus.Length; i++)
                gpus[i] = [];
            var utilization = new double[gpus.Length];
            Array.Copy(Utilization, utilization, Utilization.Length);
            Gpus = gpus;
            Utilization = utilization;
            Spec = Spec with { GpuCount = later.GpuCount };
        }
        if (Spec.GpuModel.Length == 0 && later.GpuModel.Length > 0)
            Spec = Spec with { GpuModel = later.GpuModel };
    }

    /// <summary>
    /// A start. An exact start (an orchestrator's or the cloud's lifecycle event) takes over a life inferred from
    /// samples that is still running or ended within the staleness window — samples often arrive before the event —
    /// and starts it at the earlier of the two instants; it never adds a second, overlapping life.
    /// </summary>
    public void Start(DateTimeOffset time, CapacityType capacity, bool exact, TimeSpan staleness)
    {
        if (_alive.Count > 0)
        {
            var last = _alive[^1];
            if (last.To is null)
            {
                if (exact && !last.Exact)
                    _alive[^1] = new Life(Min(last.From, time), null, true);
                return; // already running
            }
            if (exact && !last.Exact && time - last.To.Value <= staleness)
            {
                _alive[^1] = new Life(Min(last.From, time), null, true);
                return;
            }
            if (!exact && time <= last.To.Value)
                return;
        }
        _alive.Add(new Life(time, exact ? null : time, exact));
        if (_capacity.Count == 0 || _capacity[^1].Capacity != capacity)
            _capacity.Add((time, capacity));
    }

    /// <summary>
    /// A sample from the node. For a node with an exact lifecycle it only confirms life: samples scraped after an
    /// exact stop (within the staleness window) are stragglers, not a restart. For a node known only from samples,
    /// it extends life across gaps up to the staleness window, or starts a new life after a longer gap.
    /// </summary>
    public void Heartbeat(DateTimeOffset time, TimeSpan staleness)
    {
        if (_alive.Count == 0)
        {
            Start(time, Spec.Capacity, exact: false, staleness);
            return;
        }
        var last = _alive[^1];
        if (last.Exact)
        {
            if (last.To is null || time - last.To.Value <= staleness)
                return;
            _alive.Add(new Life(time, time, false)); // alive again long after its exact stop, with no start event
            return;
        }
        var end = last.To ?? time;
        if (time <= end)
            return;
        if (time - end <= staleness)
            _alive[^1] = last with { To = time }; // a gap within the staleness window counts as alive
        else
            _alive.Add(new Life(time, time, false));
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    public void Stop(DateTimeOffset time)
    {
        if (_alive.Count == 0)
            return;
        var last = _alive[^1];
        if (last.To is null || last.To > time)
            _alive[^1] = new Life(last.From, time < last.From ? last.From : time, true);
        else
            _alive[^1] = last with { Exact = true };
        foreach (var gpu in Gpus)
        {
            foreach (var a in gpu)
            {
                if (a.To is null || a.To > time)
                    a.To = time < a.From ? a.From : time;
            }
        }
        foreach (var a in Cpus)
        {
            if (a.To is null || a.To > time)
                a.To = time < a.From ? a.From : time;
        }
    }

    public void SetCapacity(DateTimeOffset time, CapacityType capacity)
    {
        if (_capacity.Count > 0 && _capacity[^1].Capacity == capacity)
            return;
        if (_capacity.Count > 0 && _capacity[^1].At > time)
            time = _capacity[^1].At;
        _capacity.Add((time, capacity));
    }

    public CapacityType CapacityAt(DateTimeOffset t)
    {
        var result = _capacity.Count > 0 ? _capacity[0].Capacity : Spec.Capacity;
        foreach (var (at, capacity) in _capacity)
        {
            if (at > t)
                break;
            result = capacity;
        }
        return result;
    }

    public void Allocate(int gpu, string workloadId, GpuShare share, DateTimeOffset time)
    {
        var list = Gpus[gpu];
        foreach (var a in list)
        {
            if (a.WorkloadId == workloadId && a.To is null)
            {
                if (a.Share == share)
                    return;
                a.To = time; // a new share for the same holder replaces the old one
            }
        }
        list.Add(new Allocation(workloadId, share, time));
    }

    /// <summary>A CPU share (replacing the holder's open one when it differs).</summary>
    public void AllocateCpu(string workloadId, GpuShare share, DateTimeOffset time)
    {
        foreach (var a in Cpus)
        {
            if (a.WorkloadId == workloadId && a.To is null)
            {
                if (a.Share == share)
                    return;
                a.To = time;
            }
        }
        Cpus.Add(new Allocation(workloadId, share, time));
    }

    /// <summary>The CPU shares held at <paramref name="t"/>, by workload id.</summary>
    public void CpuHoldersAt(DateTimeOffset t, List<Allocation> result)
    {
        result.Clear();
        foreach (var a in Cpus)
        {
            if (a.ActiveAt(t))
                result.Add(a);
        }
        if (result.Count > 1)
            result.Sort(static (x, y) => string.CompareOrdinal(x.WorkloadId, y.WorkloadId));
    }

    public bool Release(int gpu, string workloadId, DateTimeOffset time)
    {
        if (gpu < 0 || gpu >= Gpus.Length)
            return false;
        var found = false;
        foreach (var a in Gpus[gpu])
        {
            if (a.WorkloadId == workloadId && (a.To is null || a.To > time))
            {
                a.To = time < a.From ? a.From : time;
                found = true;
            }
        }
        return found;
    }

    public void ReleaseAll(string workloadId, DateTimeOffset time)
    {
        for (var g = 0; g < Gpus.Length; g++)
            Release(g, workloadId, time);
        foreach (var a in Cpus)
        {
            if (a.WorkloadId == workloadId && (a.To is null || a.To > time))
                a.To = time < a.From ? a.From : time;
        }
    }

    /// <summary>The holders of GPU <paramref name="gpu"/> at <paramref name="t"/>, in a stable order.</summary>
    public void HoldersAt(int gpu, DateTimeOffset t, List<Allocation> result)
    {
        result.Clear();
        foreach (var a in Gpus[gpu])
        {
            if (a.ActiveAt(t))
                result.Add(a);
        }
        if (result.Count > 1)
            result.Sort(static (x, y) => string.CompareOrdinal(x.WorkloadId, y.WorkloadId));
    }

    /// <summary>When the life running at (or last begun before) <paramref name="t"/> began; <paramref name="t"/> when none did.</summary>
    public DateTimeOffset LaunchedAt(DateTimeOffset t)
    {
        for (var i = _alive.Count - 1; i >= 0; i--)
        {
            if (_alive[i].From <= t)
                return _alive[i].From;
        }
        return t;
    }

    public bool IsAliveAt(DateTimeOffset t)
    {
        foreach (var (from, to, _) in _alive)
        {
            if (from <= t && (to is null || t < to))
                return true;
        }
        return false;
    }

    /// <summary>
    /// Whether the node is running at <paramref name="t"/> as far as is known at <paramref name="t"/>: alive then, or
    /// known only from samples and its last sample at most <paramref name="staleness"/> before <paramref name="t"/>
    /// (the next sample is presumed on its way, as a gap that short counts as alive). For what burns right now; a
    /// closed minute is rated by <see cref="AliveWithin"/>, up to the last sample only.
    /// </summary>
    public bool IsRunningAt(DateTimeOffset t, TimeSpan staleness)
    {
        if (IsAliveAt(t))
            return true;
        if (_alive.Count == 0)
            return false;
        var (from, to, exact) = _alive[^1];
        return !exact && to is { } last && from <= t && last <= t && t - last <= staleness;
    }

    /// <summary>The alive parts of [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public IEnumerable<(DateTimeOffset From, DateTimeOffset To)> AliveWithin(DateTimeOffset start, DateTimeOffset end)
    {
        foreach (var (from, to, _) in _alive)
        {
            var a = from > start ? from : start;
            var b = to is { } t && t < end ? t : end;
            if (b > a)
                yield return (a, b);
        }
    }

    /// <summary>Adds every instant in (from, to) where capacity or an allocation changes.</summary>
    public void AddChangePoints(DateTimeOffset from, DateTimeOffset to, List<DateTimeOffset> cuts)
    {
        foreach (var (at, _) in _capacity)
        {
            if (at > from && at < to)
                cuts.Add(at);
        }
        foreach (var gpu in Gpus)
        {
            foreach (var a in gpu)
            {
                if (a.From > from && a.From < to)
                    cuts.Add(a.From);
                if (a.To is { } end && end > from && end < to)
                    cuts.Add(end);
            }
        }
        foreach (var a in Cpus)
        {
            if (a.From > from && a.From < to)
                cuts.Add(a.From);
            if (a.To is { } end && end > from && end < to)
                cuts.Add(end);
        }
    }

    /// <summary>Forgets allocations and intervals that ended before <paramref name="before"/>.</summary>
    public void Prune(DateTimeOffset before)
    {
        foreach (var gpu in Gpus)
            gpu.RemoveAll(a => a.To is { } t && t <= before);
        Cpus.RemoveAll(a => a.To is { } t && t <= before);
        // Keep the last interval: it says when the node was last alive.
        while (_alive.Count > 1 && _alive[0].To is { } t && t <= before)
            _alive.RemoveAt(0);
        while (_capacity.Count > 1 && _capacity[1].At <= before)
            _capacity.RemoveAt(0);
    }

    /// <summary>True when the node stopped (exactly) before <paramref name="before"/> and can be forgotten.</summary>
    public bool IsGoneBefore(DateTimeOffset before) =>
        _alive.Count > 0 && _alive[^1].To is { } t && t <= before && (_alive[^1].Exact || before - t > TimeSpan.FromHours(1));
}

/// <summary>A workload as the engine tracks it.</summary>
internal sealed class WorkloadState(WorkloadInfo info, DateTimeOffset started, decimal? estimatePerHour)
{
    public WorkloadInfo Info { get; set; } = info;
    public DateTimeOffset Started { get; } = started;
    public DateTimeOffset? Stopped { get; set; }
    public decimal? EstimatePerHour { get; set; } = estimatePerHour;
    /// <summary>The nodes it has held GPUs on, so that its stop visits only those.</summary>
    public HashSet<string> Nodes { get; } = new(StringComparer.Ordinal);
}

/// <summary>One size of a volume over [From, To).</summary>
internal sealed record VolumeSegment(DateTimeOffset From, string WorkloadId, WorkloadInfo Workload, string Provider, string Region,
    string StorageClass, decimal SizeGb, decimal PricePerGbMonth)
{
    public DateTimeOffset? To { get; set; }
}

/// <summary>A volume or bucket: its sizes over time.</summary>
internal sealed class VolumeState(string id)
{
    private readonly List<VolumeSegment> _segments = [];
    public string Id { get; } = id;

    public void Change(DateTimeOffset time, Telemetry.StorageChanged s, decimal pricePerGbMonth, WorkloadInfo workload)
    {
        if (_segments.Count > 0 && _segments[^1].To is null)
            _segments[^1].To = time;
        if (s.SizeGb > 0)
            _segments.Add(new VolumeSegment(time, s.WorkloadId, workload, s.Provider, s.Region, s.StorageClass, s.SizeGb, pricePerGbMonth));
    }

    public void EndFor(string workloadId, DateTimeOffset time)
    {
        if (_segments.Count > 0 && _segments[^1].To is null && _segments[^1].WorkloadId == workloadId)
            _segments[^1].To = time;
    }

    public bool IsEmpty => _segments.Count == 0;

    /// <summary>Forgets sizes that ended before <paramref name="before"/>.</summary>
    public void Prune(DateTimeOffset before) => _segments.RemoveAll(s => s.To is { } t && t <= before);

    public VolumeSegment? At(DateTimeOffset t) =>
        _segments.LastOrDefault(s => s.From <= t && (s.To is null || t < s.To));

    public IEnumerable<VolumeSegment> Within(DateTimeOffset start, DateTimeOffset end)
    {
        foreach (var s in _segments)
        {
            if (s.From < end && (s.To is null || s.To > start))
                yield return s;
        }
    }
}
