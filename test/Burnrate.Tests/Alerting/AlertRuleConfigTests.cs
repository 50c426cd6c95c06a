using Burnrate.Alerting;
using Burnrate.Configuration;

namespace Burnrate.Tests.Alerting;

public sealed class AlertRuleConfigTests
{
    [Fact]
    public void Each_rule_kind_parses_with_its_parameters()
    {
        var rules = BurnrateConfig.Parse("""
            actions: { allow: [scancel] }
            rules:
              - { name: a, kind: spend_rate, above_usd_per_hour: 250, severity: critical, for: 1m, labels: { page: oncall }, match: { team: llm } }
              - { name: b, kind: baseline, scope: team, factor: 3, window: 6h }
              - { name: c, kind: idle_gpu, utilization_below: 0.3, min_gpus: 2, min_idle_fraction: 0.5, for: 10m }
              - { name: d, kind: stall, metric: requests, cost_per_unit: true, factor: 1.3, scope: project }
              - { name: e, kind: capacity_fallback, action: { exec: "scancel {slurm_job_id}", dry_run: true } }
              - { name: f, kind: spot_price_change, rise_percent: 25 }
              - { name: g, kind: budget, amount_usd: 5000, period: week, scope: team }
              - { name: h, kind: estimate_exceeded, tolerance_percent: 15 }
              - { name: i, kind: step_change, group_by: [flow], factor: 1.8 }
              - { name: j, kind: off_hours_idle, windows: ["fri 18:00-mon 08:00"] }
            """).ToAlertRules();

        Assert.Equal(10, rules.Count);
        Assert.Equal(250m, rules[0].AboveUsdPerHour);
        Assert.Equal("oncall", rules[0].Labels["page"]);
        Assert.Equal(TimeSpan.FromMinutes(1), rules[0].For);
        Assert.Equal(AlertScope.Team, rules[1].Scope);
        Assert.Equal(TimeSpan.FromHours(6), rules[1].Window);
        Assert.Equal(AlertScope.Cluster, rules[2].Scope); // idle_gpu's default scope
        Assert.Equal(0.5, rules[2].MinIdleFraction);
        Assert.Equal(0, rules[9].MinIdleFraction); // default: any idle GPU counts
        Assert.True(rules[3].CostPerUnit);
        Assert.Equal("scancel {slurm_job_id}", rules[4].Action?["exec"]?.ToString()); // passed through as written, for delivery
        Assert.Equal(BudgetPeriod.Week, rules[6].Period);
        Assert.Equal(["flow"], rules[8].GroupBy);
        var window = Assert.Single(rules[9].Windows);
        Assert.True(window.Contains(new DateTimeOffset(2026, 3, 7, 12, 0, 0, TimeSpan.Zero)));   // Saturday noon
        Assert.False(window.Contains(new DateTimeOffset(2026, 3, 4, 12, 0, 0, TimeSpan.Zero)));  // Wednesday noon
    }

    [Theory]
    [InlineData("- { name: x, kind: spend_rate }", "rules[0].above_usd_per_hour is required")]
    [InlineData("- { name: x, kind: sprend_rate }", "rules[0].kind: 'sprend_rate' is not a rule kind")]
    [InlineData("- { name: x, kind: idle_gpu, factor: 2 }", "rules[0].factor does not apply to kind idle_gpu")]
    [InlineData("- { name: x, kind: capacity_fallback }\n  - { name: y, kind: baseline, scope: galaxy }", "rules[1].scope: 'galaxy'")]
    [InlineData("- { name: x, kind: budget, amount_usd: 10, period: fortnight }", "rules[0].period: 'fortnight'")]
    [InlineData("- { name: x, kind: stall, cost_per_unit: true }", "rules[0].cost_per_unit needs metric")]
    [InlineData("- { name: x, kind: off_hours_idle, windows: [\"weekend\"] }", "rules[0].windows[0]: 'weekend'")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, for: soon }", "rules[0].for: 'soon'")]
    [InlineData("- { name: x, kind: capacity_fallback }\n  - { name: x, kind: capacity_fallback }", "rules[1].name: 'x' is also the name of rules[0]")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, match: { galaxy: a } }", "rules[0].match.galaxy")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, action: { exec: \"rm -rf {workload}\" } }", "rules[0].action: the command 'rm' is not on actions.allow")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, action: { exec: \"{cmd} x\" } }", "rules[0].action: the command '{cmd}' must be written literally")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, action: { shell: ls } }", "rules[0].action: unknown key action.shell")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, action: { dry_run: true } }", "rules[0].action: an action names exactly one of exec or http")]
    [InlineData("- { name: x, kind: idle_gpu, min_idle_fraction: 1.5 }", "rules[0].min_idle_fraction must be in [0, 1], got 1.5")]
    [InlineData("- { name: x, kind: off_hours_idle, min_idle_fraction: -0.1 }", "rules[0].min_idle_fraction must be in [0, 1], got -0.1")]
    [InlineData("- { name: x, kind: spend_rate, above_usd_per_hour: 1, min_idle_fraction: 0.5 }", "rules[0].min_idle_fraction does not apply to kind spend_rate")]
    public void A_bad_rule_is_an_error_naming_its_index_and_key(string rules, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("rules:\n  " + rules + "\n", "b.yaml"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_rule_key_is_an_error_naming_its_line()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("rules:\n  - name: x\n    kind: spend_rate\n    above_usd_per_hr: 3\n", "b.yaml"));
        Assert.StartsWith("b.yaml:4:", e.Message, StringComparison.Ordinal);
        Assert.Contains("above_usd_per_hr", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_rules_key_gives_the_default_rules_and_an_empty_list_gives_none()
    {
        Assert.Equal(AlertRules.Defaults, BurnrateConfig.Parse("storage: {}\n").ToAlertRules());
        Assert.Empty(BurnrateConfig.Parse("rules: []\n").ToAlertRules());
    }
}
