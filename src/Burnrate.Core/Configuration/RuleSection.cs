using System.Globalization;
using Burnrate.Alerting;

namespace Burnrate.Configuration;

/// <summary>One entry of the <c>rules</c> section (docs/alerts.md). Kind-specific keys are null when not written.</summary>
public sealed class RuleSection
{
    public string Name { get; set; } = "";
    public string Kind { get; set; } = "";
    public string? Scope { get; set; }
    public string? Severity { get; set; }
    public string? For { get; set; }
    public string? RepeatInterval { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public Dictionary<string, string>? Match { get; set; }
    public decimal? AboveUsdPerHour { get; set; }
    public double? Factor { get; set; }
    public string? Window { get; set; }
    public decimal? MinIncreaseUsdPerHour { get; set; }
    public double? UtilizationBelow { get; set; }
    public double? MinGpus { get; set; }
    public double? MinIdleFraction { get; set; }
    public string? Metric { get; set; }
    public bool? CostPerUnit { get; set; }
    public double? RisePercent { get; set; }
    public decimal? AmountUsd { get; set; }
    public string? Period { get; set; }
    public double? TolerancePercent { get; set; }
    public List<string>? GroupBy { get; set; }
    public List<string>? Windows { get; set; }
    public Dictionary<string, object>? Action { get; set; }

    private static readonly Dictionary<string, AlertRuleKind> s_kinds = new(StringComparer.Ordinal)
    {
        ["spend_rate"] = AlertRuleKind.SpendRate,
        ["baseline"] = AlertRuleKind.Baseline,
        ["idle_gpu"] = AlertRuleKind.IdleGpu,
        ["stall"] = AlertRuleKind.Stall,
        ["capacity_fallback"] = AlertRuleKind.CapacityFallback,
        ["spot_price_change"] = AlertRuleKind.SpotPriceChange,
        ["budget"] = AlertRuleKind.Budget,
        ["estimate_exceeded"] = AlertRuleKind.EstimateExceeded,
        ["step_change"] = AlertRuleKind.StepChange,
        ["off_hours_idle"] = AlertRuleKind.OffHoursIdle,
    };

    // The kind-specific keys each kind accepts (the common ones are accepted by all).
    private static readonly Dictionary<AlertRuleKind, string[]> s_keys = new()
    {
        [AlertRuleKind.SpendRate] = ["above_usd_per_hour"],
        [AlertRuleKind.Baseline] = ["factor", "window", "min_increase_usd_per_hour"],
        [AlertRuleKind.IdleGpu] = ["utilization_below", "min_gpus", "min_idle_fraction"],
        [AlertRuleKind.Stall] = ["metric", "cost_per_unit", "factor", "window"],
        [AlertRuleKind.CapacityFallback] = [],
        [AlertRuleKind.SpotPriceChange] = ["rise_percent"],
        [AlertRuleKind.Budget] = ["amount_usd", "period"],
        [AlertRuleKind.EstimateExceeded] = ["tolerance_percent"],
        [AlertRuleKind.StepChange] = ["factor", "group_by"],
        [AlertRuleKind.OffHoursIdle] = ["utilization_below", "min_gpus", "min_idle_fraction", "windows"],
    };

    private static readonly string[] s_matchKeys = ["workload", "team", "project", "user", "cluster", "cloud", "capacity", "component", "orchestrator"];

    /// <summary>Nights (20:00–08:00) and weekends (Friday 20:00 to Monday 08:00), UTC.</summary>
    public static IReadOnlyList<string> DefaultWindows { get; } =
        ["mon 20:00-tue 08:00", "tue 20:00-wed 08:00", "wed 20:00-thu 08:00", "thu 20:00-fri 08:00", "fri 18:00-mon 08:00"];

    /// <summary>Validates this entry; <paramref name="index"/> names it in errors (<c>rules[2].factor: ...</c>).</summary>
    public AlertRule ToAlertRule(int index)
    {
        var where = $"rules[{index}]";
        if (string.IsNullOrWhiteSpace(Name))
            throw new ArgumentException($"{where}.name is required");
        if (!s_kinds.TryGetValue(Kind, out var kind))
            throw new ArgumentException($"{where}.kind: '{Kind}' is not a rule kind (one of {string.Join(", ", s_kinds.Keys)})");
        foreach (var (key, set) in Written())
        {
            if (set && !s_keys[kind].Contains(key))
                throw new ArgumentException($"{where}.{key} does not apply to kind {Kind}");
        }
        var scope = Scope is null ? DefaultScope(kind) : Enum.TryParse<AlertScope>(Scope, ignoreCase: true, out var s) && !int.TryParse(Scope, CultureInfo.InvariantCulture, out _)
            ? s
            : throw new ArgumentException($"{where}.scope: '{Scope}' is not one of workload, team, user, project, cluster, cloud, all");
        if (kind is AlertRuleKind.CapacityFallback or AlertRuleKind.SpotPriceChange or AlertRuleKind.EstimateExceeded && scope != AlertScope.Workload)
            throw new ArgumentException($"{where}.scope: {Kind} is about workloads; scope must be workload");
        if (kind == AlertRuleKind.StepChange && Scope is not null)
            throw new ArgumentException($"{where}.scope does not apply to kind step_change (group_by names the flow)");
        foreach (var key in (Match ?? []).Keys)
        {
            if (!s_matchKeys.Contains(key))
                throw new ArgumentException($"{where}.match.{key}: not a dimension (one of {string.Join(", ", s_matchKeys)})");
        }
        var rule = new AlertRule
        {
            Name = Name,
            Kind = kind,
            Scope = scope,
            Severity = Severity ?? "warning",
            For = NonNegative(For, "for", TimeSpan.Zero),
            RepeatInterval = Positive(RepeatInterval, "repeat_interval", TimeSpan.FromHours(4)),
            Labels = Labels ?? [],
            Match = Match ?? [],
            Action = Action,
        };
        switch (kind)
        {
            case AlertRuleKind.SpendRate:
                rule = rule with { AboveUsdPerHour = AboveUsdPerHour is > 0 ? AboveUsdPerHour.Value : throw new ArgumentException($"{where}.above_usd_per_hour is required and must be positive") };
                break;
            case AlertRuleKind.Baseline:
                rule = rule with { Factor = Factor1("factor", 2), Window = Positive(Window, "window", TimeSpan.FromHours(24)), MinIncreaseUsdPerHour = MinIncreaseUsdPerHour is { } m and >= 0 ? m : MinIncreaseUsdPerHour is null ? 10 : throw new ArgumentException($"{where}.min_increase_usd_per_hour must not be negative") };
                break;
            case AlertRuleKind.IdleGpu or AlertRuleKind.OffHoursIdle:
                rule = rule with
                {
                    UtilizationBelow = UtilizationBelow is null ? 0.10 : UtilizationBelow is > 0 and <= 1 ? UtilizationBelow.Value : throw new ArgumentException($"{where}.utilization_below must be in (0, 1], got {UtilizationBelow}"),
                    MinGpus = MinGpus is null ? 1 : MinGpus > 0 ? MinGpus.Value : throw new ArgumentException($"{where}.min_gpus must be positive"),
                    MinIdleFraction = MinIdleFraction is null ? 0 : MinIdleFraction is >= 0 and <= 1 ? MinIdleFraction.Value : throw new ArgumentException($"{where}.min_idle_fraction must be in [0, 1], got {MinIdleFraction}"),
                    Windows = kind == AlertRuleKind.OffHoursIdle ? [.. (Windows ?? [.. DefaultWindows]).Select((w, i) => ParseWindow(w, $"{where}.windows[{i}]"))] : [],
                };
                break;
            case AlertRuleKind.Stall:
                if (CostPerUnit == true && string.IsNullOrWhiteSpace(Metric))
                    throw new ArgumentException($"{where}.cost_per_unit needs metric (the counter the cost is divided by)");
                rule = rule with { Metric = Metric, CostPerUnit = CostPerUnit ?? false, Factor = Factor1("factor", 2), Window = Positive(Window, "window", TimeSpan.FromHours(1)) };
                break;
            case AlertRuleKind.SpotPriceChange:
                rule = rule with { RisePercent = RisePercent is null ? 30 : RisePercent > 0 ? RisePercent.Value : throw new ArgumentException($"{where}.rise_percent must be positive") };
                break;
            case AlertRuleKind.Budget:
                rule = rule with
                {
                    AmountUsd = AmountUsd is > 0 ? AmountUsd.Value : throw new ArgumentException($"{where}.amount_usd is required and must be positive"),
                    Period = Period switch
                    {
                        null or "month" => BudgetPeriod.Month,
                        "week" => BudgetPeriod.Week,
                        "day" => BudgetPeriod.Day,
                        _ => throw new ArgumentException($"{where}.period: '{Period}' is not day, week or month"),
                    },
                };
                break;
            case AlertRuleKind.EstimateExceeded:
                rule = rule with { TolerancePercent = TolerancePercent is null ? 10 : TolerancePercent >= 0 ? TolerancePercent.Value : throw new ArgumentException($"{where}.tolerance_percent must not be negative") };
                break;
            case AlertRuleKind.StepChange:
                rule = rule with { Factor = Factor1("factor", 1.5), GroupBy = GroupBy is { Count: > 0 } g ? g : GroupBy is null ? ["metaflow/flow_name"] : throw new ArgumentException($"{where}.group_by is empty") };
                break;
        }
        return rule;

        double Factor1(string key, double fallback) =>
            Factor is null ? fallback : Factor > 1 ? Factor.Value : throw new ArgumentException($"{where}.{key} must be above 1, got {Factor}");

        TimeSpan NonNegative(string? text, string key, TimeSpan fallback)
        {
            var d = text is null ? fallback : Durations.Parse(text, $"{where}.{key}");
            return d >= TimeSpan.Zero ? d : throw new ArgumentException($"{where}.{key} must not be negative");
        }

        TimeSpan Positive(string? text, string key, TimeSpan fallback)
        {
            var d = text is null ? fallback : Durations.Parse(text, $"{where}.{key}");
            return d > TimeSpan.Zero ? d : throw new ArgumentException($"{where}.{key} must be positive");
        }
    }

    private static AlertScope DefaultScope(AlertRuleKind kind) => kind switch
    {
        AlertRuleKind.IdleGpu or AlertRuleKind.OffHoursIdle => AlertScope.Cluster,
        AlertRuleKind.Budget => AlertScope.Team,
        _ => AlertScope.Workload,
    };

    private IEnumerable<(string Key, bool Set)> Written() =>
    [
        ("above_usd_per_hour", AboveUsdPerHour is not null),
        ("factor", Factor is not null),
        ("window", Window is not null),
        ("min_increase_usd_per_hour", MinIncreaseUsdPerHour is not null),
        ("utilization_below", UtilizationBelow is not null),
        ("min_gpus", MinGpus is not null),
        ("min_idle_fraction", MinIdleFraction is not null),
        ("metric", Metric is not null),
        ("cost_per_unit", CostPerUnit is not null),
        ("rise_percent", RisePercent is not null),
        ("amount_usd", AmountUsd is not null),
        ("period", Period is not null),
        ("tolerance_percent", TolerancePercent is not null),
        ("group_by", GroupBy is not null),
        ("windows", Windows is not null),
    ];

    private static readonly string[] s_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    /// <summary>Parses <c>fri 18:00-mon 08:00</c> (UTC; day names mon..sun).</summary>
    public static WeeklyWindow ParseWindow(string text, string where)
    {
        var parts = text.Split('-', 2, StringSplitOptions.TrimEntries);
        if (parts.Length == 2 && TryPoint(parts[0], out var start) && TryPoint(parts[1], out var end) && start != end)
            return new WeeklyWindow(start, end);
        throw new ArgumentException($"{where}: '{text}' is not a weekly window like 'fri 18:00-mon 08:00'");

        static bool TryPoint(string s, out TimeSpan offset)
        {
            offset = default;
            var bits = s.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (bits.Length != 2)
                return false;
            var day = Array.IndexOf(s_days, bits[0].ToLowerInvariant());
            if (day < 0 || !TimeSpan.TryParseExact(bits[1], @"hh\:mm", CultureInfo.InvariantCulture, out var time))
                return false;
            offset = TimeSpan.FromDays(day) + time;
            return true;
        }
    }
}
