namespace Burnrate.Alerting;

/// <summary>The built-in rule set, used when the config file has no <c>rules</c> key (docs/alerts.md, "Default rules").</summary>
public static class AlertRules
{
    /// <summary>Rules that catch the simulator's scenarios S1–S13 and stay quiet on its healthy baseline fleet.</summary>
    public static IReadOnlyList<AlertRule> Defaults { get; } =
    [
        new() { Name = "runaway-spend", Kind = AlertRuleKind.SpendRate, Severity = "critical", AboveUsdPerHour = 200 },
        new() { Name = "egress-spend", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = 50, Match = new Dictionary<string, string> { ["component"] = "network" }, For = TimeSpan.FromMinutes(2) },
        new() { Name = "stalled-job", Kind = AlertRuleKind.Stall, For = TimeSpan.FromMinutes(5) },
        new() { Name = "unit-cost-regression", Kind = AlertRuleKind.Stall, Scope = AlertScope.Project, Metric = "requests", CostPerUnit = true, Factor = 1.3, Window = TimeSpan.FromHours(1), For = TimeSpan.FromMinutes(10) },
        new() { Name = "idle-gpus", Kind = AlertRuleKind.IdleGpu, Scope = AlertScope.Cluster, UtilizationBelow = 0.10, MinGpus = 1, MinIdleFraction = 0.75, For = TimeSpan.FromMinutes(30) },
        new() { Name = "off-hours-idle", Kind = AlertRuleKind.OffHoursIdle, Scope = AlertScope.Cluster, UtilizationBelow = 0.10, MinGpus = 1, MinIdleFraction = 0.75, For = TimeSpan.FromMinutes(30), Windows = [.. Configuration.RuleSection.DefaultWindows.Select(w => Configuration.RuleSection.ParseWindow(w, "default"))] },
        new() { Name = "spot-fallback", Kind = AlertRuleKind.CapacityFallback },
        new() { Name = "spot-price-jump", Kind = AlertRuleKind.SpotPriceChange, RisePercent = 30 },
        new() { Name = "over-estimate", Kind = AlertRuleKind.EstimateExceeded, TolerancePercent = 10, For = TimeSpan.FromMinutes(2) },
        new() { Name = "gpu-step-change", Kind = AlertRuleKind.StepChange, Factor = 1.5 },
    ];
}
