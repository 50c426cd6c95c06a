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
    private readonly List<(DateTimeOffset From, DateTimeOffset? To)> _alive = [];
    private readonly List<(DateTimeOffset At, CapacityType Capacity)> _capacity = [];
    private bool _exact;
    private DateTimeOffset _lastHeartbeat;

    public NodeState(NodeSpec spec, WorkloadInfo owner)
    {
        Spec = spec;
        Owner = owner;
        Gpus = new List<Allocation>[Math.Max(spec.GpuCount, 0)];
        for (var i = 0; i < Gpus.Length; i++)
            Gpus[i] = [];
        Utilization = new double[Gpus.Length];
    }

    public NodeSpec Spec { get; }
    /// <summary>Who pays the node's idle part (derived from the node's labels).</summary>
    public WorkloadInfo Owner { get; }
    public List<Allocation>[] Gpus { get; }
    public double[] Utilization { get; }

    public void Start(DateTimeOffset time, CapacityType capacity, bool exact)
    {
        if (_alive.Count > 0 && _alive[^1].To is null)
        {
            // Already running: an exact start overrides a start inferred from samples.
            if (exact && !_exact && _alive[^1].From > time)
                _alive[^1] = (time, null);
            _exact |= exact;
            return;
        }
        _exact = exact;
        _alive.Add((time, exact ? null : time));
        _lastHeartbeat = time;
        if (_capacity.Count == 0 || _capacity[^1].Capacity != capacity)
            _capacity.Add((time, capacity));
    }

    public void Heartbeat(DateTimeOffset time, TimeSpan staleness)
    {
        if (time > _lastHeartbeat)
            _lastHeartbeat = time;
        if (_exact && _alive.Count > 0 && _alive[^1].To is null)
            return; // exact lifecycle: samples only confirm it
        if (_alive.Count == 0)
        {
            Start(time, Spec.Capacity, exact: false);
            return;
        }
        var (from, to) = _alive[^1];
        var end = to ?? time;
        if (time <= end)
            return;
        if (time - end <= staleness)
            _alive[^1] = (from, time); // a gap within the staleness window counts as alive
        else
            _alive.Add((time, time));
    }

    public void Stop(DateTimeOffset time)
    {
        if (_alive.Count == 0)
            return;
        var (from, to) = _alive[^1];
        if (to is null || to > time)
            _alive[^1] = (from, time < from ? from : time);
        foreach (var gpu in Gpus)
        {
            foreach (var a in gpu)
            {
                if (a.To is null || a.To > time)
                    a.To = time < a.From ? a.From : time;
            }
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

    public bool IsAliveAt(DateTimeOffset t)
    {
        foreach (var (from, to) in _alive)
        {
            if (from <= t && (to is null || t < to))
                return true;
        }
        return false;
    }

    /// <summary>The alive parts of [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public IEnumerable<(DateTimeOffset From, DateTimeOffset To)> AliveWithin(DateTimeOffset start, DateTimeOffset end)
    {
        foreach (var (from, to) in _alive)
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
    }

    /// <summary>Forgets allocations and intervals that ended before <paramref name="before"/>.</summary>
    public void Prune(DateTimeOffset before)
    {
        foreach (var gpu in Gpus)
            gpu.RemoveAll(a => a.To is { } t && t <= before);
        // Keep the last interval: it says when the node was last alive.
        while (_alive.Count > 1 && _alive[0].To is { } t && t <= before)
            _alive.RemoveAt(0);
        while (_capacity.Count > 1 && _capacity[1].At <= before)
            _capacity.RemoveAt(0);
    }

    /// <summary>True when the node stopped (exactly) before <paramref name="before"/> and can be forgotten.</summary>
    public bool IsGoneBefore(DateTimeOffset before) =>
        _alive.Count > 0 && _alive[^1].To is { } t && t <= before && (_exact || before - t > TimeSpan.FromHours(1));
}

/// <summary>A workload as the engine tracks it.</summary>
internal sealed class WorkloadState(WorkloadInfo info, DateTimeOffset started, decimal? estimatePerHour)
{
    public WorkloadInfo Info { get; set; } = info;
    public DateTimeOffset Started { get; } = started;
    public DateTimeOffset? Stopped { get; set; }
    public decimal? EstimatePerHour { get; set; } = estimatePerHour;
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
