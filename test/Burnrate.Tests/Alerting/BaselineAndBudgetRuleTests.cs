using Burnrate.Alerting;
using Burnrate.Configuration;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Alerting;

/// <summary>
/// The baseline rule on a fake clock (a jump fires; the same level at the same hour yesterday or the same hour of the
/// week a week ago does not), and the budget rule on scenario S11 (the weekend sweep) with a configured amount.
/// </summary>
public sealed class BaselineAndBudgetRuleTests : IAsyncDisposable
{
    private static readonly AlertRule s_baseline = new() { Name = "unusual", Kind = AlertRuleKind.Baseline, Factor = 1.5, Window = TimeSpan.FromHours(1), MinIncreaseUsdPerHour = 10, RepeatInterval = TimeSpan.FromDays(30) };
    private readonly RecordingAlertSink _sink = new();
    private DuckDbCostStore? _store;
    private CostPipeline? _pipeline;
    private int _allocated;

    public async ValueTask DisposeAsync()
    {
        _pipeline?.Dispose();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<CostPipeline> StartAsync(DateTimeOffset at, int gpus)
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p5.48xlarge", CapacityType.OnDemand, 55.04m, 5.504m, 8));
        _store = await DuckDbCostStore.OpenAsync(":memory:", ct: TestContext.Current.CancellationToken);
        _pipeline = new CostPipeline(new RatingEngine(book, new FakeRateCard()), _store, new RatingOptions { Grace = TimeSpan.Zero })
        {
            Alerts = new AlertEngine([s_baseline], _sink),
        };
        _pipeline.Apply([new NodeStarted(at, Some.Node("i-1", "p5.48xlarge", 8, model: "H100")), new NodeStarted(at, Some.Node("i-2", "p5.48xlarge", 8, model: "H100")),
            new WorkloadStarted(at, Some.Workload("k8s:serving"))]);
        Allocate(at, gpus);
        return _pipeline;
    }

    /// <summary>Gives the workload <paramref name="gpus"/> whole GPUs (node i-1 first, then i-2) from <paramref name="at"/>.</summary>
    private void Allocate(DateTimeOffset at, int gpus)
    {
        var events = new List<FleetEvent>();
        for (var g = _allocated; g < gpus; g++)
            events.Add(new GpuAllocated(at, "k8s:serving", g < 8 ? "i-1" : "i-2", g % 8, GpuShare.Whole));
        for (var g = gpus; g < _allocated; g++)
            events.Add(new GpuReleased(at, "k8s:serving", g < 8 ? "i-1" : "i-2", g % 8));
        _allocated = gpus;
        _pipeline!.Apply(events);
    }

    /// <summary>Rates minute by minute up to <paramref name="until"/>, giving the workload the GPUs <paramref name="gpusAt"/> says for each minute.</summary>
    private void Play(DateTimeOffset from, DateTimeOffset until, Func<DateTimeOffset, int> gpusAt)
    {
        for (var t = from; t < until; t = t.AddMinutes(1))
        {
            if (gpusAt(t) != _allocated)
                Allocate(t, gpusAt(t));
            _pipeline!.RateClosed(t.AddMinutes(1));
        }
    }

    private IEnumerable<AlertNotification> Firing => _sink.All.Where(n => n.State == AlertState.Firing);

    [Fact]
    public async Task A_jump_to_four_times_the_learned_rate_fires_at_the_end_of_its_first_minute_and_resolves_when_it_ends()
    {
        var t0 = Some.At(0, 0);
        await StartAsync(t0, gpus: 2);
        Play(t0, t0.AddHours(3), t => t < t0.AddHours(2) ? 2 : t < t0.AddHours(2).AddMinutes(30) ? 8 : 2);

        var fired = Assert.Single(Firing);
        Assert.Equal(t0.AddHours(2).AddMinutes(1), fired.EvidenceAt);
        Assert.Equal("55.04", fired.Annotations["usd_per_hour"]); // 8 GPUs: the whole p5 ($55.04/h) against 2 of 8 ($13.76/h)
        Assert.Equal("13.76", fired.Annotations["baseline_usd_per_hour"]);
        Assert.Equal(AlertState.Resolved, _sink.All[^1].State);
    }

    [Fact]
    public async Task Nothing_fires_during_the_first_window_while_the_baseline_is_learned()
    {
        var t0 = Some.At(0, 0);
        await StartAsync(t0, gpus: 2);
        Play(t0, t0.AddMinutes(60), t => t < t0.AddMinutes(30) ? 2 : 8);
        Assert.Empty(Firing); // the jump at 30m is inside the 1-hour warm-up

        // Once warm, the average has learned only part of the new level (30 of the 60 minutes): still 1.8× it, so it fires.
        Play(t0.AddMinutes(60), t0.AddMinutes(61), _ => 8);
        Assert.Equal(t0.AddMinutes(61), Assert.Single(Firing).EvidenceAt);
    }

    [Fact]
    public async Task A_daily_business_hours_peak_fires_on_its_first_day_only_and_a_new_peak_on_the_third_day_still_fires()
    {
        var monday = Some.At(0, 0); // 2026-03-02 is a Monday
        await StartAsync(monday, gpus: 2);
        // 8 GPUs 09:00–17:00 every day, 2 otherwise; on Wednesday at 12:00 the job spreads to 16 GPUs for an hour.
        var anomaly = monday.AddDays(2).AddHours(12);
        Play(monday, monday.AddDays(3), t => t >= anomaly && t < anomaly.AddHours(1) ? 16 : t.Hour is >= 9 and < 17 ? 8 : 2);

        Assert.Equal([monday.AddHours(9).AddMinutes(1), anomaly.AddMinutes(1)], Firing.Select(n => n.EvidenceAt));
        Assert.Equal("110.08", Firing.Last().Annotations["usd_per_hour"]);
        Assert.Equal("55.04", Firing.Last().Annotations["baseline_usd_per_hour"]); // this hour yesterday
    }

    [Fact]
    public async Task A_weekday_peak_after_a_quiet_weekend_is_normal_when_the_same_hour_of_last_week_had_it()
    {
        var monday = Some.At(0, 0);
        await StartAsync(monday, gpus: 2);
        // Weekdays 8 GPUs 09:00–17:00; the weekend stays at 2 all day: Monday morning of week 2 follows a quiet Sunday.
        Play(monday, monday.AddDays(8), t => t.DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday) && t.Hour is >= 9 and < 17 ? 8 : 2);

        Assert.Equal([monday.AddHours(9).AddMinutes(1)], Firing.Select(n => n.EvidenceAt));
    }

    [Fact]
    public async Task S11_the_weekend_sweep_fires_the_team_budget_projected_at_its_first_minute_and_actual_when_spend_crosses_it()
    {
        var budget = new AlertRule { Name = "vision-weekly", Kind = AlertRuleKind.Budget, Scope = AlertScope.Team, AmountUsd = 1000, Period = BudgetPeriod.Week, RepeatInterval = TimeSpan.FromDays(7) };
        var start = ScenarioAlertPlayer.Monday.AddDays(4).AddHours(10); // Friday 18:00, when the sweep's nodes start
        var notifications = await ScenarioAlertPlayer.PlayAsync("s11", TimeSpan.FromHours(15), start, [budget], sampleEvery: TimeSpan.FromMinutes(5), tick: TimeSpan.FromHours(1));

        var firing = notifications.Where(n => n.State == AlertState.Firing && n.Labels["team"] == "vision").ToList();
        var projected = Assert.Single(firing, n => n.Labels["budget"] == "projected");
        var actual = Assert.Single(firing, n => n.Labels["budget"] == "actual");
        Assert.Equal(start.AddMinutes(1), projected.EvidenceAt);

        // The four a2-highgpu-8g nodes are the team's whole spend: the minute the cumulative cost passes $1,000, worked
        // out from the catalog price (the ledger splits each node per GPU and workload; its minutes add up to this).
        var (book, _) = PricingSetup.Load(new BurnrateConfig());
        var node = book.Find("gcp", "us-central1", "us-central1-b", "a2-highgpu-8g", CapacityType.OnDemand, start)!;
        var perMinute = 4 * node.PricePerHour / 60;
        var minutes = (int)Math.Floor(1000m / perMinute) + 1;
        Assert.Equal(start.AddMinutes(minutes), actual.EvidenceAt);
        Assert.Equal("1000.00", actual.Annotations["budget_usd"]);
        Assert.Equal("week", actual.Annotations["period"]);
    }
}
