using Burnrate.Alerting;
using Burnrate.Pricing;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Storage;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Alerting;

/// <summary>
/// Several rulers over one store, on virtual time: leader election by heartbeats, the checkpoint a new leader resumes
/// from (cursor and alerts), budget spend read from the ledger, and minutes written after they were evaluated.
/// </summary>
public sealed class AlertRulerStateTests : IAsyncLifetime
{
    private static readonly DateTimeOffset s_noon = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private static readonly AlertRulerOptions s_options = new() { Interval = TimeSpan.FromSeconds(5), Settle = TimeSpan.FromSeconds(45) };
    private readonly FakeTimeProvider _time = new(s_noon);
    private ICostStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);

    public async ValueTask DisposeAsync() => await _store.DisposeAsync();

    private static AlertRule SpendAbove(decimal usdPerHour) => new() { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = usdPerHour };

    private static AlertRule MonthlyBudget(decimal usd) => new() { Name = "budget", Kind = AlertRuleKind.Budget, AmountUsd = usd, Period = BudgetPeriod.Month };

    /// <summary>One minute of job:w burning <paramref name="usdPerHour"/> on <paramref name="resource"/>.</summary>
    private Task BurnAsync(DateTimeOffset minute, long usdPerHour, string resource = "node-a") =>
        _store.WriteAsync([SomeLines.Line(minute, costNanos: usdPerHour * Money.NanosPerDollar / 60, workloadId: "job:w", resourceId: resource)], Ct);

    private AlertRuler Ruler(string id, RecordingAlertSink sink, AlertRule rule, AlertRulerOptions? options = null) =>
        new(_store, new AlertEngine([rule], sink), (options ?? s_options) with { RulerId = id }, _time, startAt: s_noon);

    [Fact]
    public async Task Of_two_rulers_only_the_leader_delivers_and_when_its_beats_stop_the_other_takes_over_after_the_lease_evaluating_each_minute_once()
    {
        RecordingAlertSink sinkA = new(), sinkB = new();
        var a = Ruler("ruler-a", sinkA, SpendAbove(20));
        var b = Ruler("ruler-b", sinkB, SpendAbove(20));
        for (var m = 0; m < 6; m++)
            await BurnAsync(s_noon.AddMinutes(m), 30);

        // Both tick every 5 s until 12:04:30: same start, so the lowest id leads; b evaluates and delivers nothing.
        for (var t = s_noon.AddSeconds(5); t <= s_noon.AddMinutes(4).AddSeconds(30); t = t.AddSeconds(5))
        {
            _time.SetUtcNow(t);
            await a.TickAsync(Ct);
            Assert.Equal(0, await b.TickAsync(Ct));
            Assert.True(a.IsLeader);
            Assert.False(b.IsLeader);
        }
        Assert.Equal(AlertState.Firing, Assert.Single(sinkA.All).State);
        Assert.Empty(sinkB.All);
        var evaluatedByA = a.MinutesEvaluated;
        Assert.Equal(s_noon.AddMinutes(3), a.EvaluatedThrough);

        // a dies (no more beats). b stays a standby until a's last beat is more than a lease (3 intervals) old.
        var lastBeatOfA = _time.GetUtcNow();
        var tookOver = (DateTimeOffset?)null;
        for (var t = lastBeatOfA.AddSeconds(5); t <= s_noon.AddMinutes(12); t = t.AddSeconds(5))
        {
            _time.SetUtcNow(t);
            await b.TickAsync(Ct);
            if (b.IsLeader)
                tookOver ??= t;
        }
        Assert.Equal(lastBeatOfA.AddSeconds(20), tookOver); // the first tick past 15 s
        Assert.Equal(0, a.MinutesEvaluated - evaluatedByA);

        // b resumed from a's checkpoint: the alert a fired is not fired again; it resolves once when the burn stops (12:06).
        var resolved = Assert.Single(sinkB.All);
        Assert.Equal(AlertState.Resolved, resolved.State);
        Assert.Equal(s_noon, resolved.StartsAt);
        Assert.Equal(Assert.Single(sinkA.All).Fingerprint, resolved.Fingerprint);

        // Every minute from 12:00 to 12:11 evaluated once overall: a's then b's, with no overlap and no gap.
        Assert.Equal(s_noon.AddMinutes(11), b.EvaluatedThrough);
        Assert.Equal(11, a.MinutesEvaluated + b.MinutesEvaluated);
    }

    [Fact]
    public async Task A_ruler_replaced_by_a_new_one_over_the_same_store_has_its_firing_alert_resolved_once_and_not_fired_again()
    {
        RecordingAlertSink first = new(), second = new();
        var old = Ruler("ruler-1", first, SpendAbove(20));
        await BurnAsync(s_noon, 30);
        await BurnAsync(s_noon.AddMinutes(1), 30);
        _time.SetUtcNow(s_noon.AddMinutes(1).AddSeconds(50));
        Assert.Equal(1, await old.TickAsync(Ct));
        Assert.Equal(AlertState.Firing, Assert.Single(first.All).State);

        // The process restarts (a new id, a new engine) a minute later, past the old one's lease: it leads at once.
        _time.SetUtcNow(s_noon.AddMinutes(2).AddSeconds(50));
        var engine = new AlertEngine([SpendAbove(20)], second);
        var replacement = new AlertRuler(_store, engine, s_options with { RulerId = "ruler-2" }, _time);
        Assert.Equal(1, await replacement.TickAsync(Ct)); // 12:01, still burning: firing, not fired again
        Assert.True(replacement.IsLeader);
        Assert.Empty(second.All);
        Assert.Equal(AlertState.Firing, Assert.Single(engine.Current()).State);

        _time.SetUtcNow(s_noon.AddMinutes(3).AddSeconds(50)); // 12:02 has no rows
        await replacement.TickAsync(Ct);
        _time.SetUtcNow(s_noon.AddMinutes(5));
        await replacement.TickAsync(Ct);
        var resolved = Assert.Single(second.All);
        Assert.Equal(AlertState.Resolved, resolved.State);
        Assert.Equal(s_noon, resolved.StartsAt);
        Assert.Equal(first.All[0].Fingerprint, resolved.Fingerprint);
    }

    [Fact]
    public async Task A_resuming_ruler_catches_up_at_most_max_catch_up()
    {
        var sink = new RecordingAlertSink();
        var options = s_options with { MaxCatchUp = TimeSpan.FromMinutes(30) };
        var first = Ruler("ruler-1", sink, SpendAbove(1000), options);
        _time.SetUtcNow(s_noon.AddMinutes(1).AddSeconds(45));
        Assert.Equal(1, await first.TickAsync(Ct)); // checkpoint at 12:01

        // Three hours later a new ruler resumes: not from 12:01 but from 30 minutes before the newest settled minute.
        _time.SetUtcNow(s_noon.AddHours(3).AddSeconds(45));
        var later = Ruler("ruler-2", sink, SpendAbove(1000), options);
        await later.TickAsync(Ct);
        Assert.Equal(30, later.MinutesEvaluated);
        Assert.Equal(s_noon.AddHours(3), later.EvaluatedThrough);
    }

    [Fact]
    public async Task A_starting_ruler_reads_the_budget_spend_of_the_month_so_far_from_the_ledger()
    {
        // $50 spent on March 1st (600 $/h for 5 minutes), before any ruler ran.
        for (var m = 0; m < 5; m++)
            await BurnAsync(s_noon.AddDays(-1).AddMinutes(m), 600);
        await BurnAsync(s_noon, 60); // $1 in the first minute the ruler evaluates
        var sink = new RecordingAlertSink();
        var engine = new AlertEngine([MonthlyBudget(50.5m)], sink);
        var ruler = new AlertRuler(_store, engine, s_options with { RulerId = "ruler-1" }, _time, startAt: s_noon);

        _time.SetUtcNow(s_noon.AddMinutes(1).AddSeconds(45));
        Assert.Equal(1, await ruler.TickAsync(Ct));

        Assert.Equal(51 * Money.NanosPerDollar, engine.BudgetSpend("budget")["job:w"]);
        Assert.Contains(sink.All, n => n.State == AlertState.Firing && n.Labels["budget"] == "actual" && n.Annotations["period_spend_usd"] == "51.00");
    }

    [Fact]
    public async Task A_starting_ruler_rebuilds_baselines_from_the_ledger_so_a_jump_right_after_the_start_fires()
    {
        // Three quiet hours at 30 $/h before the ruler starts, then 12:00 burns 100 $/h.
        await _store.WriteAsync([.. Enumerable.Range(0, 180).Select(m =>
            SomeLines.Line(s_noon.AddHours(-3).AddMinutes(m), costNanos: 30 * Money.NanosPerDollar / 60, workloadId: "job:w"))], Ct);
        await BurnAsync(s_noon, 100);
        var sink = new RecordingAlertSink();
        var engine = new AlertEngine([new AlertRule { Name = "baseline", Kind = AlertRuleKind.Baseline, Window = TimeSpan.FromHours(1) }], sink);
        var ruler = new AlertRuler(_store, engine, s_options with { RulerId = "ruler-1" }, _time, startAt: s_noon);

        _time.SetUtcNow(s_noon.AddMinutes(1).AddSeconds(45));
        Assert.Equal(1, await ruler.TickAsync(Ct));

        var learned = engine.Baselines("baseline")["job:w"];
        Assert.Equal(180, learned.Minutes); // from the ledger; 12:00 is an anomaly: remembered for its hour, not averaged
        Assert.Equal(30, learned.UsdPerHour, precision: 6);
        var fired = Assert.Single(sink.All);
        Assert.Equal(AlertState.Firing, fired.State);
        Assert.Equal("30.00", fired.Annotations["baseline_usd_per_hour"]);
    }

    [Fact]
    public async Task A_minute_written_after_it_was_evaluated_is_counted_once_and_its_cost_goes_into_the_budget()
    {
        var sink = new RecordingAlertSink();
        var engine = new AlertEngine([MonthlyBudget(1000)], sink);
        var ruler = new AlertRuler(_store, engine, s_options with { RulerId = "ruler-1", LateWindow = TimeSpan.FromMinutes(3) }, _time, startAt: s_noon);
        await BurnAsync(s_noon, 60);
        _time.SetUtcNow(s_noon.AddMinutes(1).AddSeconds(45));
        Assert.Equal(1, await ruler.TickAsync(Ct));
        Assert.Equal(1 * Money.NanosPerDollar, engine.BudgetSpend("budget")["job:w"]);

        // A second ingester, behind, writes node-b's 12:00 after the ruler evaluated it: $2 more for job:w.
        await BurnAsync(s_noon, 120, resource: "node-b");
        _time.SetUtcNow(s_noon.AddMinutes(1).AddSeconds(50));
        await ruler.TickAsync(Ct);
        Assert.Equal(1, ruler.LateMinutes);
        Assert.Equal(3 * Money.NanosPerDollar, engine.BudgetSpend("budget")["job:w"]);

        // Counted once: later ticks find it as it was folded in.
        _time.SetUtcNow(s_noon.AddMinutes(2).AddSeconds(50));
        await ruler.TickAsync(Ct);
        Assert.Equal(1, ruler.LateMinutes);

        // Beyond the late window (3 minutes behind the cursor), a rewrite is no longer looked at.
        for (var t = s_noon.AddMinutes(3); t <= s_noon.AddMinutes(6); t = t.AddSeconds(30))
        {
            _time.SetUtcNow(t);
            await ruler.TickAsync(Ct);
        }
        await BurnAsync(s_noon, 600, resource: "node-b");
        _time.SetUtcNow(_time.GetUtcNow().AddSeconds(5));
        await ruler.TickAsync(Ct);
        Assert.Equal(1, ruler.LateMinutes);
        Assert.Equal(3 * Money.NanosPerDollar, engine.BudgetSpend("budget")["job:w"]);
    }
}
