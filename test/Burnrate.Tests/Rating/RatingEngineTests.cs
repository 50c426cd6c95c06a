using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Rating;

/// <summary>Hand-computed cases: each expected amount is worked out in the comment above it.</summary>
public sealed class RatingEngineTests
{
    private readonly FakePriceBook _book = new();
    private readonly RatingEngine _engine;

    public RatingEngineTests() => _engine = new RatingEngine(_book, new FakeRateCard());

    private List<CostLine> RateRange(DateTimeOffset from, DateTimeOffset to)
    {
        var lines = new List<CostLine>();
        for (var m = from; m < to; m = m.AddMinutes(1))
            lines.AddRange(_engine.RateMinute(m).Lines);
        return lines;
    }

    private static Money Sum(IEnumerable<CostLine> lines) => new(lines.Sum(l => l.Cost.Nanos));

    [Fact]
    public void One_p5_48xlarge_on_demand_for_sixty_minutes_costs_exactly_its_hourly_price()
    {
        // $55.04/h (SkyPilot catalog, us-east-1); the GPU part $5.9 × 8 = $47.20, compute part $7.84.
        _book.Add(Some.Price("p5.48xlarge", CapacityType.OnDemand, 55.04m, 5.9m, 8, model: "H100"));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-p5", "p5.48xlarge", 8, model: "H100")));
        _engine.Apply(new NodeStopped(Some.At(13, 0), "i-p5"));

        var lines = RateRange(Some.At(12, 0), Some.At(13, 5));

        Assert.Equal(Money.FromDollars(55.04m), Sum(lines));
        Assert.Equal(Money.FromDollars(47.20m), Sum(lines.Where(l => l.Component == CostComponent.Gpu)));
        Assert.Equal(Money.FromDollars(7.84m), Sum(lines.Where(l => l.Component == CostComponent.Compute)));
        Assert.All(lines, l => Assert.True(l.IsIdle));
        Assert.Equal(60, lines.Select(l => l.Minute).Distinct().Count());
        // Every row traces to a rate and a span: cost = rate × seconds / 3600 to within the nano-dollar carried.
        Assert.All(lines, l => Assert.InRange(l.Rate.NanosPerHour * (long)l.Seconds / 3600 - l.Cost.Nanos, -1, 1));
    }

    [Fact]
    public void Ninety_seconds_of_spot_p4d_whose_spot_price_changes_at_second_forty_are_priced_at_each_seconds_price()
    {
        // Spot $36/h = $0.01/s until 12:00:40, then $72/h = $0.02/s. 40 s × $0.01 + 50 s × $0.02 = $1.40.
        // Minute 12:00 = 40 × 0.01 + 20 × 0.02 = $0.80; minute 12:01 = 30 × 0.02 = $0.60.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.Spot, 36m, 3.6m, 8));
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.Spot, 72m, 7.2m, 8, from: Some.At(12, 0, 40)));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-p4d", "p4d.24xlarge", 8, CapacityType.Spot)));
        _engine.Apply(new NodeStopped(Some.At(12, 1, 30), "i-p4d"));

        var first = _engine.RateMinute(Some.At(12, 0)).Lines;
        var second = _engine.RateMinute(Some.At(12, 1)).Lines;

        Assert.Equal(Money.FromDollars(0.80m), Sum(first));
        Assert.Equal(Money.FromDollars(0.60m), Sum(second));
        Assert.Equal(Money.FromDollars(1.40m), Sum(first.Concat(second)));
        Assert.Contains(first, l => l.SegmentStart == 40 && l.Seconds == 20 && l.Rate == HourlyRate.FromDollarsPerHour(7.2m) && l.GpuIndex == 0);
        Assert.All(second, l => Assert.Equal(30, l.Seconds));
    }

    [Fact]
    public void Spot_to_on_demand_fallback_at_13_07_30_splits_that_minute_exactly()
    {
        // Spot $36/h ($0.01/s), on-demand $108/h ($0.03/s). Minute 13:07 = 30 × 0.01 + 30 × 0.03 = $1.20.
        // 13:00–13:07 spot = 7 × $0.60 = $4.20; 13:08–13:09 on-demand = 2 × $1.80 = $3.60. Total $9.00.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.Spot, 36m, 3.6m, 8));
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 108m, 10.8m, 8));
        _engine.Apply(new NodeStarted(Some.At(13, 0), Some.Node("i-p4d", "p4d.24xlarge", 8, CapacityType.Spot)));
        _engine.Apply(new CapacityChanged(Some.At(13, 7, 30), "i-p4d", CapacityType.OnDemand));
        _engine.Apply(new NodeStopped(Some.At(13, 10), "i-p4d"));

        var lines = RateRange(Some.At(13, 0), Some.At(13, 10));

        var fallbackMinute = lines.Where(l => l.Minute == Some.At(13, 7)).ToList();
        Assert.Equal(Money.FromDollars(1.20m), Sum(fallbackMinute));
        Assert.Equal(Money.FromDollars(0.30m), Sum(fallbackMinute.Where(l => l.Capacity == CapacityType.Spot)));
        Assert.Equal(Money.FromDollars(0.90m), Sum(fallbackMinute.Where(l => l.Capacity == CapacityType.OnDemand)));
        Assert.All(fallbackMinute.Where(l => l.Capacity == CapacityType.OnDemand), l => Assert.Equal(30, l.SegmentStart));
        Assert.Equal(Money.FromDollars(9.00m), Sum(lines));
    }

    [Fact]
    public void A_thirty_second_job_pays_thirty_seconds_of_its_gpu_and_its_share_of_the_node()
    {
        // Node $72/h: 8 GPUs × $7.20 + compute $14.40. The job holds GPU 0 from 12:00:10 to 12:00:40.
        // GPU: $7.20/h × 30 s = $0.06. Compute: 1/8 × $14.40 = $1.80/h × 30 s = $0.015. Job total $0.075.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 8)));
        _engine.Apply(new WorkloadStarted(Some.At(12, 0, 10), Some.Workload("slurm:42")));
        _engine.Apply(new GpuAllocated(Some.At(12, 0, 10), "slurm:42", "i-1", 0, GpuShare.Whole));
        _engine.Apply(new WorkloadStopped(Some.At(12, 0, 40), "slurm:42"));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        var job = lines.Where(l => l.WorkloadId == "slurm:42").ToList();
        Assert.Equal(Money.FromDollars(0.075m), Sum(job));
        Assert.Equal(Money.FromDollars(0.06m), Sum(job.Where(l => l.Component == CostComponent.Gpu)));
        Assert.All(job, l => Assert.Equal((10, 30), (l.SegmentStart, l.Seconds)));
        Assert.All(job, l => Assert.Equal(("ml", "alice", "llm"), (l.Team, l.User, l.Project)));
        // The node's whole minute is still paid: $72/h × 60 s = $1.20, the rest idle.
        Assert.Equal(Money.FromDollars(1.20m), Sum(lines));
        Assert.Equal(Money.FromDollars(1.125m), Sum(lines.Where(l => l.IsIdle)));
    }

    [Fact]
    public void A_mig_1g_10gb_slice_of_an_a100_pays_one_seventh_of_its_gpu()
    {
        // GPU $4.20/h: 1g.10gb = 1/7 → $0.60/h → $0.01 a minute; the other 6/7 ($3.60/h → $0.06) is idle.
        // Compute $33.60/h: the slice holds 1/7 of 1 of 8 GPUs = 1/56 → $0.60/h → $0.01 a minute. Node $67.20/h.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 67.20m, 4.2m, 8));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-mig", "p4d.24xlarge", 8)));
        _engine.Apply(new WorkloadStarted(Some.At(12, 0), Some.Workload("k8s:team-a/bert", team: "a")));
        _engine.Apply(new GpuAllocated(Some.At(12, 0), "k8s:team-a/bert", "i-mig", 3, GpuShare.Mig("1g.10gb")));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        var slice = lines.Where(l => l.WorkloadId == "k8s:team-a/bert").ToList();
        Assert.Equal(Money.FromDollars(0.02m), Sum(slice));
        Assert.Equal(Money.FromDollars(0.01m), Sum(slice.Where(l => l.Component == CostComponent.Gpu)));
        Assert.Equal(142_857, slice.Single(l => l.Component == CostComponent.Gpu).SharePpm);
        Assert.Equal(Money.FromDollars(0.06m), Sum(lines.Where(l => l.IsIdle && l.GpuIndex == 3)));
        Assert.Equal(Money.FromDollars(1.12m), Sum(lines));
    }

    [Fact]
    public void The_unallocated_half_of_a_half_allocated_node_is_booked_as_idle_on_its_owner()
    {
        // Node $72/h (8 × $7.20 + $14.40). The job holds GPUs 0–3: 4 × 7.20 + 14.40 / 2 = $36/h; idle the other $36/h.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        var labels = new Dictionary<string, string> { ["team"] = "platform" };
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-half", "p4d.24xlarge", 8, labels: labels)));
        _engine.Apply(new WorkloadStarted(Some.At(12, 0), Some.Workload("skypilot:train", team: "research")));
        for (var g = 0; g < 4; g++)
            _engine.Apply(new GpuAllocated(Some.At(12, 0), "skypilot:train", "i-half", g, GpuShare.Whole));

        var lines = RateRange(Some.At(12, 0), Some.At(13, 0));

        Assert.Equal(Money.FromDollars(36m), Sum(lines.Where(l => l.WorkloadId == "skypilot:train")));
        Assert.Equal(Money.FromDollars(36m), Sum(lines.Where(l => l.IsIdle)));
        Assert.All(lines.Where(l => l.IsIdle), l => Assert.Equal("platform", l.Team));
        Assert.All(lines.Where(l => !l.IsIdle), l => Assert.Equal("research", l.Team));
    }

    [Fact]
    public void Four_teams_time_slicing_one_gpu_each_pay_a_quarter_and_overbooking_scales_down()
    {
        // GPU $7.20/h; four holders of 1/4 → $1.80/h each → $0.03 a minute. A fifth 1/4 overbooks: each pays 1/5 → $0.024.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-ts", "p4d.24xlarge", 8)));
        foreach (var team in new[] { "a", "b", "c", "d" })
        {
            _engine.Apply(new WorkloadStarted(Some.At(12, 0), Some.Workload("k8s:" + team, team: team)));
            _engine.Apply(new GpuAllocated(Some.At(12, 0), "k8s:" + team, "i-ts", 0, GpuShare.Shared(1, 4)));
        }
        var first = _engine.RateMinute(Some.At(12, 0)).Lines;
        Assert.All(new[] { "a", "b", "c", "d" }, t =>
            Assert.Equal(Money.FromDollars(0.03m), Sum(first.Where(l => l.WorkloadId == "k8s:" + t && l.Component == CostComponent.Gpu))));
        Assert.Equal(Money.Zero, Sum(first.Where(l => l.IsIdle && l.GpuIndex == 0)));

        _engine.Apply(new WorkloadStarted(Some.At(12, 1), Some.Workload("k8s:e", team: "e")));
        _engine.Apply(new GpuAllocated(Some.At(12, 1), "k8s:e", "i-ts", 0, GpuShare.Shared(1, 4)));
        var second = _engine.RateMinute(Some.At(12, 1)).Lines;
        Assert.Equal(Money.FromDollars(0.024m), Sum(second.Where(l => l.WorkloadId == "k8s:e" && l.Component == CostComponent.Gpu)));
    }

    [Fact]
    public void Egress_and_storage_are_priced_from_the_rate_card()
    {
        // 10 TB cross-region at $0.02/GB = $200. A 1,000 GB volume at $0.08/GB-month for one hour = 80/730 $/h.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 8)));
        _engine.Apply(new WorkloadStarted(Some.At(12, 0), Some.Workload("metaflow:Train/1")));
        _engine.Apply(new BytesTransferred(Some.At(12, 0, 5), "metaflow:Train/1", "i-1", TransferKind.CrossRegion, 10_000_000_000_000));
        _engine.Apply(new StorageChanged(Some.At(12, 0), "vol-1", "metaflow:Train/1", "aws", "us-east-1", "ssd", 1000m));
        _engine.Apply(new StorageChanged(Some.At(13, 0), "vol-1", "metaflow:Train/1", "aws", "us-east-1", "ssd", 0m));

        var lines = RateRange(Some.At(12, 0), Some.At(13, 1));

        var egress = Assert.Single(lines, l => l.Component == CostComponent.Network);
        Assert.Equal(Money.FromDollars(200m), egress.Cost);
        Assert.Equal(10_000_000_000_000m, egress.Quantity);
        var storage = Sum(lines.Where(l => l.Component == CostComponent.Storage));
        var rate = HourlyRate.FromDollarsPerHour(1000m * 0.08m / 730m);
        Assert.Equal(rate.NanosPerHour, storage.Nanos); // one hour at the rate, exactly (carry included)
    }

    [Fact]
    public void A_node_known_only_from_heartbeats_is_billed_from_first_to_last_heartbeat_across_short_gaps()
    {
        // $36/h = $0.01/s. Heartbeats 12:00:00 … 12:02:00 every 30 s, a 2-minute gap (within 5 min staleness), then 12:04:00.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        var node = Some.Node("i-hb", "p4d.24xlarge", 8);
        foreach (var s in new[] { 0, 30, 60, 90, 120, 240 })
            _engine.Apply(new NodeHeartbeat(Some.At(12, 0).AddSeconds(s), node));
        // After a gap longer than the staleness window, it counts as a new life.
        _engine.Apply(new NodeHeartbeat(Some.At(12, 20), node));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 20, 30), node));

        var lines = RateRange(Some.At(12, 0), Some.At(12, 30));

        Assert.Equal(Money.FromDollars(2.40m + 0.30m), Sum(lines));
    }

    [Fact]
    public void Samples_before_the_exact_start_event_are_the_same_life_not_a_second_one()
    {
        // $36/h = $0.60 a minute. Scrapes at 12:00:00 and 12:00:30 arrive before the orchestrator's start event.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        var node = Some.Node("i-1", "p4d.24xlarge", 8);
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0), node));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0, 30), node));
        _engine.Apply(new NodeStarted(Some.At(12, 0), node));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        Assert.Equal(Money.FromDollars(0.60m), Sum(lines));
        Assert.Equal(lines.Count, lines.Select(l => (l.ResourceId, l.GpuIndex, l.WorkloadId, l.Component, l.SegmentStart)).Distinct().Count());
    }

    [Fact]
    public void A_straggling_sample_after_an_exact_stop_does_not_restart_billing()
    {
        // Stopped at 12:00:30 ($0.30); the last scrape lands at 12:00:50.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        var node = Some.Node("i-1", "p4d.24xlarge", 8);
        _engine.Apply(new NodeStarted(Some.At(12, 0), node));
        _engine.Apply(new NodeStopped(Some.At(12, 0, 30), "i-1"));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0, 50), node));

        var lines = RateRange(Some.At(12, 0), Some.At(12, 3));

        Assert.Equal(Money.FromDollars(0.30m), Sum(lines));
    }

    [Fact]
    public void A_price_change_at_a_fractional_second_takes_effect_from_the_next_whole_second()
    {
        // $36/h ($0.01/s) until 12:00:40.5, then $72/h ($0.02/s): seconds 0–40 at $0.01 (41 s), 41–59 at $0.02 (19 s) = $0.79.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8, from: Some.At(12, 0, 40).AddMilliseconds(500)));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 8)));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        Assert.Equal(Money.FromDollars(0.79m), Sum(lines));
    }

    [Fact]
    public void A_long_running_node_with_job_churn_keeps_only_what_is_running_in_memory()
    {
        // A node that runs for a day while 1,440 one-minute jobs come and go: ended jobs, their carried remainders
        // and counters are forgotten an hour after they end; the money is unchanged ($36/h for 24 h = $864).
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        _engine.Apply(new NodeStarted(Some.At(0, 0), Some.Node("i-1", "p4d.24xlarge", 8)));
        long total = 0;
        for (var m = 0; m < 24 * 60; m++)
        {
            var t = Some.At(0, 0).AddMinutes(m);
            var id = $"k8s:job-{m}";
            _engine.Apply(new WorkloadStarted(t, Some.Workload(id)));
            _engine.Apply(new GpuAllocated(t, id, "i-1", m % 8, GpuShare.Whole));
            _engine.Apply(new WorkCounter(t, id, "steps", 1));
            _engine.Apply(new WorkloadStopped(t.AddSeconds(59), id));
            total += _engine.RateMinute(t).Lines.Sum(l => l.Cost.Nanos);
        }

        Assert.Equal(Money.FromDollars(864m).Nanos, total);
        var (nodes, workloads, _, carried) = _engine.StateSize;
        Assert.Equal(1, nodes);
        Assert.InRange(workloads, 1, 121); // at most the last two hours' jobs
        Assert.InRange(carried, 1, 2 * 121 + 9 * 2);
    }

    [Fact]
    public void Attribution_rules_derive_team_from_labels_and_explicit_values_win()
    {
        var rules = new AttributionRules(
        [
            new AttributionRule { Match = new Dictionary<string, string> { ["namespace"] = "search-*" }, Set = new Dictionary<string, string> { ["team"] = "search" } },
            new AttributionRule { Set = new Dictionary<string, string> { ["team"] = "{label:team}", ["project"] = "{label:project}" } },
        ]);
        var fromNamespace = rules.Apply(new WorkloadInfo("k8s:search-prod/ranker", "kubernetes", "ranker", Labels: new Dictionary<string, string> { ["namespace"] = "search-prod" }));
        var fromLabel = rules.Apply(new WorkloadInfo("k8s:x", "kubernetes", "x", Labels: new Dictionary<string, string> { ["team"] = "vision", ["project"] = "det" }));
        var explicitTeam = rules.Apply(new WorkloadInfo("slurm:1", "slurm", "job", Team: "hpc", Labels: new Dictionary<string, string> { ["team"] = "other" }));

        Assert.Equal("search", fromNamespace.Team);
        Assert.Equal(("vision", "det"), (fromLabel.Team, fromLabel.Project));
        Assert.Equal("hpc", explicitTeam.Team);
    }

    [Fact]
    public void A_spot_node_with_no_spot_price_is_priced_at_on_demand_and_says_so()
    {
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 36m, 3.6m, 8));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-s", "p4d.24xlarge", 8, CapacityType.Spot)));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        Assert.Equal(Money.FromDollars(0.60m), Sum(lines));
        Assert.All(lines, l => Assert.StartsWith("no-spot-price:", l.PriceSource, StringComparison.Ordinal));
    }

    [Fact]
    public void An_unknown_instance_type_is_booked_at_zero_and_reported_unpriced()
    {
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-x", "x9.mega", 8)));

        var lines = _engine.RateMinute(Some.At(12, 0)).Lines;

        Assert.Equal(Money.Zero, Sum(lines));
        Assert.Contains("aws/us-east-1/x9.mega/on_demand", _engine.Unpriced);
    }

    [Fact]
    public void Current_burn_is_the_sum_of_the_rates_in_force()
    {
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        _engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-1", "p4d.24xlarge", 8)));
        _engine.Apply(new WorkloadStarted(Some.At(12, 0), Some.Workload("slurm:1")));
        _engine.Apply(new GpuAllocated(Some.At(12, 0), "slurm:1", "i-1", 0, GpuShare.Whole));

        var burn = _engine.CurrentBurn(Some.At(12, 0, 30));

        Assert.Equal(HourlyRate.FromDollarsPerHour(72m).NanosPerHour, burn.Sum(b => b.Rate.NanosPerHour));
        Assert.Equal(HourlyRate.FromDollarsPerHour(7.2m + 1.8m).NanosPerHour, burn.Where(b => b.WorkloadId == "slurm:1").Sum(b => b.Rate.NanosPerHour));
    }

    [Fact]
    public void Current_burn_counts_a_node_known_from_samples_as_running_until_the_staleness_window_after_its_last_sample()
    {
        // Live burn is asked for "now", which is always after the last sample in: a sampled node burns from its first
        // sample until rating.staleness (5 min by default) after its last one, then stops burning.
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        var node = Some.Node("i-1", "p4d.24xlarge", 8);
        var nodeRate = HourlyRate.FromDollarsPerHour(72m).NanosPerHour;
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0), node));

        Assert.Empty(_engine.CurrentBurn(Some.At(11, 59, 59)));
        Assert.Equal(nodeRate, _engine.CurrentBurn(Some.At(12, 0)).Sum(b => b.Rate.NanosPerHour)); // one sample so far
        Assert.Equal(nodeRate, _engine.CurrentBurn(Some.At(12, 0, 14)).Sum(b => b.Rate.NanosPerHour));

        _engine.Apply(new NodeHeartbeat(Some.At(12, 0, 15), node));
        Assert.Equal(nodeRate, _engine.CurrentBurn(Some.At(12, 0, 10)).Sum(b => b.Rate.NanosPerHour));
        Assert.Equal(nodeRate, _engine.CurrentBurn(Some.At(12, 5, 15)).Sum(b => b.Rate.NanosPerHour));
        Assert.Empty(_engine.CurrentBurn(Some.At(12, 5, 16)));

        // The ledger still bills only up to the last sample: 15 s of $72/h.
        Assert.Equal(Money.FromDollars(0.30m), Sum(_engine.RateMinute(Some.At(12, 0)).Lines));
    }

    [Fact]
    public void Current_burn_of_a_sampled_node_ends_at_its_exact_stop()
    {
        _book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 72m, 7.2m, 8));
        var node = Some.Node("i-1", "p4d.24xlarge", 8);
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0), node));
        _engine.Apply(new NodeHeartbeat(Some.At(12, 0, 15), node));
        _engine.Apply(new NodeStopped(Some.At(12, 0, 30), "i-1"));

        Assert.Empty(_engine.CurrentBurn(Some.At(12, 0, 31)));
    }

    [Fact]
    public void Minutes_must_be_rated_in_order()
    {
        _engine.RateMinute(Some.At(12, 1));
        Assert.Throws<InvalidOperationException>(() => _engine.RateMinute(Some.At(12, 0)));
        Assert.Throws<ArgumentException>(() => _engine.RateMinute(Some.At(12, 5, 3)));
    }
}

/// <summary>A savings plan bills its whole commitment every hour: what usage leaves unused is booked too.</summary>
public sealed class UnusedCommitmentTests
{
    [Fact]
    public void A_savings_plan_larger_than_the_usage_books_its_unused_part_so_each_hour_sums_to_commitment_plus_uncovered_usage()
    {
        // Plan: $20/h at 28 % off any p4d. One on-demand p4d at $32/h from 12:00 to 12:30 costs the plan 32 × 0.72 =
        // $23.04/h > $20/h: covered 20/23.04 of it (paying $20/h), the rest on demand: 32 × (1 − 20/23.04) = $4.2222…/h;
        // so 12:00–12:30 books $10 + $2.1111… and nothing unused. 12:30–13:00: no usage, all $20/h unused = $10.
        // The hour: commitment $20 + uncovered usage $2.1111… .
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 32m, 3.6m, 8));
        var terms = new Burnrate.Pricing.Terms.PricingTerms { SavingsPlans = [new Burnrate.Pricing.Terms.SavingsPlan("compute-1y", "aws", 20m, 28m, [], [])] };
        var engine = new RatingEngine(book, new FakeRateCard(), options: new RatingOptions { Terms = terms });
        engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-p4d", "p4d.24xlarge", 8)));
        engine.Apply(new NodeStopped(Some.At(12, 30), "i-p4d"));

        var lines = new List<CostLine>();
        for (var m = Some.At(12, 0); m < Some.At(13, 0); m = m.AddMinutes(1))
            lines.AddRange(engine.RateMinute(m).Lines);
        var burnAt1245 = engine.CurrentBurn(Some.At(12, 45));

        var unused = lines.Where(l => l.Component == CostComponent.Commitment).ToList();
        Assert.Equal(30, unused.Count); // one line per minute with nothing to cover
        Assert.All(unused, l =>
        {
            Assert.Equal("savings-plan/compute-1y", l.ResourceId);
            Assert.True(l.IsIdle);
            Assert.Equal("aws", l.Provider);
            Assert.Equal("savings-plan:compute-1y;unused", l.PriceSource);
            Assert.Equal(HourlyRate.FromDollarsPerHour(20m), l.Rate);
            Assert.Equal(60, l.Seconds);
        });
        Assert.Equal(Money.FromDollars(10m), new Money(unused.Sum(l => l.Cost.Nanos)));
        var nodeCost = lines.Where(l => l.ResourceId == "i-p4d").Sum(l => l.Cost.Nanos);
        Assert.InRange(nodeCost - Money.FromDollars(10m + (4.2222222222m / 2)).Nanos, -100, 100); // nano-dollars of split rounding
        // Right now (12:45) the plan burns $20/h with nothing running.
        var line = Assert.Single(burnAt1245);
        Assert.Equal((CostComponent.Commitment, HourlyRate.FromDollarsPerHour(20m)), (line.Component, line.Rate));
    }

    [Fact]
    public void The_negotiated_discount_applies_to_the_unused_commitment_too()
    {
        // $20/h unused, 8 % off: $18.40/h, $0.306666666 a minute (carried to the nano-dollar: $18.40 an hour).
        var terms = new Burnrate.Pricing.Terms.PricingTerms
        {
            SavingsPlans = [new Burnrate.Pricing.Terms.SavingsPlan("compute-1y", "aws", 20m, 28m, [], [])],
            Discounts = [new Burnrate.Pricing.Terms.NegotiatedDiscount("aws", 8m, [], AppliesToNetwork: true)],
        };
        var engine = new RatingEngine(new FakePriceBook(), new FakeRateCard(), options: new RatingOptions { Terms = terms });

        var lines = new List<CostLine>();
        for (var m = Some.At(12, 0); m < Some.At(13, 0); m = m.AddMinutes(1))
            lines.AddRange(engine.RateMinute(m).Lines);

        Assert.Equal(Money.FromDollars(18.40m), new Money(lines.Sum(l => l.Cost.Nanos)));
        Assert.All(lines, l => Assert.Equal("savings-plan:compute-1y;unused;discount:8%", l.PriceSource));
    }

    [Fact]
    public void A_fully_used_plan_books_no_unused_line()
    {
        var book = new FakePriceBook();
        book.Add(Some.Price("p4d.24xlarge", CapacityType.OnDemand, 32m, 3.6m, 8));
        var terms = new Burnrate.Pricing.Terms.PricingTerms { SavingsPlans = [new Burnrate.Pricing.Terms.SavingsPlan("compute-1y", "aws", 20m, 28m, [], [])] };
        var engine = new RatingEngine(book, new FakeRateCard(), options: new RatingOptions { Terms = terms });
        engine.Apply(new NodeStarted(Some.At(12, 0), Some.Node("i-p4d", "p4d.24xlarge", 8)));

        var lines = engine.RateMinute(Some.At(12, 0)).Lines;

        Assert.DoesNotContain(lines, l => l.Component == CostComponent.Commitment);
        Assert.DoesNotContain(engine.CurrentBurn(Some.At(12, 0).AddSeconds(30)), l => l.Component == CostComponent.Commitment);
    }
}
