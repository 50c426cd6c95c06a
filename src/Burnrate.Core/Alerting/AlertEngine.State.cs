using Burnrate.Rating;

namespace Burnrate.Alerting;

/// <summary>The budget spend one minute adds to each budget rule's scope values (nano-dollars): see <see cref="AlertEngine.BudgetSpendOf"/>.</summary>
public sealed class BudgetMinute
{
    internal BudgetMinute(DateTimeOffset minute, Dictionary<int, Dictionary<string, long>> byRule)
    {
        Minute = minute;
        ByRule = byRule;
    }

    /// <summary>The minute.</summary>
    public DateTimeOffset Minute { get; }

    /// <summary>Per budget rule (index in the engine's rules), the cost per scope value.</summary>
    internal Dictionary<int, Dictionary<string, long>> ByRule { get; }
}

// What the ruler persists and rebuilds: the alerts (exported and restored), the budget spend of the period so far
// (rebuilt from the ledger), and the cost of minutes written after they were evaluated (folded into budget spend).
public sealed partial class AlertEngine
{
    /// <summary>The pending and firing alerts, to persist (<see cref="RestoreAlerts"/> takes them back).</summary>
    public IReadOnlyList<AlertSnapshot> ExportAlerts()
    {
        lock (_lock)
        {
            var result = new List<AlertSnapshot>();
            for (var i = 0; i < _rules.Count; i++)
            {
                foreach (var (key, a) in _states[i].Active)
                {
                    if (a.Last is not { } o)
                        continue;
                    var observation = new AlertObservation(o.What, o.UsdPerHour, o.CostSoFar, o.Projected, o.Owner, o.Dashboard,
                        [.. o.ScopeLabels.Select(Pair)], [.. o.Extra.Select(Pair)], o.Evidence, o.Since,
                        o.ExtraLabel is { } x ? Pair(x) : null, o.GroupLabels?.Select(Pair).ToList());
                    result.Add(new AlertSnapshot(_rules[i].Name, key, a.State, a.StartsAt, a.LastSent, a.LastEvidence, observation));
                }
            }
            return result;
        }
    }

    /// <summary>
    /// Forgets every alert and everything learned (baselines, budget spend, runs, fleet facts): the state of an engine just
    /// built. A ruler that lost the lead does this before it resumes from the store's checkpoint.
    /// </summary>
    public void Reset()
    {
        lock (_lock)
        {
            for (var i = 0; i < _states.Length; i++)
                _states[i] = new RuleState();
            _utilization.Clear();
            _capacity.Clear();
            _fellBack.Clear();
        }
    }

    /// <summary>
    /// Takes back alerts <see cref="ExportAlerts"/> gave (replacing any of the same rule and key); alerts of rules this
    /// engine does not have (the configuration changed) are dropped. Returns how many were restored.
    /// </summary>
    public int RestoreAlerts(IEnumerable<AlertSnapshot> alerts)
    {
        ArgumentNullException.ThrowIfNull(alerts);
        var restored = 0;
        lock (_lock)
        {
            foreach (var s in alerts)
            {
                var i = IndexOf(s.Rule);
                if (i < 0 || s.State is not (AlertState.Pending or AlertState.Firing))
                    continue;
                var o = s.Observation;
                var observation = new Observation(o.What, o.UsdPerHour, o.CostSoFar, o.Projected, o.Owner, o.Dashboard,
                    [.. o.ScopeLabels.Select(Tuple)], [.. o.Extra.Select(Tuple)], o.Evidence, o.Since)
                {
                    ExtraLabel = o.ExtraLabel is { } x ? Tuple(x) : null,
                    GroupLabels = o.GroupLabels?.Select(Tuple).ToList(),
                };
                _states[i].Active[s.Key] = new ActiveAlert(Fingerprint(_rules[i].Name, s.Key), s.StartsAt)
                {
                    State = s.State,
                    LastSent = s.LastSent,
                    LastEvidence = s.LastEvidence,
                    Last = observation,
                };
                restored++;
            }
        }
        return restored;
    }

    /// <summary>
    /// Sets what a budget rule's scope values have spent in the period that starts at <paramref name="periodStart"/>
    /// (nano-dollars per scope value), as read from the ledger: a restarted ruler does not start the month at zero.
    /// </summary>
    public void RestoreBudgetSpend(string rule, DateTimeOffset periodStart, IReadOnlyDictionary<string, long> spend)
    {
        ArgumentNullException.ThrowIfNull(spend);
        lock (_lock)
        {
            var i = IndexOf(rule);
            if (i < 0 || _rules[i].Kind != AlertRuleKind.Budget)
                throw new ArgumentException($"no budget rule named '{rule}'", nameof(rule));
            var state = _states[i];
            state.PeriodStart = periodStart;
            state.Spend.Clear();
            foreach (var (key, nanos) in spend)
                state.Spend[key] = nanos;
        }
    }

    /// <summary>
    /// Teaches a baseline rule one past minute, as read from the ledger: each scope value's rate in
    /// <paramref name="usdPerHour"/> (those the rule already knows and are missing burned nothing). Learned as normal,
    /// whatever it was: a ruler that starts rebuilds its baselines so, minute by minute over the days its baselines
    /// remember, instead of starting cold.
    /// </summary>
    public void LearnBaseline(string rule, DateTimeOffset minute, IReadOnlyDictionary<string, double> usdPerHour)
    {
        ArgumentNullException.ThrowIfNull(usdPerHour);
        lock (_lock)
        {
            var i = IndexOf(rule);
            if (i < 0 || _rules[i].Kind != AlertRuleKind.Baseline)
                throw new ArgumentException($"no baseline rule named '{rule}'", nameof(rule));
            var state = _states[i];
            var alpha = 1 - Math.Exp(-1 / Math.Max(1, _rules[i].Window.TotalMinutes));
            foreach (var (key, rate) in usdPerHour)
            {
                if (rate > 0)
                    state.Baselines.TryAdd(key, new SeasonalBaseline());
            }
            foreach (var (key, baseline) in state.Baselines)
                baseline.Add(minute, usdPerHour.GetValueOrDefault(key), alpha, learnAverage: true);
        }
    }

    /// <summary>A baseline rule's learned moving average per scope value ($/h) and how many minutes it has learned.</summary>
    public IReadOnlyDictionary<string, (double UsdPerHour, int Minutes)> Baselines(string rule)
    {
        lock (_lock)
        {
            var i = IndexOf(rule);
            return i < 0 ? new Dictionary<string, (double, int)>()
                : _states[i].Baselines.ToDictionary(b => b.Key, b => (b.Value.Value, b.Value.Minutes), StringComparer.Ordinal);
        }
    }

    /// <summary>The budget spend of a budget rule's scope values in the current period (nano-dollars).</summary>
    public IReadOnlyDictionary<string, long> BudgetSpend(string rule)
    {
        lock (_lock)
        {
            var i = IndexOf(rule);
            return i < 0 ? new Dictionary<string, long>() : new Dictionary<string, long>(_states[i].Spend, StringComparer.Ordinal);
        }
    }

    /// <summary>
    /// The cost a minute's lines put into each budget rule's scope values: kept by the ruler for the minutes it evaluated,
    /// so that when one is written again later (<see cref="AddLateSpend"/>) the difference goes into the budget.
    /// </summary>
    public BudgetMinute BudgetSpendOf(RatedMinute minute, IEnumerable<WorkloadSnapshot> workloads)
    {
        ArgumentNullException.ThrowIfNull(minute);
        ArgumentNullException.ThrowIfNull(workloads);
        var byRule = new Dictionary<int, Dictionary<string, long>>();
        lock (_lock)
        {
            Dictionary<string, WorkloadSnapshot>? infos = null;
            for (var i = 0; i < _rules.Count; i++)
            {
                if (_rules[i].Kind != AlertRuleKind.Budget)
                    continue;
                infos ??= workloads.GroupBy(w => w.Info.Id, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
                byRule[i] = Aggregate(_rules[i], minute.Lines, minute.Minute.AddMinutes(1), infos).ToDictionary(a => a.Key, a => a.Value.Cost, StringComparer.Ordinal);
            }
        }
        return new BudgetMinute(minute.Minute, byRule);
    }

    /// <summary>
    /// Adds to each budget rule's spend what a minute evaluated as <paramref name="before"/> now holds more (or less) as
    /// <paramref name="after"/> — a minute written after it was evaluated. Only where the minute lies in the rule's current
    /// period. Alerts are not re-evaluated for that minute; the next minute's budget check sees the new spend.
    /// </summary>
    public void AddLateSpend(BudgetMinute before, BudgetMinute after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        lock (_lock)
        {
            for (var i = 0; i < _rules.Count; i++)
            {
                var state = _states[i];
                if (_rules[i].Kind != AlertRuleKind.Budget || Period(_rules[i].Period, after.Minute).Start != state.PeriodStart)
                    continue;
                var old = before.ByRule.GetValueOrDefault(i) ?? [];
                var now = after.ByRule.GetValueOrDefault(i) ?? [];
                foreach (var key in old.Keys.Union(now.Keys))
                {
                    var delta = now.GetValueOrDefault(key) - old.GetValueOrDefault(key);
                    if (delta != 0)
                        state.Spend[key] = state.Spend.GetValueOrDefault(key) + delta;
                }
            }
        }
    }

    /// <summary>The start of the period of a budget rule that contains <paramref name="t"/>.</summary>
    public static DateTimeOffset BudgetPeriodStart(AlertRule rule, DateTimeOffset t)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return Period(rule.Period, t).Start;
    }

    private int IndexOf(string rule)
    {
        for (var i = 0; i < _rules.Count; i++)
        {
            if (_rules[i].Name == rule)
                return i;
        }
        return -1;
    }

    private static string[] Pair((string, string) p) => [p.Item1, p.Item2];

    private static (string, string) Tuple(string[] p) => (p[0], p[1]);
}
