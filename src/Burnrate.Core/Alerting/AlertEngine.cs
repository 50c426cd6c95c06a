using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Alerting;

/// <summary>
/// Evaluates alert rules over the live ledger: after each rated minute, every rule looks at the minute's ledger lines
/// and work counters (plus the fleet facts the events carried: GPU utilization, spot→on-demand fallbacks), per scope
/// value. A condition that holds becomes a pending alert, fires once it has held for the rule's <c>for</c>, is sent again
/// every <c>repeat_interval</c>, and is resolved (sent once) when it stops holding. Notifications go to an
/// <see cref="IAlertSink"/>; delivery is not done here.
/// </summary>
/// <remarks>
/// Time is the ledger's: a minute is evaluated when it is rated, at its end, so replays and simulations give the same
/// alerts at the same simulated times. Learned values (baselines, cost per unit, reference prices, budget spend) live in
/// memory and are learned again after a restart. Thread-safe.
/// </remarks>
public sealed partial class AlertEngine
{
    private const double NanosPerDollar = Money.NanosPerDollar;
    private readonly IReadOnlyList<AlertRule> _rules;
    private readonly RuleState[] _states;
    private readonly IAlertSink _sink;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    // Utilization samples per GPU, oldest first: events arrive ahead of rating (a grace period, batches), so a minute is
    // judged by the last sample before its end, not by the newest one.
    private readonly Dictionary<(string Node, int Gpu), List<(DateTimeOffset Time, double Value)>> _utilization = [];
    private readonly Dictionary<string, CapacityType> _capacity = new(StringComparer.Ordinal);
    // Nodes that moved from spot to on-demand capacity, with when: cleared when they go back to spot or stop.
    private readonly Dictionary<string, DateTimeOffset> _fellBack = new(StringComparer.Ordinal);

    public AlertEngine(IReadOnlyList<AlertRule> rules, IAlertSink sink, ILogger? logger = null)
    {
        _rules = rules;
        _states = [.. rules.Select(_ => new RuleState())];
        _sink = sink;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The rules evaluated.</summary>
    public IReadOnlyList<AlertRule> Rules => _rules;

    /// <summary>Takes the fleet facts the ledger does not carry (utilization, capacity changes). Call for every event applied.</summary>
    public void Observe(FleetEvent e)
    {
        lock (_lock)
        {
            switch (e)
            {
                case NodeStarted s:
                    _capacity[s.Node.Id] = s.Node.Capacity;
                    break;
                case NodeHeartbeat h:
                    _capacity.TryAdd(h.Node.Id, h.Node.Capacity);
                    break;
                case NodeStopped s:
                    _capacity.Remove(s.NodeId);
                    foreach (var key in _utilization.Keys.Where(k => k.Node == s.NodeId).ToList())
                        _utilization.Remove(key);
                    _fellBack.Remove(s.NodeId);
                    break;
                case CapacityChanged c:
                    if (c.Capacity == CapacityType.Spot)
                        _fellBack.Remove(c.NodeId);
                    else if (c.Capacity == CapacityType.OnDemand && _capacity.GetValueOrDefault(c.NodeId, CapacityType.OnDemand) == CapacityType.Spot)
                        _fellBack[c.NodeId] = c.Time;
                    _capacity[c.NodeId] = c.Capacity;
                    break;
                case GpuUtilization u:
                    var samples = _utilization.TryGetValue((u.NodeId, u.GpuIndex), out var list) ? list : _utilization[(u.NodeId, u.GpuIndex)] = [];
                    samples.Add((u.Time, u.Utilization));
                    break;
            }
        }
    }

    /// <summary>The alerts pending or firing now, as notifications (state pending or firing).</summary>
    public IReadOnlyList<AlertNotification> Current()
    {
        lock (_lock)
        {
            var result = new List<AlertNotification>();
            for (var i = 0; i < _rules.Count; i++)
            {
                foreach (var a in _states[i].Active.Values)
                    result.Add(a.ToNotification(_rules[i], a.State, a.LastEvidence));
            }
            return result;
        }
    }

    /// <summary>Evaluates every rule over one rated minute; publishes what fired, repeated or resolved.</summary>
    public void Evaluate(RatedMinute minute, IEnumerable<WorkloadSnapshot> workloads)
    {
        List<AlertNotification> notifications = [];
        lock (_lock)
        {
            var infos = new Dictionary<string, WorkloadSnapshot>(StringComparer.Ordinal);
            foreach (var w in workloads)
                infos[w.Info.Id] = w;
            var now = minute.Minute.AddMinutes(1);
            for (var i = 0; i < _rules.Count; i++)
            {
                var rule = _rules[i];
                var state = _states[i];
                var aggs = Aggregate(rule, minute.Lines, minute.Minute.AddMinutes(1), infos);
                foreach (var (key, agg) in aggs)
                    state.Totals[key] = state.Totals.GetValueOrDefault(key) + agg.Cost;
                var holding = Conditions(rule, state, aggs, minute, infos, now);
                Transition(rule, state, holding, minute.Minute, now, notifications);
            }
            PruneUtilization(now);
        }
        if (notifications.Count == 0)
            return;
        foreach (var n in notifications)
            LogNotification(_logger, n.State, n.Rule, n.Fingerprint, n.EvidenceAt);
        _sink.Publish(notifications);
    }

    /// <summary>
    /// Evaluates the rules that can be judged from the burn rate alone (<c>spend_rate</c>, <c>capacity_fallback</c>,
    /// <c>estimate_exceeded</c>) against the live burn at <paramref name="now"/>, so that a condition fires within a
    /// second of its evidence instead of when its minute is rated. Live evaluation only raises and fires alerts; the
    /// minute evaluation still repeats and resolves them (an alert seen live after a minute's end is not resolved by
    /// that minute). Other kinds need a whole minute (utilization, work counters, learned baselines) and wait for it.
    /// </summary>
    /// <param name="now">The instant the burn is for.</param>
    /// <param name="burn">Every line's rate at <paramref name="now"/> (<see cref="RatingEngine.CurrentBurn"/>).</param>
    /// <param name="workloads">The workloads the engine knows.</param>
    public void EvaluateLive(DateTimeOffset now, IReadOnlyList<BurnLine> burn, IEnumerable<WorkloadSnapshot> workloads)
    {
        ArgumentNullException.ThrowIfNull(burn);
        List<AlertNotification> notifications = [];
        lock (_lock)
        {
            Dictionary<string, WorkloadSnapshot>? infos = null;
            List<CostLine>? lines = null;
            for (var i = 0; i < _rules.Count; i++)
            {
                var rule = _rules[i];
                if (rule.Kind is not (AlertRuleKind.SpendRate or AlertRuleKind.CapacityFallback or AlertRuleKind.EstimateExceeded))
                    continue;
                infos ??= workloads.ToDictionary(w => w.Info.Id, StringComparer.Ordinal);
                lines ??= [.. burn.Select(l => AsMinuteLine(l, now))];
                var holding = Conditions(rule, _states[i], Aggregate(rule, lines, now, infos), minute: null, infos, now);
                TransitionLive(rule, _states[i], holding, now, notifications);
            }
        }
        if (notifications.Count == 0)
            return;
        foreach (var n in notifications)
            LogNotification(_logger, n.State, n.Rule, n.Fingerprint, n.EvidenceAt);
        _sink.Publish(notifications);
    }

    /// <summary>A rate as the minute it would cost if it held for a whole minute: what a rule reads as $/h.</summary>
    private static CostLine AsMinuteLine(BurnLine l, DateTimeOffset now) => new()
    {
        Minute = RatingEngine.Floor(now),
        SegmentStart = 0,
        Seconds = 60,
        ResourceId = l.ResourceId,
        GpuIndex = l.GpuIndex,
        WorkloadId = l.WorkloadId,
        Component = l.Component,
        Rate = l.Rate,
        SharePpm = 1_000_000,
        Quantity = 0,
        Cost = new Money(l.Rate.NanosPerHour / 60),
        PriceSource = "live",
        Provider = l.Dimensions.Provider,
        Region = l.Dimensions.Region,
        InstanceType = l.Dimensions.InstanceType,
        Capacity = l.Dimensions.Capacity,
        GpuModel = l.Dimensions.GpuModel,
        Cluster = l.Dimensions.Cluster,
        Orchestrator = l.Dimensions.Orchestrator,
        Team = l.Dimensions.Team,
        Project = l.Dimensions.Project,
        User = l.Dimensions.User,
    };

    // ---- conditions ------------------------------------------------------------------------------------------------

    private static Dictionary<string, Observation> Conditions(AlertRule rule, RuleState state, Dictionary<string, ScopeMinute> aggs, RatedMinute? minute, Dictionary<string, WorkloadSnapshot> infos, DateTimeOffset now)
    {
        var holding = new Dictionary<string, Observation>(StringComparer.Ordinal);
        switch (rule.Kind)
        {
            case AlertRuleKind.SpendRate:
                foreach (var (key, agg) in aggs)
                {
                    if ((decimal)agg.UsdPerHour > rule.AboveUsdPerHour)
                        holding[key] = Observe(rule, state, key, agg, now, $"burns ${agg.UsdPerHour:0.00}/h, above ${rule.AboveUsdPerHour:0.##}/h", ("threshold_usd_per_hour", Usd((double)rule.AboveUsdPerHour)));
                }
                break;
            case AlertRuleKind.Baseline:
                Baseline(rule, state, aggs, minute!.Minute, now, holding);
                break;
            case AlertRuleKind.IdleGpu or AlertRuleKind.OffHoursIdle:
                if (rule.Kind == AlertRuleKind.OffHoursIdle && !rule.Windows.Any(w => w.Contains(minute!.Minute)))
                    break;
                foreach (var (key, agg) in aggs)
                {
                    if (agg.IdleGpus >= rule.MinGpus - 1e-9 && agg.IdleGpus >= (rule.MinIdleFraction * agg.Gpus) - 1e-9)
                    {
                        holding[key] = Observe(rule, state, key, agg, now,
                            $"{agg.IdleGpus:0.##} of {agg.Gpus:0.##} GPUs billed while idle (below {rule.UtilizationBelow:0%} utilization or unallocated)" + (rule.Kind == AlertRuleKind.OffHoursIdle ? " off hours" : ""),
                            ("idle_gpus", agg.IdleGpus.ToString("0.##", CultureInfo.InvariantCulture)), ("gpus", agg.Gpus.ToString("0.##", CultureInfo.InvariantCulture)),
                            ("idle_usd_per_hour", Usd(agg.IdleNanos * 60 / NanosPerDollar)));
                    }
                }
                break;
            case AlertRuleKind.Stall:
                Stall(rule, state, aggs, minute!, now, holding);
                break;
            case AlertRuleKind.CapacityFallback:
                foreach (var (key, agg) in aggs)
                {
                    if (agg.FellBackAt is { } at)
                        holding[key] = Observe(rule, state, key, agg, now, $"fell back from spot to on-demand at {at:u}, burns ${agg.UsdPerHour:0.00}/h", ("fell_back_at", at.ToString("O", CultureInfo.InvariantCulture))) with { Since = at, Evidence = at };
                }
                break;
            case AlertRuleKind.SpotPriceChange:
                foreach (var key in state.Reference.Keys.Where(k => !aggs.TryGetValue(k, out var a) || a.SpotGpuSeconds == 0).ToList())
                    state.Reference.Remove(key);
                foreach (var (key, agg) in aggs)
                {
                    if (agg.SpotGpuSeconds == 0)
                        continue;
                    var price = agg.SpotRateSeconds / agg.SpotGpuSeconds / NanosPerDollar; // $/GPU-hour, node parts included
                    var reference = state.Reference.TryGetValue(key, out var r) ? r : state.Reference[key] = price;
                    if (price > reference * (1 + rule.RisePercent / 100))
                    {
                        holding[key] = Observe(rule, state, key, agg, now, $"spot price rose {(price / reference - 1):0%} since the workload started on it (${reference:0.000} → ${price:0.000} per GPU-hour)",
                            ("spot_rise_percent", ((price / reference - 1) * 100).ToString("0.#", CultureInfo.InvariantCulture)),
                            ("reference_usd_per_gpu_hour", price.ToString("0.000", CultureInfo.InvariantCulture) is var _ ? reference.ToString("0.000", CultureInfo.InvariantCulture) : ""),
                            ("usd_per_gpu_hour", price.ToString("0.000", CultureInfo.InvariantCulture)));
                    }
                }
                break;
            case AlertRuleKind.Budget:
                Budget(rule, state, aggs, minute!, now, holding);
                break;
            case AlertRuleKind.EstimateExceeded:
                foreach (var (key, agg) in aggs)
                {
                    if (!infos.TryGetValue(key, out var w))
                        continue;
                    var tolerance = 1 + rule.TolerancePercent / 100;
                    var rate = agg.ComputeNanos * 60 / NanosPerDollar;
                    if (w.EstimatePerHour is > 0 && rate > (double)w.EstimatePerHour.Value * tolerance)
                    {
                        holding[key] = Observe(rule, state, key, agg, now, $"burns ${rate:0.00}/h against a launch estimate of ${w.EstimatePerHour:0.00}/h ({rate / (double)w.EstimatePerHour.Value:0.0}×)",
                            ("estimate_usd_per_hour", Usd((double)w.EstimatePerHour.Value)));
                    }
                    else if (w.Info.Labels?.GetValueOrDefault("expected_runtime") is { } text && Durations.TryParse(text, out var expected) && now - w.Started > expected * tolerance)
                    {
                        holding[key] = Observe(rule, state, key, agg, now, $"still running after {Durations.Format(now - w.Started)}, expected {text}",
                            ("expected_runtime", text), ("runtime", Durations.Format(now - w.Started)));
                    }
                }
                break;
            case AlertRuleKind.StepChange:
                StepChange(rule, state, aggs, infos, now, holding);
                break;
        }
        return holding;
    }

    private static void Baseline(AlertRule rule, RuleState state, Dictionary<string, ScopeMinute> aggs, DateTimeOffset minute, DateTimeOffset now, Dictionary<string, Observation> holding)
    {
        var alpha = 1 - Math.Exp(-1 / Math.Max(1, rule.Window.TotalMinutes));
        foreach (var key in aggs.Keys)
            state.Baselines.TryAdd(key, new SeasonalBaseline());
        foreach (var (key, baseline) in state.Baselines)
        {
            var rate = aggs.TryGetValue(key, out var agg) ? agg.UsdPerHour : 0;
            var reference = baseline.Reference(minute);
            var warm = baseline.Minutes >= rule.Window.TotalMinutes;
            var anomaly = warm && agg is not null && rate > rule.Factor * reference && rate - reference >= (double)rule.MinIncreaseUsdPerHour;
            if (anomaly)
            {
                var usual = reference == baseline.Value ? "its baseline" : "its baseline for this hour";
                holding[key] = Observe(rule, state, key, agg!, now, $"burns ${rate:0.00}/h, {rate / Math.Max(reference, 1e-9):0.0}× {usual} of ${reference:0.00}/h",
                    ("baseline_usd_per_hour", Usd(reference)));
            }
            baseline.Add(minute, rate, alpha, learnAverage: !anomaly); // an anomaly is not learned as normal, but is remembered for its hour
        }
        foreach (var key in state.Baselines.Where(b => minute - b.Value.LastSpend > SeasonalBaseline.Memory).Select(b => b.Key).ToList())
            state.Baselines.Remove(key);
    }

    private static void Stall(AlertRule rule, RuleState state, Dictionary<string, ScopeMinute> aggs, RatedMinute minute, DateTimeOffset now, Dictionary<string, Observation> holding)
    {
        var alpha = 1 - Math.Exp(-1 / Math.Max(1, rule.Window.TotalMinutes));
        var work = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var w in minute.Work)
        {
            if (rule.Metric is not null && w.Metric != rule.Metric)
                continue;
            foreach (var (key, agg) in aggs)
            {
                if (agg.Workloads.Contains(w.WorkloadId))
                    work[key] = work.GetValueOrDefault(key) + w.Increase;
            }
        }
        foreach (var (key, agg) in aggs)
        {
            var done = work.GetValueOrDefault(key);
            if (done > 0)
            {
                var learned = state.Learned.TryGetValue(key, out var l) ? l : state.Learned[key] = new Learned();
                if (!rule.CostPerUnit)
                    continue;
                var perUnit = agg.Cost / done; // nano-dollars per unit of work
                if (learned.Minutes >= rule.Window.TotalMinutes && perUnit > rule.Factor * learned.Value)
                {
                    holding[key] = Observe(rule, state, key, agg, now, $"costs ${perUnit / NanosPerDollar:0.000000} per {rule.Metric}, {perUnit / learned.Value:0.00}× its usual ${learned.Value / NanosPerDollar:0.000000}",
                        ("usd_per_unit", (perUnit / NanosPerDollar).ToString("0.000000", CultureInfo.InvariantCulture)),
                        ("baseline_usd_per_unit", (learned.Value / NanosPerDollar).ToString("0.000000", CultureInfo.InvariantCulture)));
                    continue;
                }
                learned.Add(perUnit, alpha, (int)rule.Window.TotalMinutes);
            }
            else if (agg.Cost > 0 && state.Learned.ContainsKey(key))
            {
                // It has done work before: cost flowing with the counter flat is a stall.
                holding[key] = Observe(rule, state, key, agg, now, $"burns ${agg.UsdPerHour:0.00}/h while {rule.Metric ?? "its work counters"} stay flat", ("metric", rule.Metric ?? "any"));
            }
        }
        foreach (var key in state.Learned.Keys.Where(k => !aggs.ContainsKey(k)).ToList())
            state.Learned.Remove(key);
    }

    private static void Budget(AlertRule rule, RuleState state, Dictionary<string, ScopeMinute> aggs, RatedMinute minute, DateTimeOffset now, Dictionary<string, Observation> holding)
    {
        var (start, end) = Period(rule.Period, minute.Minute);
        if (state.PeriodStart != start)
        {
            state.PeriodStart = start;
            state.Spend.Clear();
        }
        foreach (var (key, agg) in aggs)
            state.Spend[key] = state.Spend.GetValueOrDefault(key) + agg.Cost;
        var amount = (double)rule.AmountUsd;
        foreach (var (key, spentNanos) in state.Spend)
        {
            var agg = aggs.GetValueOrDefault(key) ?? state.LastSeen.GetValueOrDefault(key) ?? new ScopeMinute();
            var rate = aggs.TryGetValue(key, out var a) ? a.UsdPerHour : 0;
            var spent = spentNanos / NanosPerDollar;
            var projected = spent + rate * (end - now).TotalHours;
            (string, string)[] extra = [("budget_usd", Usd(amount)), ("period", rule.Period.ToString().ToLowerInvariant()), ("period_spend_usd", Usd(spent))];
            if (projected > amount)
                holding[key + "\u001fprojected"] = Observe(rule, state, key, agg, now, $"projected to spend ${projected:0.00} this {rule.Period.ToString().ToLowerInvariant()}, above its budget of ${amount:0.00}", extra) with { Projected = projected, ExtraLabel = ("budget", "projected") };
            if (spent > amount)
                holding[key + "\u001factual"] = Observe(rule, state, key, agg, now, $"spent ${spent:0.00} this {rule.Period.ToString().ToLowerInvariant()}, above its budget of ${amount:0.00}", extra) with { Projected = projected, ExtraLabel = ("budget", "actual") };
        }
        foreach (var (key, agg) in aggs)
            state.LastSeen[key] = agg;
    }

    private static void StepChange(AlertRule rule, RuleState state, Dictionary<string, ScopeMinute> aggs, Dictionary<string, WorkloadSnapshot> infos, DateTimeOffset now, Dictionary<string, Observation> holding)
    {
        // Runs (workloads) of a group: the GPUs and $/h each took; a run that stopped burning joins its group's history.
        foreach (var (id, run) in state.Runs.Where(r => !aggs.ContainsKey(r.Key)).ToList())
        {
            var history = state.History.TryGetValue(run.Group, out var h) ? h : state.History[run.Group] = [];
            history.Add((run.Gpus, run.UsdPerHour));
            if (history.Count > 10)
                history.RemoveAt(0);
            state.Runs.Remove(id);
        }
        foreach (var (id, agg) in aggs)
        {
            if (!infos.TryGetValue(id, out var w) || GroupOf(rule, w) is not { } group)
                continue;
            var run = state.Runs.TryGetValue(id, out var r) ? r : state.Runs[id] = new Run(group);
            run.Gpus = Math.Max(run.Gpus, agg.Gpus);
            run.UsdPerHour = Math.Max(run.UsdPerHour, agg.ComputeNanos * 60 / NanosPerDollar);
            if (!state.History.TryGetValue(group, out var history) || history.Count == 0)
                continue;
            var gpus = history.Average(x => x.Gpus);
            var rate = history.Average(x => x.UsdPerHour);
            if ((gpus > 0 && run.Gpus >= rule.Factor * gpus) || (rate > 0 && run.UsdPerHour >= rule.Factor * rate))
            {
                var key = group;
                if (holding.ContainsKey(key))
                    continue;
                var labels = new List<(string, string)>();
                foreach (var name in rule.GroupBy)
                    labels.Add((LabelName(name), w.Info.Labels?.GetValueOrDefault(name) ?? ""));
                holding[key] = Observe(rule, state, id, agg, now, $"run {w.Info.Name} takes {run.Gpus:0.##} GPUs and ${run.UsdPerHour:0.00}/h against {gpus:0.##} GPUs and ${rate:0.00}/h for its previous {history.Count} run(s)",
                    ("previous_gpus", gpus.ToString("0.##", CultureInfo.InvariantCulture)), ("gpus", run.Gpus.ToString("0.##", CultureInfo.InvariantCulture)),
                    ("previous_usd_per_hour", Usd(rate)), ("run", id)) with
                { GroupLabels = labels };
            }
        }
    }

    private static string? GroupOf(AlertRule rule, WorkloadSnapshot w)
    {
        var parts = new string[rule.GroupBy.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            if (w.Info.Labels?.GetValueOrDefault(rule.GroupBy[i]) is not { Length: > 0 } value)
                return null;
            parts[i] = value;
        }
        return string.Join('\u001f', parts);
    }

    private static string LabelName(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(chars[i]))
                chars[i] = '_';
        }
        return new string(chars);
    }

    private static (DateTimeOffset Start, DateTimeOffset End) Period(BudgetPeriod period, DateTimeOffset t)
    {
        var day = new DateTimeOffset(t.UtcDateTime.Date, TimeSpan.Zero);
        return period switch
        {
            BudgetPeriod.Day => (day, day.AddDays(1)),
            BudgetPeriod.Week => (day.AddDays(-(((int)day.DayOfWeek + 6) % 7)), day.AddDays(7 - (((int)day.DayOfWeek + 6) % 7))),
            _ => (new DateTimeOffset(day.Year, day.Month, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(day.Year, day.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1)),
        };
    }

    // ---- the minute, per scope value -------------------------------------------------------------------------------

    private Dictionary<string, ScopeMinute> Aggregate(AlertRule rule, IEnumerable<CostLine> lines, DateTimeOffset end, Dictionary<string, WorkloadSnapshot> infos)
    {
        var result = new Dictionary<string, ScopeMinute>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (rule.Scope == AlertScope.Workload && line.IsIdle)
                continue;
            if (rule.Match.Count > 0 && !Matches(rule.Match, line))
                continue;
            var key = rule.Scope switch
            {
                AlertScope.Workload => line.WorkloadId,
                AlertScope.Team => line.Team,
                AlertScope.User => line.User,
                AlertScope.Project => line.Project,
                AlertScope.Cluster => line.Cluster,
                AlertScope.Cloud => line.Provider,
                _ => "",
            };
            if (key.Length == 0 && rule.Scope != AlertScope.All)
                continue; // a line with no team (project, ...) is nobody's in that scope
            if (!result.TryGetValue(key, out var agg))
                result[key] = agg = new ScopeMinute { Labels = ScopeLabels(rule.Scope, line, infos) };
            agg.Cost += line.Cost.Nanos;
            if (!line.IsIdle)
                agg.Workloads.Add(line.WorkloadId);
            if (line.Component is not (CostComponent.Gpu or CostComponent.Compute))
                continue;
            agg.ComputeNanos += line.Cost.Nanos;
            var gpuSeconds = line.Component == CostComponent.Gpu ? line.SharePpm / 1e6 * line.Seconds : 0;
            if (line.Component == CostComponent.Gpu)
            {
                agg.Gpus += gpuSeconds / 60;
                if (line.IsIdle || UtilizationAt(line.ResourceId, line.GpuIndex, end) < rule.UtilizationBelow)
                {
                    agg.IdleGpus += gpuSeconds / 60;
                    agg.IdleNanos += line.Cost.Nanos;
                }
            }
            if (line.Capacity == CapacityType.Spot)
            {
                agg.SpotRateSeconds += (double)line.Rate.NanosPerHour * line.Seconds;
                agg.SpotGpuSeconds += gpuSeconds;
            }
            else if (line.Capacity == CapacityType.OnDemand && _fellBack.TryGetValue(line.ResourceId, out var at) && (agg.FellBackAt is null || at < agg.FellBackAt))
            {
                agg.FellBackAt = at;
            }
        }
        return result;
    }

    /// <summary>The last utilization sampled before <paramref name="end"/> (1 when never sampled: unknown is not idle).</summary>
    private double UtilizationAt(string node, int gpu, DateTimeOffset end)
    {
        if (!_utilization.TryGetValue((node, gpu), out var samples))
            return 1;
        var value = 1.0;
        foreach (var (time, u) in samples)
        {
            if (time >= end)
                break;
            value = u;
        }
        return value;
    }

    /// <summary>Drops samples no later minute can need: all but the last one before <paramref name="end"/>.</summary>
    private void PruneUtilization(DateTimeOffset end)
    {
        foreach (var samples in _utilization.Values)
        {
            var keep = 0;
            while (keep + 1 < samples.Count && samples[keep + 1].Time < end)
                keep++;
            if (keep > 0)
                samples.RemoveRange(0, keep);
        }
    }

    internal static bool Matches(IReadOnlyDictionary<string, string> match, CostLine line)
    {
        foreach (var (dimension, value) in match)
        {
            var actual = dimension switch
            {
                "workload" => line.WorkloadId,
                "team" => line.Team,
                "project" => line.Project,
                "user" => line.User,
                "cluster" => line.Cluster,
                "cloud" => line.Provider,
                "orchestrator" => line.Orchestrator,
                "capacity" => line.Capacity.ToName(),
                "component" => line.Component.ToString().ToLowerInvariant(),
                _ => null,
            };
            if (!string.Equals(actual, value, StringComparison.OrdinalIgnoreCase))
                return false;
        }
        return true;
    }

    private static List<(string, string)> ScopeLabels(AlertScope scope, CostLine line, Dictionary<string, WorkloadSnapshot> infos) => scope switch
    {
        AlertScope.Workload => [("workload", line.WorkloadId), ("team", line.Team), ("project", line.Project), ("user", line.User),
            ("workload_name", infos.TryGetValue(line.WorkloadId, out var w) ? w.Info.Name : line.WorkloadId)],
        AlertScope.Team => [("team", line.Team)],
        AlertScope.User => [("user", line.User)],
        AlertScope.Project => [("project", line.Project)],
        AlertScope.Cluster => [("cluster", line.Cluster), ("cloud", line.Provider)],
        AlertScope.Cloud => [("cloud", line.Provider)],
        _ => [],
    };

    private static Observation Observe(AlertRule rule, RuleState state, string key, ScopeMinute agg, DateTimeOffset now, string what, params (string, string)[] extra)
    {
        var total = state.Totals.GetValueOrDefault(key) / NanosPerDollar;
        var rate = agg.UsdPerHour;
        var owner = agg.Labels.FirstOrDefault(l => l.Item1 == "user").Item2 is { Length: > 0 } user ? user
            : agg.Labels.FirstOrDefault(l => l.Item1 == "team").Item2 ?? "";
        var dashboard = rule.Scope == AlertScope.Workload || rule.Kind == AlertRuleKind.StepChange ? "/workloads/" + Uri.EscapeDataString(key) : "/";
        var projected = total + rate * (new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero).AddDays(1) - now).TotalHours; // by the end of the UTC day
        return new Observation(what, rate, total, projected, owner, dashboard, agg.Labels, extra, now, null);
    }

    // ---- state machine ---------------------------------------------------------------------------------------------

    private static void Transition(AlertRule rule, RuleState state, Dictionary<string, Observation> holding, DateTimeOffset minute, DateTimeOffset now, List<AlertNotification> notifications)
    {
        foreach (var (key, obs) in holding)
        {
            if (!state.Active.TryGetValue(key, out var alert))
                state.Active[key] = alert = new ActiveAlert(Fingerprint(rule.Name, key), obs.Since ?? minute);
            alert.Last = obs;
            alert.LastEvidence = obs.Evidence;
            if (alert.State == AlertState.Pending && now - alert.StartsAt >= rule.For)
            {
                alert.State = AlertState.Firing;
                alert.LastSent = now;
                notifications.Add(alert.ToNotification(rule, AlertState.Firing, obs.Evidence));
            }
            else if (alert.State == AlertState.Firing && now - alert.LastSent >= rule.RepeatInterval)
            {
                alert.LastSent = now;
                notifications.Add(alert.ToNotification(rule, AlertState.Firing, obs.Evidence));
            }
        }
        foreach (var (key, alert) in state.Active.Where(a => !holding.ContainsKey(a.Key) && !(a.Value.LiveSeen >= now)).ToList())
        {
            state.Active.Remove(key);
            if (alert.State == AlertState.Firing)
                notifications.Add(alert.ToNotification(rule, AlertState.Resolved, now) with { EndsAt = minute });
        }
    }

    /// <summary>Live evidence raises an alert and fires it once it has held for <c>for</c>; nothing is resolved here.</summary>
    private static void TransitionLive(AlertRule rule, RuleState state, Dictionary<string, Observation> holding, DateTimeOffset now, List<AlertNotification> notifications)
    {
        foreach (var (key, obs) in holding)
        {
            if (!state.Active.TryGetValue(key, out var alert))
                state.Active[key] = alert = new ActiveAlert(Fingerprint(rule.Name, key), obs.Since ?? now);
            alert.Last = obs;
            alert.LastEvidence = obs.Evidence;
            alert.LiveSeen = now;
            if (alert.State == AlertState.Pending && now - alert.StartsAt >= rule.For)
            {
                alert.State = AlertState.Firing;
                alert.LastSent = now;
                notifications.Add(alert.ToNotification(rule, AlertState.Firing, obs.Evidence));
            }
        }
    }

    private static string Fingerprint(string rule, string key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(rule + "\u001e" + key)))[..16];

    private static string Usd(double dollars) => dollars.ToString("0.00", CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Information, Message = "Alert {State}: {Rule} ({Fingerprint}), evidence at {EvidenceAt:O}")]
    private static partial void LogNotification(ILogger logger, AlertState state, string rule, string fingerprint, DateTimeOffset evidenceAt);

    private sealed class RuleState
    {
        public Dictionary<string, ActiveAlert> Active { get; } = new(StringComparer.Ordinal);
        /// <summary>Cost per scope value since first seen (nano-dollars).</summary>
        public Dictionary<string, long> Totals { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, Learned> Learned { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, SeasonalBaseline> Baselines { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, double> Reference { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, long> Spend { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, ScopeMinute> LastSeen { get; } = new(StringComparer.Ordinal);
        public DateTimeOffset PeriodStart { get; set; }
        public Dictionary<string, Run> Runs { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, List<(double Gpus, double UsdPerHour)>> History { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>
    /// A baseline robust to daily and weekly patterns: a moving average of the spend rate (time constant: the rule's
    /// window) plus the peak rate of each hour yesterday and of each hour of the week a week ago. A rate is compared with
    /// the largest of these around its hour (±1 hour), so a level seen at this time of day yesterday or at this time of
    /// the week last week (the morning ramp, the nightly batch, Monday's jobs) is normal, and a new one is not.
    /// </summary>
    private sealed class SeasonalBaseline
    {
        /// <summary>A scope with no spend for this long is forgotten (a week of hours plus a day of slack).</summary>
        public static readonly TimeSpan Memory = TimeSpan.FromDays(8);
        private readonly double[] _yesterday = new double[24];
        private readonly double[] _today = new double[24];
        private readonly double[] _lastWeek = new double[168];
        private readonly double[] _thisWeek = new double[168];
        private long _day = long.MinValue;
        private long _week = long.MinValue;

        public double Value { get; private set; }
        public int Minutes { get; private set; }
        public DateTimeOffset LastSpend { get; private set; }

        public double Reference(DateTimeOffset minute)
        {
            Roll(minute);
            var reference = Value;
            var hour = minute.UtcDateTime.Hour;
            var hourOfWeek = HourOfWeek(minute);
            for (var d = -1; d <= 1; d++)
            {
                reference = Math.Max(reference, _yesterday[(hour + d + 24) % 24]);
                reference = Math.Max(reference, _lastWeek[(hourOfWeek + d + 168) % 168]);
            }
            return reference;
        }

        public void Add(DateTimeOffset minute, double rate, double alpha, bool learnAverage)
        {
            Roll(minute);
            var hour = minute.UtcDateTime.Hour;
            _today[hour] = Math.Max(_today[hour], rate);
            _thisWeek[HourOfWeek(minute)] = Math.Max(_thisWeek[HourOfWeek(minute)], rate);
            if (rate > 0 || Minutes == 0)
                LastSpend = minute;
            if (!learnAverage)
                return;
            Value = Minutes == 0 ? rate : Value + alpha * (rate - Value);
            Minutes++;
        }

        private void Roll(DateTimeOffset minute)
        {
            var day = minute.UtcTicks / TimeSpan.TicksPerDay;
            if (day != _day)
            {
                if (day == _day + 1)
                    Array.Copy(_today, _yesterday, 24);
                else
                    Array.Clear(_yesterday);
                Array.Clear(_today);
                _day = day;
            }
            var week = day / 7; // day 0, 0001-01-01, was a Monday: weeks start on Mondays, as HourOfWeek counts
            if (week != _week)
            {
                if (week == _week + 1)
                    Array.Copy(_thisWeek, _lastWeek, 168);
                else
                    Array.Clear(_lastWeek);
                Array.Clear(_thisWeek);
                _week = week;
            }
        }

        private static int HourOfWeek(DateTimeOffset minute) => (((int)minute.UtcDateTime.DayOfWeek + 6) % 7 * 24) + minute.UtcDateTime.Hour;
    }

    private sealed class Learned
    {
        public double Value { get; private set; }
        public int Minutes { get; private set; }

        /// <summary>
        /// Learns one minute's value: the plain mean of the first <paramref name="warmUp"/> minutes, then an exponential
        /// moving average. Starting the average from the first minute alone let a partial first minute (a workload that
        /// started mid-minute, a counter's first sample) bias it for hours.
        /// </summary>
        public void Add(double value, double alpha, int warmUp)
        {
            Value = Minutes < warmUp ? Value + ((value - Value) / (Minutes + 1)) : Value + (alpha * (value - Value));
            Minutes++;
        }
    }

    private sealed class Run(string group)
    {
        public string Group { get; } = group;
        public double Gpus { get; set; }
        public double UsdPerHour { get; set; }
    }

    private sealed class ScopeMinute
    {
        public long Cost { get; set; }
        public long ComputeNanos { get; set; }
        public long IdleNanos { get; set; }
        public double Gpus { get; set; }
        public double IdleGpus { get; set; }
        public double SpotRateSeconds { get; set; }
        public double SpotGpuSeconds { get; set; }
        public DateTimeOffset? FellBackAt { get; set; }
        public HashSet<string> Workloads { get; } = new(StringComparer.Ordinal);
        public List<(string, string)> Labels { get; init; } = [];
        /// <summary>The minute's cost as a rate, $/h.</summary>
        public double UsdPerHour => Cost * 60 / NanosPerDollar;
    }

    private sealed record Observation(string What, double UsdPerHour, double CostSoFar, double Projected, string Owner, string Dashboard,
        List<(string, string)> ScopeLabels, (string, string)[] Extra, DateTimeOffset Evidence, DateTimeOffset? Since)
    {
        public (string, string)? ExtraLabel { get; init; }
        public List<(string, string)>? GroupLabels { get; init; }
    }

    private sealed class ActiveAlert(string fingerprint, DateTimeOffset startsAt)
    {
        public string Fingerprint { get; } = fingerprint;
        public DateTimeOffset StartsAt { get; } = startsAt;
        public AlertState State { get; set; } = AlertState.Pending;
        public DateTimeOffset LastSent { get; set; }
        public DateTimeOffset LastEvidence { get; set; }
        public Observation? Last { get; set; }
        /// <summary>When live evaluation last saw the condition hold (null: never); a minute ending before it does not resolve.</summary>
        public DateTimeOffset? LiveSeen { get; set; }

        public AlertNotification ToNotification(AlertRule rule, AlertState state, DateTimeOffset evidence)
        {
            var obs = Last!;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["alertname"] = rule.Name, ["severity"] = rule.Severity };
            foreach (var (name, value) in obs.GroupLabels ?? obs.ScopeLabels)
                labels[name] = value;
            if (obs.ExtraLabel is { } extra)
                labels[extra.Item1] = extra.Item2;
            foreach (var (name, value) in rule.Labels)
                labels[name] = value;
            var scope = obs.GroupLabels is null ? string.Join(", ", obs.ScopeLabels.Take(1).Select(l => $"{l.Item1} {l.Item2}")) : string.Join(", ", obs.GroupLabels.Select(l => $"{l.Item1} {l.Item2}"));
            var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["summary"] = $"{rule.Name}: {(scope.Length == 0 ? "fleet" : scope)} {obs.What}",
                ["description"] = $"{(scope.Length == 0 ? "The fleet" : scope)} {obs.What} since {StartsAt:u}; ${obs.CostSoFar:0.00} so far.",
                ["usd_per_hour"] = Usd(obs.UsdPerHour),
                ["since"] = StartsAt.ToString("O", CultureInfo.InvariantCulture),
                ["cost_so_far_usd"] = Usd(obs.CostSoFar),
                ["projected_usd"] = Usd(obs.Projected),
                ["owner"] = obs.Owner,
                ["dashboard"] = obs.Dashboard,
            };
            foreach (var (name, value) in obs.Extra)
                annotations[name] = value;
            return new AlertNotification(rule.Name, Fingerprint, state, labels, annotations, StartsAt, null, evidence, rule.Action);
        }
    }
}
