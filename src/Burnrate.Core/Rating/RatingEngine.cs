using System.Globalization;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using Burnrate.Telemetry;

namespace Burnrate.Rating;

/// <summary>
/// Turns fleet events into the per-minute ledger. The only place where usage becomes money.
/// </summary>
/// <remarks>
/// The engine keeps, per node, its alive intervals, capacity changes and per-GPU allocation intervals. Rating a
/// minute cuts each node's alive part of the minute at every instant where the capacity, an allocation or the price
/// changes, prices each segment from the price book, splits the node rate into GPU and CPU/memory parts, each GPU
/// part among the workloads holding that GPU, the CPU/memory part by the workloads' share of the node's GPUs, and
/// books what no workload holds as idle. Time is kept to the whole second.
/// <para>
/// Exactness: a line (resource, GPU, workload, component) accrues <c>rate × seconds</c> in units of 1/3600
/// nano-dollar; each minute books the whole nano-dollars accrued and carries the remainder to the line's next
/// minute, so a line's minutes add up exactly to <c>floor(rate × duration / 3600)</c> nano-dollars. Minutes must be
/// rated in order; an event older than the last rated minute takes effect from the next unrated one.
/// </para>
/// Not thread-safe: one caller applies events and rates minutes (the pipeline's loop).
/// </remarks>
public sealed class RatingEngine
{
    private const int SecondsPerMinute = 60;
    private readonly IPriceBook _prices;
    private readonly IRateCard _rateCard;
    private readonly AttributionRules _rules;
    private readonly RatingOptions _options;
    private readonly Dictionary<string, NodeState> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WorkloadState> _workloads = new(StringComparer.Ordinal);
    private readonly Dictionary<string, VolumeState> _volumes = new(StringComparer.Ordinal);
    private readonly Dictionary<LineKey, long> _carry = [];
    private readonly List<BytesTransferred> _transfers = [];
    private readonly Dictionary<(string Workload, string Metric), double> _counterTotals = [];
    private readonly Dictionary<(long Minute, string Workload, string Metric), double> _work = [];
    private readonly HashSet<string> _unpriced = new(StringComparer.Ordinal);
    private DateTimeOffset? _ratedThrough;

    // Buffers reused across nodes and minutes so that the rating loop does not allocate per node or segment.
    private readonly Dictionary<LineKey, PendingRow> _pending = [];
    private readonly List<SegmentLine> _segmentLines = [];
    private readonly List<DateTimeOffset> _cuts = [];
    private readonly List<Allocation> _holders = [];
    private readonly Dictionary<string, Fraction> _nodeShares = new(StringComparer.Ordinal);
    private readonly List<string> _shareOrder = [];

    // Commitments (reservations, savings plans) covering on-demand nodes for the minute being rated or the burn reading.
    private readonly Dictionary<string, Coverage> _coverage = new(StringComparer.Ordinal);
    private readonly List<CoverageCandidate> _candidates = [];
    private Calibration _calibration = Calibration.None;

    public RatingEngine(IPriceBook prices, IRateCard rateCard, AttributionRules? rules = null, RatingOptions? options = null)
    {
        _prices = prices;
        _rateCard = rateCard;
        _rules = rules ?? AttributionRules.None;
        _options = options ?? new RatingOptions();
    }

    /// <summary>
    /// The calibration factors applied to live rates (learned from reconciled bills); replaced whole, from any thread —
    /// the next segment priced uses the new set.
    /// </summary>
    public Calibration Calibration
    {
        get => Volatile.Read(ref _calibration);
        set => Volatile.Write(ref _calibration, value ?? Calibration.None);
    }

    /// <summary>Each savings plan's commitment (dollars per hour) left unspent by the last minute rated or burn read.</summary>
    public IReadOnlyDictionary<string, decimal> UnspentCommitments { get; private set; } = new Dictionary<string, decimal>();

    /// <summary>The commitments and discounts this engine rates with.</summary>
    public PricingTerms PricingTerms => _options.Terms;

    /// <summary>The end of the last minute rated, or null before the first.</summary>
    public DateTimeOffset? RatedThrough => _ratedThrough;

    /// <summary>Keys (provider/region/type/capacity) that had no price when rated: they were booked at zero.</summary>
    public IReadOnlyCollection<string> Unpriced => _unpriced;

    /// <summary>Events that referred to a node or workload the engine did not know (ignored, counted).</summary>
    public long OrphanEvents { get; private set; }

    /// <summary>Events older than the last rated minute (applied from the next unrated minute).</summary>
    public long LateEvents { get; private set; }

    public int NodeCount => _nodes.Count;

    /// <summary>The price book the engine rates with (price events add to it).</summary>
    public IPriceBook Prices => _prices;

    /// <summary>
    /// The nodes running at <paramref name="at"/> (as <see cref="CurrentBurn"/> counts them) with each GPU's holders then:
    /// the fleet inventory right now.
    /// </summary>
    public IReadOnlyList<NodeSnapshot> NodesAt(DateTimeOffset at)
    {
        at = TruncateToSecond(at);
        var result = new List<NodeSnapshot>();
        var holders = new List<Allocation>();
        foreach (var node in _nodes.Values)
        {
            if (!node.IsRunningAt(at, _options.Staleness))
                continue;
            var gpus = new GpuSnapshot[node.Gpus.Length];
            for (var g = 0; g < gpus.Length; g++)
            {
                node.HoldersAt(g, at, holders);
                gpus[g] = new GpuSnapshot(g, [.. holders.Select(h => new GpuHolder(h.WorkloadId, h.Share))]);
            }
            result.Add(new NodeSnapshot(node.Spec, node.CapacityAt(at), node.Owner.Team, gpus));
        }
        result.Sort(static (a, b) => string.CompareOrdinal(a.Spec.Id, b.Spec.Id));
        return result;
    }

    /// <summary>Known workloads with their attributed identity.</summary>
    public IEnumerable<WorkloadSnapshot> Workloads =>
        _workloads.Values.Select(w => new WorkloadSnapshot(w.Info, w.Started, w.Stopped, w.EstimatePerHour));

    /// <summary>Applies one event to the inventory.</summary>
    public void Apply(FleetEvent e)
    {
        var time = Clamp(TruncateToSecond(e.Time));
        switch (e)
        {
            case NodeStarted s:
                StartNode(s.Node, time, exact: true);
                break;
            case NodeHeartbeat h:
                Heartbeat(h.Node, time);
                break;
            case NodeStopped s:
                if (_nodes.TryGetValue(s.NodeId, out var stopped))
                    stopped.Stop(time);
                else
                    OrphanEvents++;
                break;
            case CapacityChanged c:
                if (_nodes.TryGetValue(c.NodeId, out var changed))
                    changed.SetCapacity(time, c.Capacity);
                else
                    OrphanEvents++;
                break;
            case PriceChanged p:
                ApplyPrice(p, time);
                break;
            case WorkloadStarted w:
                StartWorkload(w, time);
                break;
            case WorkloadStopped w:
                StopWorkload(w.WorkloadId, time);
                break;
            case GpuAllocated a:
                Allocate(a, time);
                break;
            case CpuAllocated c:
                AllocateCpu(c, time);
                break;
            case GpuReleased r:
                if (_nodes.TryGetValue(r.NodeId, out var released) && released.Release(r.GpuIndex, r.WorkloadId, time))
                    break;
                OrphanEvents++;
                break;
            case GpuUtilization u:
                if (_nodes.TryGetValue(u.NodeId, out var utilized) && u.GpuIndex >= 0 && u.GpuIndex < utilized.Utilization.Length)
                    utilized.Utilization[u.GpuIndex] = u.Utilization;
                break;
            case WorkCounter c:
                Count(c, time);
                break;
            case BytesTransferred t:
                _transfers.Add(t with { Time = time });
                break;
            case StorageChanged s:
                ChangeStorage(s, time);
                break;
        }
    }

    /// <summary>
    /// Rates the minute starting at <paramref name="minute"/> (a whole UTC minute, after the last one rated) and returns
    /// its ledger lines and the minute's work-counter increases.
    /// </summary>
    public RatedMinute RateMinute(DateTimeOffset minute)
    {
        if (minute.Ticks % TimeSpan.TicksPerMinute != 0)
            throw new ArgumentException($"{minute:O} is not the start of a minute.", nameof(minute));
        if (_ratedThrough is { } through && minute < through)
            throw new InvalidOperationException($"minute {minute:O} was already rated (rated through {through:O}); minutes are rated in order.");

        var end = minute.AddMinutes(1);
        var lines = new List<CostLine>();
        AllocateCommitments(minute, end, instant: false);
        foreach (var node in _nodes.Values)
            RateNode(node, minute, end, lines);
        foreach (var volume in _volumes.Values)
            RateVolume(volume, minute, end, lines);
        RateTransfers(minute, end, lines);
        BookUnusedCommitments(minute, lines);

        var work = new List<Storage.WorkMinute>();
        var key = minute.Ticks;
        foreach (var ((m, workload, metric), increase) in _work)
        {
            if (m == key)
                work.Add(new Storage.WorkMinute(minute, workload, metric, increase));
        }
        foreach (var w in work)
            _work.Remove((key, w.WorkloadId, w.Metric));

        _ratedThrough = end;
        Prune(end);
        return new RatedMinute(minute, lines, work);
    }

    /// <summary>
    /// The rates in force at <paramref name="at"/> per line: what every running thing costs right now. A node known only
    /// from samples counts as running until <see cref="RatingOptions.Staleness"/> after its last sample, since "now" is
    /// always after the last sample received.
    /// </summary>
    public IReadOnlyList<BurnLine> CurrentBurn(DateTimeOffset at)
    {
        at = TruncateToSecond(at);
        var result = new List<BurnLine>();
        var segmentLines = new List<SegmentLine>();
        AllocateCommitments(at, at, instant: true);
        foreach (var node in _nodes.Values)
        {
            if (!node.IsRunningAt(at, _options.Staleness))
                continue;
            segmentLines.Clear();
            var source = PriceSegment(node, at, segmentLines);
            foreach (var l in segmentLines)
                result.Add(new BurnLine(node.Spec.Id, l.Key.GpuIndex, l.Key.WorkloadId, l.Key.Component, l.Rate, Dimensions(node, l.Key.WorkloadId, node.CapacityAt(at), source.Source)));
        }
        foreach (var v in _volumes.Values)
        {
            var seg = v.At(at);
            if (seg is null)
                continue;
            var rate = StorageRate(seg);
            result.Add(new BurnLine(v.Id, -1, seg.WorkloadId, CostComponent.Storage, rate, VolumeDimensions(seg)));
        }
        foreach (var plan in _options.Terms.SavingsPlans)
        {
            if (UnspentCommitments.GetValueOrDefault(plan.Name) is var unused and > 0m)
                result.Add(new BurnLine(plan.LedgerResource, -1, WorkloadInfo.IdleId, CostComponent.Commitment, UnusedCommitmentRate(plan, unused), CommitmentDimensions(plan)));
        }
        return result;
    }

    // ---- inventory -----------------------------------------------------------------------------------------

    private void StartNode(NodeSpec spec, DateTimeOffset time, bool exact)
    {
        if (!_nodes.TryGetValue(spec.Id, out var node))
        {
            node = new NodeState(spec, AttributeOwner(spec));
            _nodes.Add(spec.Id, node);
        }
        else
        {
            node.Learn(spec);
        }
        node.Start(time, spec.Capacity, exact, _options.Staleness);
    }

    private void Heartbeat(NodeSpec spec, DateTimeOffset time)
    {
        if (_nodes.TryGetValue(spec.Id, out var node))
        {
            node.Learn(spec);
            node.Heartbeat(time, _options.Staleness);
            return;
        }
        StartNode(spec, time, exact: false);
    }

    private WorkloadInfo AttributeOwner(NodeSpec spec)
    {
        var labels = spec.Labels ?? new Dictionary<string, string>();
        var owner = new WorkloadInfo(
            WorkloadInfo.IdleId, "", spec.Cluster,
            labels.GetValueOrDefault("user", ""), labels.GetValueOrDefault("team", ""),
            labels.GetValueOrDefault("project", ""), "", labels);
        return _rules.Apply(owner);
    }

    private void StartWorkload(WorkloadStarted w, DateTimeOffset time)
    {
        var info = _rules.Apply(w.Workload);
        if (_workloads.TryGetValue(info.Id, out var existing))
        {
            existing.Info = info;
            existing.EstimatePerHour = w.EstimatePerHour ?? existing.EstimatePerHour;
            existing.Stopped = null;
            return;
        }
        _workloads.Add(info.Id, new WorkloadState(info, time, w.EstimatePerHour));
    }

    private void StopWorkload(string id, DateTimeOffset time)
    {
        if (!_workloads.TryGetValue(id, out var w))
        {
            OrphanEvents++;
            return;
        }
        w.Stopped = time;
        // Only the nodes it ever held GPUs on: a stop costs what the workload touched, not the fleet's size.
        foreach (var nodeId in w.Nodes)
        {
            if (_nodes.TryGetValue(nodeId, out var node))
                node.ReleaseAll(id, time);
        }
        foreach (var v in _volumes.Values)
            v.EndFor(id, time);
    }

    private void Allocate(GpuAllocated a, DateTimeOffset time)
    {
        if (!_nodes.TryGetValue(a.NodeId, out var node) || a.GpuIndex < 0 || a.GpuIndex >= node.Gpus.Length)
        {
            OrphanEvents++;
            return;
        }
        if (!_workloads.TryGetValue(a.WorkloadId, out var workload))
        {
            // A workload seen first through its allocation (a pod with no lifecycle event): known by id only.
            workload = new WorkloadState(_rules.Apply(new WorkloadInfo(a.WorkloadId, "", a.WorkloadId)), time, null);
            _workloads.Add(a.WorkloadId, workload);
        }
        workload.Nodes.Add(a.NodeId);
        node.Allocate(a.GpuIndex, a.WorkloadId, a.Share, time);
    }

    private void AllocateCpu(CpuAllocated c, DateTimeOffset time)
    {
        if (!_nodes.TryGetValue(c.NodeId, out var node) || c.Cpus <= 0 || c.Cpus > c.NodeCpus)
        {
            OrphanEvents++;
            return;
        }
        if (!_workloads.TryGetValue(c.WorkloadId, out var workload))
        {
            workload = new WorkloadState(_rules.Apply(new WorkloadInfo(c.WorkloadId, "", c.WorkloadId)), time, null);
            _workloads.Add(c.WorkloadId, workload);
        }
        workload.Nodes.Add(c.NodeId);
        node.AllocateCpu(c.WorkloadId, GpuShare.Shared(c.Cpus, c.NodeCpus), time);
    }

    private void ApplyPrice(PriceChanged p, DateTimeOffset time)
    {
        var template = _prices.Find(p.Provider, p.Region, p.Zone, p.InstanceType, p.Capacity, time)
            ?? _prices.Find(p.Provider, p.Region, p.Zone, p.InstanceType, CapacityType.OnDemand, time);
        decimal gpuPrice = 0;
        int gpuCount = 0, vcpus = 0;
        decimal memory = 0;
        var model = "";
        if (template is not null && template.PricePerHour > 0)
        {
            // Keep the template's GPU share of the price: a spot move moves both parts alike.
            gpuPrice = template.GpuPricePerHour * p.PricePerHour / template.PricePerHour;
            gpuCount = template.GpuCount;
            vcpus = template.VCpus;
            memory = template.MemoryGiB;
            model = template.GpuModel;
        }
        if (p.GpuPricePerHour is { } perGpu)
            gpuPrice = perGpu; // the sender's own split (an on-prem $/GPU-hour)
        _prices.Add(new InstancePrice(p.Provider, p.Region, p.Zone, p.InstanceType, p.Capacity, p.PricePerHour,
            decimal.Round(gpuPrice, 9, MidpointRounding.AwayFromZero), gpuCount, model, vcpus, memory, time, "price-event"));
    }

    private void Count(WorkCounter c, DateTimeOffset time)
    {
        var key = (c.WorkloadId, c.Metric);
        double increase;
        if (_counterTotals.TryGetValue(key, out var last))
            increase = c.Total >= last ? c.Total - last : c.Total; // a smaller total is a counter reset
        else
            increase = 0; // the first sample only sets the baseline
        _counterTotals[key] = c.Total;
        if (increase <= 0)
            return;
        var minute = Floor(time).Ticks;
        var wk = (minute, c.WorkloadId, c.Metric);
        _work[wk] = _work.GetValueOrDefault(wk) + increase;
    }

    private void ChangeStorage(StorageChanged s, DateTimeOffset time)
    {
        if (!_volumes.TryGetValue(s.VolumeId, out var v))
        {
            v = new VolumeState(s.VolumeId);
            _volumes.Add(s.VolumeId, v);
        }
        var perGbMonth = _rateCard.StoragePerGbMonth(s.Provider, s.Region, s.StorageClass);
        var w = _workloads.TryGetValue(s.WorkloadId, out var ws) ? ws.Info : new WorkloadInfo(s.WorkloadId, "", s.WorkloadId);
        v.Change(time, s, perGbMonth, w);
    }

    // ---- rating --------------------------------------------------------------------------------------------

    private void RateNode(NodeState node, DateTimeOffset minute, DateTimeOffset end, List<CostLine> output)
    {
        var pending = _pending;
        pending.Clear();
        var segmentLines = _segmentLines;
        foreach (var (from, to) in node.AliveWithin(minute, end))
        {
            var points = _cuts;
            points.Clear();
            points.Add(from);
            points.Add(to);
            node.AddChangePoints(from, to, points);
            points.Sort();
            for (var i = 0; i + 1 < points.Count; i++)
            {
                var a = points[i];
                var b = points[i + 1];
                if (a == b)
                    continue; // the same instant listed twice
                // The price may change inside a segment of constant capacity and allocations.
                while (a < b)
                {
                    var capacity = node.CapacityAt(a);
                    var next = _prices.NextChange(node.Spec.Provider, node.Spec.Region, node.Spec.Zone, node.Spec.InstanceType, capacity, a, b) ?? b;
                    if (capacity == CapacityType.Spot && _options.SpotFallsBackToOnDemand)
                    {
                        var odNext = _prices.NextChange(node.Spec.Provider, node.Spec.Region, node.Spec.Zone, node.Spec.InstanceType, CapacityType.OnDemand, a, next);
                        if (odNext is { } n2 && n2 < next)
                            next = n2;
                    }
                    // Seconds are priced at the price in force at their start, so a change at 40.5 s takes
                    // effect from second 41: round the cut up to the whole second, never past the segment.
                    next = CeilingToSecond(next);
                    if (next > b)
                        next = b;
                    segmentLines.Clear();
                    var price = PriceSegment(node, a, segmentLines);
                    var seconds = (int)((next - a).Ticks / TimeSpan.TicksPerSecond);
                    var offset = (int)((a - minute).Ticks / TimeSpan.TicksPerSecond);
                    foreach (var line in segmentLines)
                        Accrue(pending, line, offset, seconds, price.Source, output, node, minute, capacity);
                    a = next;
                }
            }
        }
        Flush(pending, output, minute);
    }

    private readonly record struct PriceResult(string Source);

    /// <summary>Prices the node at instant <paramref name="at"/> and splits its rate into lines.</summary>
    private PriceResult PriceSegment(NodeState node, DateTimeOffset at, List<SegmentLine> lines)
    {
        var spec = node.Spec;
        var capacity = node.CapacityAt(at);
        var price = _prices.Find(spec.Provider, spec.Region, spec.Zone, spec.InstanceType, capacity, at);
        var source = price?.Source ?? "";
        if (price is null && capacity == CapacityType.Spot && _options.SpotFallsBackToOnDemand)
        {
            price = _prices.Find(spec.Provider, spec.Region, spec.Zone, spec.InstanceType, CapacityType.OnDemand, at);
            if (price is not null)
                source = "no-spot-price:" + price.Source;
        }
        if (price is null)
        {
            _unpriced.Add($"{spec.Provider}/{spec.Region}/{spec.InstanceType}/{capacity.ToName()}");
            source = "unpriced";
        }

        var nodeRate = price is null ? HourlyRate.Zero : HourlyRate.FromDollarsPerHour(price.PricePerHour);
        var gpuCount = node.Gpus.Length;
        var gpuRate = price is null || gpuCount == 0 ? HourlyRate.Zero : HourlyRate.FromDollarsPerHour(price.GpuPricePerHour);
        if (price is not null && Terms(spec, capacity, ref source) is var multiplier && multiplier != 1m)
        {
            nodeRate = Scale(nodeRate, multiplier);
            gpuRate = Scale(gpuRate, multiplier);
        }
        if (gpuRate.NanosPerHour * gpuCount > nodeRate.NanosPerHour)
            gpuRate = new HourlyRate(nodeRate.NanosPerHour / Math.Max(gpuCount, 1));
        var computeRate = new HourlyRate(nodeRate.NanosPerHour - gpuRate.NanosPerHour * gpuCount);

        // GPU parts, and each workload's share of the node (sum of its GPU shares / GPU count) for the compute part.
        var nodeShares = _nodeShares;
        nodeShares.Clear();
        Span<HourlyRate> parts = stackalloc HourlyRate[16];
        Span<Fraction> shares = stackalloc Fraction[16];
        for (var g = 0; g < gpuCount; g++)
        {
            var holders = _holders;
            node.HoldersAt(g, at, holders);
            if (holders.Count > shares.Length)
            {
                parts = new HourlyRate[holders.Count];
                shares = new Fraction[holders.Count];
            }
            for (var i = 0; i < holders.Count; i++)
                shares[i] = Fraction.Of(holders[i].Share);
            var s = shares[..holders.Count];
            RateSplit.Normalize(s);
            var idle = RateSplit.Split(gpuRate, s, parts);
            for (var i = 0; i < holders.Count; i++)
            {
                lines.Add(new SegmentLine(new LineKey(spec.Id, g, holders[i].WorkloadId, CostComponent.Gpu), parts[i], s[i]));
                nodeShares[holders[i].WorkloadId] = nodeShares.GetValueOrDefault(holders[i].WorkloadId, Fraction.Zero) + s[i] / new Fraction(gpuCount, 1);
            }
            var used = Fraction.Zero;
            foreach (var f in s)
                used += f;
            if (idle.NanosPerHour > 0 || holders.Count == 0)
                lines.Add(new SegmentLine(new LineKey(spec.Id, g, WorkloadInfo.IdleId, CostComponent.Gpu), idle, new Fraction(used.Denominator - used.Numerator, used.Denominator)));
        }

        // CPU shares of workloads holding no GPU here take their share of what the GPU holders leave of the compute
        // part, in workload id order, each at most what is still free: GPU holders pay exactly what they did without them.
        node.CpuHoldersAt(at, _holders);
        if (_holders.Count > 0)
        {
            var taken = Fraction.Zero;
            foreach (var share in nodeShares.Values)
                taken += share;
            foreach (var cpu in _holders)
            {
                if (nodeShares.ContainsKey(cpu.WorkloadId) || taken.Numerator >= taken.Denominator)
                    continue;
                var wanted = Fraction.Of(cpu.Share);
                var free = new Fraction(taken.Denominator - taken.Numerator, taken.Denominator);
                var share = wanted.Numerator * free.Denominator <= free.Numerator * wanted.Denominator ? wanted : free;
                nodeShares[cpu.WorkloadId] = share;
                taken += share;
            }
        }

        var left = computeRate.NanosPerHour;
        var held = Fraction.Zero;
        _shareOrder.Clear();
        _shareOrder.AddRange(nodeShares.Keys);
        _shareOrder.Sort(StringComparer.Ordinal);
        foreach (var workload in _shareOrder)
        {
            var share = nodeShares[workload];
            var rate = share.FloorTimes(computeRate.NanosPerHour);
            left -= rate;
            held += share;
            lines.Add(new SegmentLine(new LineKey(spec.Id, -1, workload, CostComponent.Compute), new HourlyRate(rate), share));
        }
        if (left > 0 || nodeShares.Count == 0)
            lines.Add(new SegmentLine(new LineKey(spec.Id, -1, WorkloadInfo.IdleId, CostComponent.Compute), new HourlyRate(left), new Fraction(held.Denominator - held.Numerator, held.Denominator)));
        return new PriceResult(source);
    }

    /// <summary>
    /// The multiplier the bill applies to a node's listed rate — the commitment covering it (on demand only), the
    /// negotiated discount, the learned calibration — with each named in <paramref name="source"/>; 1 when none.
    /// </summary>
    private decimal Terms(NodeSpec spec, CapacityType capacity, ref string source)
    {
        var multiplier = 1m;
        if (capacity == CapacityType.OnDemand && _coverage.TryGetValue(spec.Id, out var coverage))
        {
            multiplier = coverage.Multiplier;
            source += ";" + coverage.Note;
        }
        var discount = _options.Terms.DiscountMultiplier(spec.Provider, capacity);
        if (discount != 1m)
        {
            multiplier *= discount;
            source += string.Create(CultureInfo.InvariantCulture, $";discount:{(1m - discount) * 100m:0.####}%");
        }
        if (Calibration.Find(spec.Provider, CalibratedUsage.Compute, spec.InstanceType, capacity) is { } calibration)
        {
            multiplier *= calibration.Factor;
            source += string.Create(CultureInfo.InvariantCulture, $";calibrated:{calibration.Factor:0.######}");
        }
        return multiplier;
    }

    private static HourlyRate Scale(HourlyRate rate, decimal multiplier) =>
        new((long)decimal.Round(rate.NanosPerHour * multiplier, MidpointRounding.ToEven));

    /// <summary>
    /// Decides which on-demand nodes the reservations and savings plans cover over [<paramref name="start"/>,
    /// <paramref name="end"/>) (a minute), or at the instant <paramref name="start"/> (a burn reading).
    /// </summary>
    private void AllocateCommitments(DateTimeOffset start, DateTimeOffset end, bool instant)
    {
        _coverage.Clear();
        var terms = _options.Terms;
        if (terms.Reservations.Count == 0 && terms.SavingsPlans.Count == 0)
            return;
        _candidates.Clear();
        foreach (var node in _nodes.Values)
        {
            decimal running;
            DateTimeOffset first;
            if (instant)
            {
                if (!node.IsRunningAt(start, _options.Staleness))
                    continue;
                running = 1m;
                first = start;
            }
            else
            {
                long ticks = 0;
                first = end;
                foreach (var (a, b) in node.AliveWithin(start, end))
                {
                    ticks += (b - a).Ticks;
                    if (a < first)
                        first = a;
                }
                if (ticks == 0)
                    continue;
                running = (decimal)ticks / (end - start).Ticks;
            }
            if (node.CapacityAt(first) != CapacityType.OnDemand)
                continue;
            var spec = node.Spec;
            if (_prices.Find(spec.Provider, spec.Region, spec.Zone, spec.InstanceType, CapacityType.OnDemand, first) is not { } price)
                continue;
            _candidates.Add(new CoverageCandidate(spec.Id, spec.Provider, spec.Region, spec.InstanceType, price.PricePerHour, running, node.LaunchedAt(first)));
        }
        UnspentCommitments = CommitmentCoverage.Allocate(terms, _candidates, _coverage);
    }

    /// <summary>
    /// A savings plan bills its whole commitment every hour, used or not: what the minute's eligible on-demand usage left
    /// unused (<see cref="UnspentCommitments"/>, dollars per hour) is booked as a line of its own — resource
    /// <c>savings-plan/NAME</c>, component <see cref="CostComponent.Commitment"/>, no workload — so the ledger sums to
    /// what the bill will charge. Its quantity is the plan's seconds, its rate the unused dollars per hour (less the
    /// provider's negotiated discount, which bills apply to commitment fees too).
    /// </summary>
    private void BookUnusedCommitments(DateTimeOffset minute, List<CostLine> output)
    {
        foreach (var plan in _options.Terms.SavingsPlans)
        {
            if (UnspentCommitments.GetValueOrDefault(plan.Name) is not (var unused and > 0m))
                continue;
            var key = new LineKey(plan.LedgerResource, -1, WorkloadInfo.IdleId, CostComponent.Commitment);
            var discount = _options.Terms.DiscountMultiplier(plan.Provider, CapacityType.OnDemand);
            var source = discount == 1m
                ? $"savings-plan:{plan.Name};unused"
                : string.Create(CultureInfo.InvariantCulture, $"savings-plan:{plan.Name};unused;discount:{(1m - discount) * 100m:0.####}%");
            var row = new PendingRow(key, UnusedCommitmentRate(plan, unused), Fraction.One, source, CapacityType.OnDemand, 0, 60, CommitmentDimensions(plan));
            output.Add(Book(row, minute));
        }
    }

    private HourlyRate UnusedCommitmentRate(SavingsPlan plan, decimal unusedPerHour) =>
        HourlyRate.FromDollarsPerHour(unusedPerHour * _options.Terms.DiscountMultiplier(plan.Provider, CapacityType.OnDemand));

    private static LineDimensions CommitmentDimensions(SavingsPlan plan) =>
        new(plan.Provider, "", "", CapacityType.OnDemand, "", "", "", "", "", "");

    private void Accrue(Dictionary<LineKey, PendingRow> pending, SegmentLine line, int offset, int seconds, string source,
        List<CostLine> output, NodeState node, DateTimeOffset minute, CapacityType capacity)
    {
        if (seconds <= 0)
            return;
        if (pending.TryGetValue(line.Key, out var row))
        {
            if (row.Rate == line.Rate && row.Share == line.Share && row.Source == source && row.Capacity == capacity && row.Offset + row.Seconds == offset)
            {
                row.Seconds += seconds;
                return;
            }
            output.Add(Book(row, minute));
        }
        pending[line.Key] = new PendingRow(line.Key, line.Rate, line.Share, source, capacity, offset, seconds, Dimensions(node, line.Key.WorkloadId, capacity, source));
    }

    private void Flush(Dictionary<LineKey, PendingRow> pending, List<CostLine> output, DateTimeOffset minute)
    {
        foreach (var row in pending.Values)
            output.Add(Book(row, minute));
    }

    /// <summary>Turns accrued seconds at a rate into whole nano-dollars, carrying the remainder per line.</summary>
    private CostLine Book(PendingRow row, DateTimeOffset minute)
    {
        var carry = _carry.GetValueOrDefault(row.Key);
        var units = (Int128)row.Rate.NanosPerHour * row.Seconds + carry; // 1/3600 nano-dollars
        var nanos = (long)(units / 3600);
        _carry[row.Key] = (long)(units % 3600);
        var d = row.Dims;
        return new CostLine
        {
            Minute = minute,
            SegmentStart = row.Offset,
            Seconds = row.Seconds,
            ResourceId = row.Key.ResourceId,
            GpuIndex = row.Key.GpuIndex,
            WorkloadId = row.Key.WorkloadId,
            Component = row.Key.Component,
            Rate = row.Rate,
            SharePpm = row.Share.ToPpm(),
            Quantity = row.Share.ToDecimal() * row.Seconds,
            Cost = new Money(nanos),
            PriceSource = row.Source,
            Provider = d.Provider,
            Region = d.Region,
            InstanceType = d.InstanceType,
            Capacity = d.Capacity,
            GpuModel = d.GpuModel,
            Cluster = d.Cluster,
            Orchestrator = d.Orchestrator,
            Team = d.Team,
            Project = d.Project,
            User = d.User,
        };
    }

    private LineDimensions Dimensions(NodeState node, string workloadId, CapacityType capacity, string source)
    {
        _ = source;
        var spec = node.Spec;
        var who = workloadId.Length == 0 ? node.Owner : _workloads.TryGetValue(workloadId, out var w) ? w.Info : node.Owner;
        return new LineDimensions(spec.Provider, spec.Region, spec.InstanceType, capacity, spec.GpuModel, spec.Cluster,
            who.Orchestrator, who.Team, who.Project, who.User);
    }

    private void RateVolume(VolumeState volume, DateTimeOffset minute, DateTimeOffset end, List<CostLine> output)
    {
        var pending = new Dictionary<LineKey, PendingRow>();
        foreach (var seg in volume.Within(minute, end))
        {
            var from = seg.From < minute ? minute : seg.From;
            var to = seg.To is { } t && t < end ? t : end;
            if (to <= from)
                continue;
            var rate = StorageRate(seg);
            var key = new LineKey(volume.Id, -1, seg.WorkloadId, CostComponent.Storage);
            var offset = (int)((from - minute).Ticks / TimeSpan.TicksPerSecond);
            var seconds = (int)((to - from).Ticks / TimeSpan.TicksPerSecond);
            var share = Fraction.One;
            if (pending.TryGetValue(key, out var row))
                output.Add(Book(row, minute));
            pending[key] = new PendingRow(key, rate, share, "ratecard:storage:" + seg.StorageClass, CapacityType.OnDemand, offset, seconds, VolumeDimensions(seg))
            {
                QuantityPerSecond = seg.SizeGb,
            };
        }
        foreach (var row in pending.Values)
        {
            var line = Book(row, minute);
            output.Add(line with { Quantity = row.QuantityPerSecond * row.Seconds });
        }
    }

    private static HourlyRate StorageRate(VolumeSegment seg) =>
        // $/GB-month over a 730-hour month, the convention of AWS, GCP and Azure price sheets.
        HourlyRate.FromDollarsPerHour(seg.SizeGb * seg.PricePerGbMonth / 730m);

    private static LineDimensions VolumeDimensions(VolumeSegment seg) =>
        new(seg.Provider, seg.Region, "", CapacityType.OnDemand, "", "", seg.Workload.Orchestrator, seg.Workload.Team, seg.Workload.Project, seg.Workload.User);

    private void RateTransfers(DateTimeOffset minute, DateTimeOffset end, List<CostLine> output)
    {
        if (_transfers.Count == 0)
            return;
        var groups = new Dictionary<(string Node, string Workload, TransferKind Kind), long>();
        _transfers.RemoveAll(t =>
        {
            if (t.Time >= end)
                return false;
            var k = (t.NodeId, t.WorkloadId, t.Kind);
            groups[k] = groups.GetValueOrDefault(k) + t.Bytes;
            return true;
        });
        foreach (var ((nodeId, workloadId, kind), bytes) in groups)
        {
            _nodes.TryGetValue(nodeId, out var node);
            var provider = node?.Spec.Provider ?? "";
            var region = node?.Spec.Region ?? "";
            var perGb = _rateCard.EgressPerGb(provider, region, kind); // $/GB = nano-dollars per byte
            var source = string.Create(CultureInfo.InvariantCulture, $"ratecard:egress:{kind.ToString().ToLowerInvariant()}:{perGb}/GB");
            var discount = _options.Terms.NetworkMultiplier(provider);
            if (discount != 1m)
            {
                perGb *= discount;
                source += string.Create(CultureInfo.InvariantCulture, $";discount:{(1m - discount) * 100m:0.####}%");
            }
            if (Calibration.Find(provider, CalibratedUsage.Network, "", CapacityType.OnDemand) is { } calibration)
            {
                perGb *= calibration.Factor;
                source += string.Create(CultureInfo.InvariantCulture, $";calibrated:{calibration.Factor:0.######}");
            }
            var cost = new Money((long)decimal.Round(perGb * bytes, MidpointRounding.AwayFromZero));
            var who = _workloads.TryGetValue(workloadId, out var w) ? w.Info : node?.Owner ?? new WorkloadInfo(workloadId, "", workloadId);
            output.Add(new CostLine
            {
                Minute = minute,
                SegmentStart = 0,
                Seconds = 0,
                ResourceId = $"{nodeId}:egress:{kind.ToString().ToLowerInvariant()}",
                GpuIndex = -1,
                WorkloadId = workloadId,
                Component = CostComponent.Network,
                Rate = HourlyRate.Zero,
                SharePpm = 1_000_000,
                Quantity = bytes,
                Cost = cost,
                PriceSource = source,
                Provider = provider,
                Region = region,
                InstanceType = node?.Spec.InstanceType ?? "",
                Capacity = node is null ? CapacityType.OnDemand : node.CapacityAt(minute),
                GpuModel = node?.Spec.GpuModel ?? "",
                Cluster = node?.Spec.Cluster ?? "",
                Orchestrator = who.Orchestrator,
                Team = who.Team,
                Project = who.Project,
                User = who.User,
            });
        }
    }

    private void Prune(DateTimeOffset ratedThrough)
    {
        List<string>? gone = null;
        foreach (var (id, node) in _nodes)
        {
            node.Prune(ratedThrough);
            if (node.IsGoneBefore(ratedThrough))
                (gone ??= []).Add(id);
        }
        foreach (var id in gone ?? [])
            _nodes.Remove(id);
        foreach (var volume in _volumes.Values)
            volume.Prune(ratedThrough);
        // Once an hour, forget what ended more than an hour ago (late events for it are still honoured until then):
        // stopped workloads, their counters, empty volumes, and the carried sub-nano remainders of lines whose
        // resource or workload is gone. Keeps a long-running server's state proportional to what is running.
        if (ratedThrough.Minute != 0)
            return;
        var horizon = ratedThrough - TimeSpan.FromHours(1);
        List<string>? ended = null;
        foreach (var (id, w) in _workloads)
        {
            if (w.Stopped is { } stopped && stopped < horizon)
                (ended ??= []).Add(id);
        }
        foreach (var id in ended ?? [])
            _workloads.Remove(id);
        List<string>? empty = null;
        foreach (var (id, v) in _volumes)
        {
            if (v.IsEmpty)
                (empty ??= []).Add(id);
        }
        foreach (var id in empty ?? [])
            _volumes.Remove(id);
        if (ended is not null)
        {
            foreach (var key in _counterTotals.Keys.Where(k => !_workloads.ContainsKey(k.Workload)).ToList())
                _counterTotals.Remove(key);
        }
        foreach (var key in _carry.Keys.Where(k => (!_nodes.ContainsKey(k.ResourceId) && !_volumes.ContainsKey(k.ResourceId))
                     || (k.WorkloadId.Length > 0 && !_workloads.ContainsKey(k.WorkloadId))).ToList())
            _carry.Remove(key);
    }

    /// <summary>Whether <paramref name="e"/> is about a node, workload or volume the engine still holds, or is a price.</summary>
    public bool Refers(FleetEvent e) => e switch
    {
        NodeStarted s => _nodes.ContainsKey(s.Node.Id),
        NodeHeartbeat h => _nodes.ContainsKey(h.Node.Id),
        NodeStopped s => _nodes.ContainsKey(s.NodeId),
        CapacityChanged c => _nodes.ContainsKey(c.NodeId),
        // A price still matters while it is the one in force for its key (a later change supersedes it).
        PriceChanged p => _prices.Find(p.Provider, p.Region, p.Zone, p.InstanceType, p.Capacity, DateTimeOffset.MaxValue) is not { } latest
            || latest.PricePerHour == p.PricePerHour,
        WorkloadStarted w => _workloads.ContainsKey(w.Workload.Id),
        WorkloadStopped w => _workloads.ContainsKey(w.WorkloadId),
        GpuAllocated a => _workloads.ContainsKey(a.WorkloadId),
        GpuReleased r => _workloads.ContainsKey(r.WorkloadId),
        CpuAllocated c => _workloads.ContainsKey(c.WorkloadId),
        WorkCounter => false, // a total, replaced by the next one; replay rebuilds it from retained telemetry
        StorageChanged s => _volumes.ContainsKey(s.VolumeId),
        _ => false,
    };

    /// <summary>What the engine holds in memory (for tests and health metrics).</summary>
    internal (int Nodes, int Workloads, int Volumes, int CarriedLines) StateSize => (_nodes.Count, _workloads.Count, _volumes.Count, _carry.Count);

    private DateTimeOffset Clamp(DateTimeOffset time)
    {
        if (_ratedThrough is { } through && time < through)
        {
            LateEvents++;
            return through;
        }
        return time;
    }

    internal static DateTimeOffset CeilingToSecond(DateTimeOffset t) =>
        t.UtcTicks % TimeSpan.TicksPerSecond == 0 ? t : TruncateToSecond(t).AddSeconds(1);

    internal static DateTimeOffset TruncateToSecond(DateTimeOffset t) =>
        new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    /// <summary>The start of the minute containing <paramref name="t"/>, in UTC.</summary>
    public static DateTimeOffset Floor(DateTimeOffset t) =>
        new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
}

/// <summary>One ledger line's identity across minutes.</summary>
public readonly record struct LineKey(string ResourceId, int GpuIndex, string WorkloadId, CostComponent Component);

/// <summary>A line's rate at one instant.</summary>
internal readonly record struct SegmentLine(LineKey Key, HourlyRate Rate, Fraction Share);

/// <summary>Who and what a line is attributed to (denormalized into every ledger row).</summary>
public sealed record LineDimensions(string Provider, string Region, string InstanceType, CapacityType Capacity, string GpuModel,
    string Cluster, string Orchestrator, string Team, string Project, string User);

internal sealed class PendingRow(LineKey key, HourlyRate rate, Fraction share, string source, CapacityType capacity, int offset, int seconds, LineDimensions dims)
{
    public LineKey Key { get; } = key;
    public HourlyRate Rate { get; } = rate;
    public Fraction Share { get; } = share;
    public string Source { get; } = source;
    public CapacityType Capacity { get; } = capacity;
    public int Offset { get; } = offset;
    public int Seconds { get; set; } = seconds;
    public LineDimensions Dims { get; } = dims;
    public decimal QuantityPerSecond { get; init; }
}

/// <summary>What one rated minute produced.</summary>
public sealed record RatedMinute(DateTimeOffset Minute, IReadOnlyList<CostLine> Lines, IReadOnlyList<Storage.WorkMinute> Work);

/// <summary>A line's rate right now, with who it belongs to.</summary>
public sealed record BurnLine(string ResourceId, int GpuIndex, string WorkloadId, CostComponent Component, HourlyRate Rate, LineDimensions Dimensions);

/// <summary>A running node right now: what it is, its capacity type then, who pays its idle part, its GPUs' holders.</summary>
public sealed record NodeSnapshot(NodeSpec Spec, CapacityType Capacity, string OwnerTeam, IReadOnlyList<GpuSnapshot> Gpus);

/// <summary>One GPU of a node and who holds it (none: idle).</summary>
public sealed record GpuSnapshot(int Index, IReadOnlyList<GpuHolder> Holders);

/// <summary>A workload holding a GPU, whole or in part.</summary>
public sealed record GpuHolder(string WorkloadId, GpuShare Share);

/// <summary>A workload as the engine knows it.</summary>
public sealed record WorkloadSnapshot(WorkloadInfo Info, DateTimeOffset Started, DateTimeOffset? Stopped, decimal? EstimatePerHour);
