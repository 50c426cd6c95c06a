using Burnrate.Pricing;
using Burnrate.Storage;

namespace Burnrate.Rating;

/// <summary>
/// How the cost series on <c>/metrics</c> are labelled (config section <c>metrics:</c>): which dimensions, and how many
/// label sets at most before the rest are folded into <see cref="CostSeries.Other"/>.
/// </summary>
public sealed class CostSeriesOptions
{
    /// <summary>The dimensions a cost series may be labelled by (bounded ones: never workload, node or idle).</summary>
    public static IReadOnlyList<CostDimension> Allowed { get; } =
    [
        CostDimension.Team, CostDimension.Project, CostDimension.User, CostDimension.Cloud, CostDimension.Region, CostDimension.Gpu,
        CostDimension.InstanceType, CostDimension.Capacity, CostDimension.Component, CostDimension.Cluster, CostDimension.Orchestrator,
    ];

    /// <summary>The label dimensions, in label order; default team and cloud.</summary>
    public IReadOnlyList<CostDimension> Labels { get; init; } = [CostDimension.Team, CostDimension.Cloud];

    /// <summary>Distinct label sets kept before new ones are folded into <see cref="CostSeries.Other"/>.</summary>
    public int MaxSeries { get; init; } = 1000;
}

/// <summary>
/// Running cost totals by the label sets of <see cref="CostSeriesOptions"/>, for the Prometheus counters: unlike the
/// live burn view, nothing is ever forgotten, so a counter never goes down. The first <see cref="CostSeriesOptions.MaxSeries"/>
/// label sets seen own a series; every later one is folded, for good, into the series whose every label is
/// <see cref="Other"/>.
/// </summary>
/// <remarks>Not thread-safe: <see cref="CostPipeline"/> calls it under its lock.</remarks>
public sealed class CostSeries
{
    /// <summary>The label value of the series that holds everything over the cap.</summary>
    public const string Other = "__other__";

    private readonly CostSeriesOptions _options;
    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Slot> _folded = new(StringComparer.Ordinal);
    private readonly Slot _other;
    private int _owned;

    /// <summary>Totals labelled as <paramref name="options"/> say.</summary>
    public CostSeries(CostSeriesOptions? options = null)
    {
        _options = options ?? new CostSeriesOptions();
        if (_options.MaxSeries < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxSeries must be at least 1");
        _other = new Slot([.. _options.Labels.Select(_ => Other)]);
    }

    /// <summary>The label dimensions.</summary>
    public IReadOnlyList<CostDimension> Labels => _options.Labels;

    /// <summary>Distinct label sets that were folded into <see cref="Other"/> because the cap was reached.</summary>
    public int FoldedLabelSets => _folded.Count;

    /// <summary>Adds one rated ledger row.</summary>
    public void Add(CostLine line)
    {
        if (line.Cost.Nanos == 0)
            return;
        var slot = SlotOf(line.Component, line.Provider, line.Region, line.InstanceType, line.Capacity, line.GpuModel, line.Cluster, line.Orchestrator, line.Team, line.Project, line.User);
        slot.Total += line.Cost.Nanos;
        if (line.IsIdle)
            slot.Idle += line.Cost.Nanos;
    }

    /// <summary>
    /// Every series: its label values, what it has cost so far and how much of that was idle, and its rate right now
    /// from <paramref name="burn"/> (the engine's current lines). Sorted by label values.
    /// </summary>
    public IReadOnlyList<CostSeriesValue> Snapshot(IReadOnlyList<BurnLine> burn)
    {
        ArgumentNullException.ThrowIfNull(burn);
        var rates = new Dictionary<Slot, (long Rate, long Idle)>();
        foreach (var line in burn)
        {
            var d = line.Dimensions;
            var slot = SlotOf(line.Component, d.Provider, d.Region, d.InstanceType, d.Capacity, d.GpuModel, d.Cluster, d.Orchestrator, d.Team, d.Project, d.User);
            var (rate, idle) = rates.GetValueOrDefault(slot);
            rates[slot] = (rate + line.Rate.NanosPerHour, line.WorkloadId.Length == 0 ? idle + line.Rate.NanosPerHour : idle);
        }
        var slots = _slots.Values.Distinct().ToList();
        if (_folded.Count > 0 && !slots.Contains(_other))
            slots.Add(_other);
        return slots
            .Select(s =>
            {
                var (rate, idle) = rates.GetValueOrDefault(s);
                return new CostSeriesValue(s.Values, new Money(s.Total), new Money(s.Idle), new HourlyRate(rate), new HourlyRate(idle));
            })
            .OrderBy(v => string.Join('\u0001', v.LabelValues), StringComparer.Ordinal)
            .ToList();
    }

    private Slot SlotOf(CostComponent component, string provider, string region, string instanceType, CapacityType capacity, string gpu,
        string cluster, string orchestrator, string team, string project, string user)
    {
        var labels = _options.Labels;
        var values = new string[labels.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = labels[i] switch
            {
                CostDimension.Team => team,
                CostDimension.Project => project,
                CostDimension.User => user,
                CostDimension.Cloud => provider,
                CostDimension.Region => region,
                CostDimension.Gpu => gpu,
                CostDimension.InstanceType => instanceType,
                CostDimension.Capacity => capacity.ToName(),
                CostDimension.Component => component.ToString().ToLowerInvariant(),
                CostDimension.Cluster => cluster,
                CostDimension.Orchestrator => orchestrator,
                _ => "",
            };
        }
        var key = string.Join('\u0001', values);
        if (_slots.TryGetValue(key, out var slot) || _folded.TryGetValue(key, out slot))
            return slot;
        if (_owned < _options.MaxSeries)
        {
            slot = new Slot(values);
            _owned++;
            _slots.Add(key, slot);
            return slot;
        }
        _folded.Add(key, _other);
        return _other;
    }

    private sealed class Slot(string[] values)
    {
        public string[] Values { get; } = values;
        public long Total { get; set; } // nano-dollars
        public long Idle { get; set; } // nano-dollars
    }
}

/// <summary>One cost series: its label values (in <see cref="CostSeriesOptions.Labels"/> order), totals and current rates.</summary>
public sealed record CostSeriesValue(IReadOnlyList<string> LabelValues, Money Total, Money IdleTotal, HourlyRate Rate, HourlyRate IdleRate);
