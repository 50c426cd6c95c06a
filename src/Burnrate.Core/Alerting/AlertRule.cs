namespace Burnrate.Alerting;

/// <summary>What a rule watches (docs/alerts.md has one example of each).</summary>
public enum AlertRuleKind
{
    /// <summary>Burn rate above a fixed $/h.</summary>
    SpendRate,
    /// <summary>Burn rate k× above the scope's learned baseline.</summary>
    Baseline,
    /// <summary>GPUs billed while unallocated or below a utilization threshold.</summary>
    IdleGpu,
    /// <summary>Cost flowing while the work counter is flat, or cost per unit of work k× its baseline.</summary>
    Stall,
    /// <summary>A workload's spot node fell back to on-demand capacity.</summary>
    CapacityFallback,
    /// <summary>The spot price under a running workload rose by more than x%.</summary>
    SpotPriceChange,
    /// <summary>Spend per period (projected to the period's end, and actual) above an amount.</summary>
    Budget,
    /// <summary>Actual $/h (or runtime) above the launch-time estimate by more than a tolerance.</summary>
    EstimateExceeded,
    /// <summary>A flow's run takes k× the GPUs or $/h of its previous runs.</summary>
    StepChange,
    /// <summary>Idle or low-use GPUs inside calendar windows.</summary>
    OffHoursIdle,
}

/// <summary>What one alert is about: a rule evaluates each scope value (each workload, each team, ...) separately.</summary>
public enum AlertScope
{
    Workload,
    Team,
    User,
    Project,
    Cluster,
    Cloud,
    All,
}

/// <summary>Budget periods, UTC; weeks start on Monday.</summary>
public enum BudgetPeriod
{
    Day,
    Week,
    Month,
}

/// <summary>A weekly calendar window, e.g. Friday 18:00 to Monday 08:00 (UTC); the end may wrap past Sunday.</summary>
public readonly record struct WeeklyWindow(TimeSpan Start, TimeSpan End)
{
    /// <summary>Whether <paramref name="t"/> (UTC) falls inside the window.</summary>
    public bool Contains(DateTimeOffset t)
    {
        var utc = t.UtcDateTime;
        var offset = TimeSpan.FromDays(((int)utc.DayOfWeek + 6) % 7) + utc.TimeOfDay; // from Monday 00:00
        return Start <= End ? offset >= Start && offset < End : offset >= Start || offset < End;
    }
}

/// <summary>
/// One validated alert rule (from the <c>rules</c> section of the config file; docs/alerts.md). Parameters a kind
/// does not use keep their defaults.
/// </summary>
public sealed record AlertRule
{
    public required string Name { get; init; }
    public required AlertRuleKind Kind { get; init; }
    public AlertScope Scope { get; init; } = AlertScope.Workload;
    public string Severity { get; init; } = "warning";
    /// <summary>How long the condition must hold before the alert fires.</summary>
    public TimeSpan For { get; init; }
    /// <summary>How often a still-firing alert is sent again.</summary>
    public TimeSpan RepeatInterval { get; init; } = TimeSpan.FromHours(4);
    /// <summary>Extra labels on every alert of this rule.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    /// <summary>Only ledger lines whose dimensions equal these (team, project, user, cluster, cloud, workload, capacity, component) count.</summary>
    public IReadOnlyDictionary<string, string> Match { get; init; } = new Dictionary<string, string>();
    /// <summary>spend_rate: threshold, $/h.</summary>
    public decimal AboveUsdPerHour { get; init; }
    /// <summary>baseline, stall (cost per unit), step_change: how many times the usual value counts as abnormal.</summary>
    public double Factor { get; init; } = 2;
    /// <summary>baseline, stall: the learning window (time constant of the moving average, and the warm-up).</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromHours(1);
    /// <summary>baseline: the increase over the baseline must also be at least this many $/h.</summary>
    public decimal MinIncreaseUsdPerHour { get; init; } = 10;
    /// <summary>idle_gpu, off_hours_idle: a GPU below this utilization (0..1) counts as idle.</summary>
    public double UtilizationBelow { get; init; } = 0.10;
    /// <summary>idle_gpu, off_hours_idle: fires when at least this many GPUs are idle.</summary>
    public double MinGpus { get; init; } = 1;
    /// <summary>idle_gpu, off_hours_idle: fires only when the idle GPUs are also at least this fraction (0..1) of the scope's GPUs.</summary>
    public double MinIdleFraction { get; init; }
    /// <summary>stall: the work counter (steps, tokens, requests); null: any counter the workload reports.</summary>
    public string? Metric { get; init; }
    /// <summary>stall: cost per unit of work above Factor × its baseline also counts (needs <see cref="Metric"/>).</summary>
    public bool CostPerUnit { get; init; }
    /// <summary>spot_price_change: rise in percent over the price when the workload started on it.</summary>
    public double RisePercent { get; init; } = 30;
    /// <summary>budget: the amount per period, $.</summary>
    public decimal AmountUsd { get; init; }
    public BudgetPeriod Period { get; init; } = BudgetPeriod.Month;
    /// <summary>estimate_exceeded: tolerance in percent.</summary>
    public double TolerancePercent { get; init; } = 10;
    /// <summary>step_change: the workload labels that name a flow or config variant.</summary>
    public IReadOnlyList<string> GroupBy { get; init; } = ["metaflow/flow_name"];
    /// <summary>off_hours_idle: the calendar windows (UTC).</summary>
    public IReadOnlyList<WeeklyWindow> Windows { get; init; } = [];
    /// <summary>The rule's <c>action</c> section, passed through to delivery untouched.</summary>
    public IReadOnlyDictionary<string, object>? Action { get; init; }
}
