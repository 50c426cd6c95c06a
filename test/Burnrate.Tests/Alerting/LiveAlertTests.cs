using Burnrate.Alerting;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Alerting;

/// <summary>
/// Live evaluation: rules judged from the burn rate fire at the instant their evidence is applied, not when the minute
/// is rated (a minute plus the grace later), and the minute evaluation neither resolves nor re-fires them.
/// </summary>
public sealed class LiveAlertTests : IAsyncDisposable
{
    private readonly RecordingAlertSink _sink = new();
    private DuckDbCostStore? _store;

    public async ValueTask DisposeAsync()
    {
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<CostPipeline> PipelineAsync(params AlertRule[] rules)
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p5.48xlarge", CapacityType.OnDemand, 55.04m, 5.504m, 8));
        book.Add(Some.Price("p5.48xlarge", CapacityType.Spot, 20m, 2m, 8));
        _store = await DuckDbCostStore.OpenAsync(":memory:", ct: TestContext.Current.CancellationToken);
        return new CostPipeline(new RatingEngine(book, new FakeRateCard()), _store, new RatingOptions { Grace = TimeSpan.FromSeconds(30) })
        {
            Alerts = new AlertEngine(rules, _sink),
        };
    }

    private static FleetEvent[] Runaway(DateTimeOffset at, int nodes, CapacityType capacity = CapacityType.OnDemand, decimal? estimate = null)
    {
        var events = new List<FleetEvent> { new WorkloadStarted(at, Some.Workload("skypilot:runaway"), estimate) };
        for (var n = 0; n < nodes; n++)
        {
            events.Add(new NodeStarted(at, Some.Node($"i-{n}", "p5.48xlarge", 8, capacity, "H100")));
            for (var g = 0; g < 8; g++)
                events.Add(new GpuAllocated(at, "skypilot:runaway", $"i-{n}", g, GpuShare.Whole));
        }
        return [.. events];
    }

    [Fact]
    public async Task A_spend_rate_alert_fires_at_the_second_its_evidence_is_applied_and_the_minute_does_not_fire_it_again()
    {
        using var pipeline = await PipelineAsync(new AlertRule { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = 400 });
        var start = Some.At(12, 0, 40);
        pipeline.Apply(Runaway(start, nodes: 9));

        pipeline.EvaluateLive(start.AddSeconds(1));

        var fired = Assert.Single(_sink.All);
        Assert.Equal(AlertState.Firing, fired.State);
        Assert.Equal(start.AddSeconds(1), fired.StartsAt);
        Assert.Equal(start.AddSeconds(1), fired.EvidenceAt);
        Assert.Equal("skypilot:runaway", fired.Labels["workload"]);
        Assert.Equal("495.36", fired.Annotations["usd_per_hour"]); // 9 × $55.04/h

        // The minute 12:00 held the job 20 s (an average of $165/h, below the threshold): it must not resolve an alert
        // seen live after that minute ended, and the following minutes, above the threshold, must not send it again.
        pipeline.EvaluateLive(Some.At(12, 1, 10));
        await pipeline.RateClosedMinutesAsync(Some.At(12, 4, 30), TestContext.Current.CancellationToken);
        Assert.Single(_sink.All);
    }

    [Fact]
    public async Task A_live_alert_is_resolved_by_the_first_rated_minute_after_its_condition_stopped()
    {
        using var pipeline = await PipelineAsync(new AlertRule { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = 400 });
        pipeline.Apply(Runaway(Some.At(12, 0, 0), nodes: 9));
        pipeline.EvaluateLive(Some.At(12, 0, 1));
        pipeline.Apply([new WorkloadStopped(Some.At(12, 2, 0), "skypilot:runaway"), .. Enumerable.Range(0, 9).Select(n => new NodeStopped(Some.At(12, 2, 0), $"i-{n}"))]);
        pipeline.EvaluateLive(Some.At(12, 2, 1)); // nothing burns: live evaluation does not resolve

        Assert.Single(_sink.All);
        await pipeline.RateClosedMinutesAsync(Some.At(12, 3, 30), TestContext.Current.CancellationToken);

        Assert.Equal([AlertState.Firing, AlertState.Resolved], _sink.All.Select(n => n.State));
    }

    [Fact]
    public async Task A_rule_with_for_stays_pending_live_until_for_has_passed_since_the_condition_was_first_seen()
    {
        using var pipeline = await PipelineAsync(new AlertRule { Name = "runaway", Kind = AlertRuleKind.SpendRate, AboveUsdPerHour = 400, For = TimeSpan.FromSeconds(30) });
        pipeline.Apply(Runaway(Some.At(12, 0, 5), nodes: 9));

        pipeline.EvaluateLive(Some.At(12, 0, 6));
        pipeline.EvaluateLive(Some.At(12, 0, 35));
        Assert.Empty(_sink.All);
        Assert.Equal(AlertState.Pending, Assert.Single(pipeline.Alerts!.Current()).State);

        pipeline.EvaluateLive(Some.At(12, 0, 36));
        var fired = Assert.Single(_sink.All);
        Assert.Equal(Some.At(12, 0, 6), fired.StartsAt);
    }

    [Fact]
    public async Task Capacity_fallback_fires_live_with_the_time_of_the_capacity_change_as_its_evidence()
    {
        using var pipeline = await PipelineAsync(new AlertRule { Name = "fallback", Kind = AlertRuleKind.CapacityFallback });
        pipeline.Apply(Runaway(Some.At(12, 0, 0), nodes: 1, CapacityType.Spot));
        pipeline.EvaluateLive(Some.At(12, 5, 0));
        Assert.Empty(_sink.All);

        pipeline.Apply([new CapacityChanged(Some.At(12, 7, 30), "i-0", CapacityType.OnDemand)]);
        pipeline.EvaluateLive(Some.At(12, 7, 30).AddMilliseconds(200));

        var fired = Assert.Single(_sink.All);
        Assert.Equal(Some.At(12, 7, 30), fired.EvidenceAt);
        Assert.Equal("55.04", fired.Annotations["usd_per_hour"]);
    }

    [Fact]
    public async Task Estimate_exceeded_fires_live_against_the_launch_estimate()
    {
        using var pipeline = await PipelineAsync(new AlertRule { Name = "over", Kind = AlertRuleKind.EstimateExceeded, TolerancePercent = 20 });
        pipeline.Apply(Runaway(Some.At(12, 0, 0), nodes: 1, estimate: 40m));

        pipeline.EvaluateLive(Some.At(12, 0, 1));

        var fired = Assert.Single(_sink.All);
        Assert.Equal("40.00", fired.Annotations["estimate_usd_per_hour"]);
    }

    [Fact]
    public async Task Rules_that_need_a_whole_minute_are_not_judged_live()
    {
        using var pipeline = await PipelineAsync(new AlertRule { Name = "idle", Kind = AlertRuleKind.IdleGpu, Scope = AlertScope.Cluster, UtilizationBelow = 0.3, MinGpus = 1 });
        pipeline.Apply([new NodeStarted(Some.At(12, 0, 0), Some.Node("i-idle", "p5.48xlarge", 8))]);

        pipeline.EvaluateLive(Some.At(12, 0, 30));
        Assert.Empty(_sink.All);

        await pipeline.RateClosedMinutesAsync(Some.At(12, 1, 30), TestContext.Current.CancellationToken);
        Assert.Equal(AlertState.Firing, Assert.Single(_sink.All).State);
    }
}
