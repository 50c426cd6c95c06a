using System.Diagnostics;
using System.Globalization;
using System.Text;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Simulation;
using Burnrate.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Simulation;

public sealed class FleetSimulatorTests
{
    // Monday 2025-01-06 00:00 UTC: the default epoch; anchored scenarios (S4, S11) start on Friday 2025-01-10.
    private static readonly DateTimeOffset s_epoch0 = new(2025, 1, 6, 0, 0, 0, TimeSpan.Zero);

    private static (FleetSimulator Sim, List<FleetEvent> Events) Run(string selection, TimeSpan span, FleetSimulatorOptions? options = null)
    {
        var sim = new FleetSimulator(ScenarioLibrary.Resolve(selection), options ?? new FleetSimulatorOptions { Epoch = s_epoch0 });
        var events = new List<FleetEvent>();
        // Chunked like a demo loop; chunking must not matter (see the determinism test).
        for (var t = sim.Epoch; t < sim.Epoch + span;)
        {
            t += TimeSpan.FromHours(1);
            events.AddRange(sim.AdvanceTo(t < sim.Epoch + span ? t : sim.Epoch + span));
        }
        return (sim, events);
    }

    private static DateTimeOffset StartOf(FleetSimulator sim, string id) => sim.Schedule.Single(s => s.Scenario.Id == id).Start;

    [Fact]
    public void Same_seed_gives_byte_identical_events_however_AdvanceTo_is_chunked()
    {
        var span = TimeSpan.FromHours(3);
        var options = new FleetSimulatorOptions { Epoch = s_epoch0, Seed = 7, IgnoreAnchors = true };
        var once = new FleetSimulator(ScenarioLibrary.BuiltIn, options);
        var whole = Serialize(once.AdvanceTo(s_epoch0 + span));

        var chunked = new FleetSimulator(ScenarioLibrary.BuiltIn, options);
        var parts = new List<FleetEvent>();
        var steps = new[] { 1, 7, 15, 15, 61, 600, 3, 3599 }; // seconds: grid-aligned and not
        var t = s_epoch0;
        for (var i = 0; t < s_epoch0 + span; i++)
        {
            t += TimeSpan.FromSeconds(steps[i % steps.Length]);
            if (t > s_epoch0 + span)
                t = s_epoch0 + span;
            parts.AddRange(chunked.AdvanceTo(t));
            parts.AddRange(chunked.AdvanceTo(t)); // asking again for the same instant adds nothing
        }

        Assert.True(whole.Length > 100_000);
        Assert.Equal(whole, Serialize(parts));

        var otherSeed = new FleetSimulator(ScenarioLibrary.BuiltIn, new FleetSimulatorOptions { Epoch = s_epoch0, Seed = 8, IgnoreAnchors = true });
        Assert.NotEqual(whole, Serialize(otherSeed.AdvanceTo(s_epoch0 + span)));
    }

    [Fact]
    public void Events_are_time_ordered_and_every_allocation_refers_to_a_started_node_and_workload()
    {
        var (_, events) = Run("all", TimeSpan.FromHours(4), new FleetSimulatorOptions { Epoch = s_epoch0, IgnoreAnchors = true });
        var nodes = new HashSet<string>();
        var workloads = new HashSet<string>();
        var previous = DateTimeOffset.MinValue;
        foreach (var e in events)
        {
            Assert.True(e.Time >= previous, $"{e} comes after {previous:O}");
            previous = e.Time;
            switch (e)
            {
                case NodeStarted s: Assert.True(nodes.Add(s.Node.Id)); break;
                case NodeStopped s: Assert.True(nodes.Remove(s.NodeId)); break;
                case WorkloadStarted s: Assert.True(workloads.Add(s.Workload.Id)); break;
                case WorkloadStopped s: Assert.True(workloads.Remove(s.WorkloadId)); break;
                case GpuAllocated a:
                    Assert.Contains(a.NodeId, nodes);
                    Assert.Contains(a.WorkloadId, workloads);
                    break;
                case NodeHeartbeat h: Assert.Contains(h.Node.Id, nodes); break;
                case GpuUtilization u: Assert.Contains(u.NodeId, nodes); Assert.InRange(u.Utilization, 0, 1); break;
                case WorkCounter c: Assert.Contains(c.WorkloadId, workloads); break;
            }
        }
    }

    [Fact]
    public void No_GPU_is_over_allocated_and_workload_ids_follow_the_orchestrator_convention()
    {
        var (_, events) = Run("all", TimeSpan.FromHours(4), new FleetSimulatorOptions { Epoch = s_epoch0, IgnoreAnchors = true });
        var held = new Dictionary<(string, int), Dictionary<string, double>>();
        foreach (var e in events)
        {
            if (e is GpuAllocated a)
            {
                var holders = held.TryGetValue((a.NodeId, a.GpuIndex), out var h) ? h : held[(a.NodeId, a.GpuIndex)] = [];
                holders[a.WorkloadId] = (double)a.Share.Numerator / a.Share.Denominator;
                Assert.True(holders.Values.Sum() <= 1.0 + 1e-9, $"{a.NodeId} GPU {a.GpuIndex} is over-allocated at {a.Time:O}");
            }
            else if (e is GpuReleased r)
            {
                Assert.True(held[(r.NodeId, r.GpuIndex)].Remove(r.WorkloadId));
            }
            else if (e is WorkloadStarted s)
            {
                var prefix = s.Workload.Orchestrator == "kubernetes" ? "k8s:" : s.Workload.Orchestrator + ":";
                Assert.StartsWith(prefix, s.Workload.Id, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Baseline_touches_every_provider_and_every_orchestrator_with_30_nodes()
    {
        var (_, events) = Run("baseline", TimeSpan.FromHours(1));
        var nodes = events.OfType<NodeStarted>().Select(e => e.Node).ToList();
        Assert.Equal(30, nodes.Count);
        Assert.Equal(["aws", "azure", "coreweave", "gcp", "lambda", "nebius", "runpod"], nodes.Select(n => n.Provider).Distinct().Order());
        var workloads = events.OfType<WorkloadStarted>().Select(e => e.Workload).ToList();
        Assert.Equal(["kubernetes", "metaflow", "skypilot", "slurm"], workloads.Select(w => w.Orchestrator).Distinct().Order());
        Assert.Contains(workloads, w => w.Orchestrator == "slurm" && w.Id.StartsWith("slurm:", StringComparison.Ordinal));
        Assert.Contains(events.OfType<WorkCounter>(), c => c.WorkloadId.StartsWith("k8s:", StringComparison.Ordinal) && c.Metric == "tokens" && c.Total > 0);
        // Attribution rules have something to derive: a team only in labels, and a workload with none at all.
        Assert.Contains(workloads, w => w.Team == "" && w.Labels!.ContainsKey("team"));
        Assert.Contains(workloads, w => w.Team == "" && !w.Labels!.ContainsKey("team"));
        Assert.All(events.OfType<GpuAllocated>().Where(a => a.WorkloadId.StartsWith("slurm:", StringComparison.Ordinal)),
            a => Assert.StartsWith("bl-aws-slurm-", a.NodeId, StringComparison.Ordinal));
    }

    [Fact]
    public void The_simulator_never_emits_a_cost_only_usage_and_prices()
    {
        var (_, events) = Run("all", TimeSpan.FromHours(2), new FleetSimulatorOptions { Epoch = s_epoch0, IgnoreAnchors = true });
        var kinds = events.Select(e => e.GetType().Name).ToHashSet();
        Assert.Subset(new HashSet<string>
        {
            nameof(NodeStarted), nameof(NodeStopped), nameof(NodeHeartbeat), nameof(CapacityChanged), nameof(PriceChanged),
            nameof(WorkloadStarted), nameof(WorkloadStopped), nameof(GpuAllocated), nameof(GpuReleased), nameof(GpuUtilization),
            nameof(WorkCounter), nameof(BytesTransferred), nameof(StorageChanged),
        }, kinds);
        Assert.Equal(13, kinds.Count);
    }

    [Fact]
    public void S1_runs_72_H100s_for_one_workload_whose_estimate_is_one_node()
    {
        var (sim, events) = Run("s1", TimeSpan.FromHours(4));
        var started = Assert.Single(events.OfType<WorkloadStarted>());
        Assert.Equal(55.04m, started.EstimatePerHour);
        var allocations = events.OfType<GpuAllocated>().Where(a => a.WorkloadId == started.Workload.Id).ToList();
        Assert.Equal(72, allocations.Count);
        Assert.Equal(9, allocations.Select(a => a.NodeId).Distinct().Count());
        Assert.All(events.OfType<NodeStarted>(), n => Assert.Equal("p5.48xlarge", n.Node.InstanceType));
        var stop = Assert.Single(events.OfType<WorkloadStopped>());
        Assert.Equal(StartOf(sim, "s1") + TimeSpan.FromHours(3), stop.Time);
    }

    [Fact]
    public void S2_utilization_drops_to_18_percent_on_all_8_GPUs_at_minute_14_and_steps_stop()
    {
        var (sim, events) = Run("s2", TimeSpan.FromHours(2));
        var stall = StartOf(sim, "s2") + TimeSpan.FromMinutes(14);
        var util = events.OfType<GpuUtilization>().Where(u => u.NodeId == "s2-p4d-0").ToList();
        Assert.All(util.Where(u => u.Time < stall), u => Assert.InRange(u.Utilization, 0.90, 0.96));
        var after = util.Where(u => u.Time > stall).ToList();
        Assert.Equal(8, after.Select(u => u.GpuIndex).Distinct().Count());
        Assert.All(after, u => Assert.InRange(u.Utilization, 0.16, 0.20));

        var steps = events.OfType<WorkCounter>().Where(c => c.Metric == "steps").ToList();
        var atStall = steps.Last(c => c.Time <= stall).Total;
        Assert.InRange(atStall, 14 * 30 * 0.95, 14 * 30 * 1.05);
        Assert.All(steps.Where(c => c.Time >= stall), c => Assert.Equal(atStall, c.Total));
        Assert.Contains(events.OfType<NodeHeartbeat>(), h => h.Time > stall + TimeSpan.FromMinutes(90));
    }

    [Fact]
    public void S3_falls_back_from_spot_to_on_demand_and_the_node_runs_6_hours_after()
    {
        var (_, events) = Run("s3", TimeSpan.FromHours(8));
        var started = Assert.Single(events.OfType<NodeStarted>());
        Assert.Equal(CapacityType.Spot, started.Node.Capacity);
        var price = Assert.Single(events.OfType<PriceChanged>());
        Assert.Equal((CapacityType.Spot, 15.73m), (price.Capacity, price.PricePerHour));
        var fallback = Assert.Single(events.OfType<CapacityChanged>());
        Assert.Equal(CapacityType.OnDemand, fallback.Capacity);
        Assert.True(price.Time < fallback.Time);
        var stopped = Assert.Single(events.OfType<NodeStopped>());
        Assert.Equal(TimeSpan.FromHours(6), stopped.Time - fallback.Time);
        Assert.All(events.OfType<NodeHeartbeat>().Where(h => h.Time > fallback.Time), h => Assert.Equal(CapacityType.OnDemand, h.Node.Capacity));
    }

    [Fact]
    public void S4_starts_Friday_17_00_and_leaves_17_H100s_idle_for_48_hours()
    {
        var (sim, events) = Run("s4", TimeSpan.FromDays(7));
        var start = StartOf(sim, "s4");
        Assert.Equal(new DateTimeOffset(2025, 1, 10, 17, 0, 0, TimeSpan.Zero), start);
        var jobEnd = Assert.Single(events.OfType<WorkloadStopped>()).Time;
        Assert.Equal(new DateTimeOffset(2025, 1, 10, 18, 30, 0, TimeSpan.Zero), jobEnd);
        var nodeEnds = events.OfType<NodeStopped>().Select(e => e.Time).Distinct().ToList();
        Assert.Equal([jobEnd + TimeSpan.FromHours(48)], nodeEnds);
        var idle = events.OfType<GpuUtilization>().Where(u => u.Time > jobEnd).ToList();
        Assert.Equal(17, idle.Select(u => (u.NodeId, u.GpuIndex)).Distinct().Count());
        Assert.All(idle, u => Assert.Equal(0, u.Utilization));
        Assert.All(events.OfType<NodeStarted>(), n => Assert.Equal("H100", n.Node.GpuModel));
    }

    [Fact]
    public void S5_sends_exactly_50_TB_cross_region_10_TB_per_training_run()
    {
        var (_, events) = Run("s5", TimeSpan.FromHours(6));
        var transfers = events.OfType<BytesTransferred>().ToList();
        Assert.All(transfers, t => Assert.Equal(TransferKind.CrossRegion, t.Kind));
        Assert.Equal(50_000_000_000_000L, transfers.Sum(t => t.Bytes));
        var perRun = transfers.GroupBy(t => t.WorkloadId).ToDictionary(g => g.Key, g => g.Sum(t => t.Bytes));
        Assert.Equal(5, perRun.Count);
        Assert.All(perRun.Values, b => Assert.Equal(10_000_000_000_000L, b));
    }

    [Fact]
    public void S6_one_users_job_runs_three_times_its_expected_runtime()
    {
        var (_, events) = Run("s6", TimeSpan.FromHours(13));
        var started = events.OfType<WorkloadStarted>().Single(s => s.Workload.Id == "slurm:48211");
        Assert.Equal("mchen", started.Workload.User);
        Assert.Equal("04:00:00", started.Workload.Labels!["slurm.time_limit"]);
        var stopped = events.OfType<WorkloadStopped>().Single(s => s.WorkloadId == "slurm:48211");
        Assert.Equal(TimeSpan.FromHours(12), stopped.Time - started.Time);
        var others = events.OfType<WorkloadStarted>().Where(s => s.Workload.User != "mchen").Select(s => s.Workload.User).Distinct();
        Assert.Equal(["apatel", "sroy"], others.Order());
    }

    [Fact]
    public void S7_the_run_after_the_config_change_takes_twice_the_GPUs_on_twice_the_nodes()
    {
        var (_, events) = Run("s7", TimeSpan.FromHours(3));
        var gpusPerRun = events.OfType<GpuAllocated>().GroupBy(a => a.WorkloadId).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(60, gpusPerRun.Count);
        var runs = events.OfType<WorkloadStarted>().ToList();
        Assert.Equal(20, runs.Select(r => r.Workload.Labels!["metaflow/flow_name"]).Distinct().Count());
        foreach (var run in runs)
        {
            var expected = run.Workload.Labels!["resources"] == "gpu=4" ? 4 : 2;
            Assert.Equal(expected, gpusPerRun[run.Workload.Id]);
        }
        var before = runs.Where(r => r.Workload.Labels!["resources"] == "gpu=2").Sum(r => gpusPerRun[r.Workload.Id]);
        var after = runs.Where(r => r.Workload.Labels!["resources"] == "gpu=4").Sum(r => gpusPerRun[r.Workload.Id]);
        Assert.Equal(2 * before / 2, after); // two waves before, one after: GPUs per wave double
        Assert.Equal(20, events.OfType<NodeStarted>().Count());
    }

    [Fact]
    public void S8_the_endpoint_stays_billed_for_two_weeks_with_zero_tokens()
    {
        var options = new FleetSimulatorOptions { Epoch = s_epoch0, HeartbeatInterval = TimeSpan.FromMinutes(5), UtilizationInterval = TimeSpan.FromMinutes(5), CounterInterval = TimeSpan.FromMinutes(5) };
        var (sim, events) = Run("s8", TimeSpan.FromDays(15), options);
        var start = StartOf(sim, "s8");
        var tokens = events.OfType<WorkCounter>().Where(c => c.Metric == "tokens").ToList();
        var idleFrom = tokens.Last(c => c.Time <= start + TimeSpan.FromHours(2)).Total;
        Assert.True(idleFrom > 0);
        Assert.All(tokens.Where(c => c.Time >= start + TimeSpan.FromHours(2)), c => Assert.Equal(idleFrom, c.Total));
        Assert.Equal(start + TimeSpan.FromDays(14) + TimeSpan.FromHours(2), Assert.Single(events.OfType<NodeStopped>()).Time);
        Assert.Contains(events.OfType<NodeHeartbeat>(), h => h.Time > start + TimeSpan.FromDays(14));
        Assert.Equal("", Assert.Single(events.OfType<WorkloadStarted>()).Workload.Team);
    }

    [Fact]
    public void S9_spot_price_rises_40_percent_overnight_from_the_base_price_when_one_is_known()
    {
        var (sim, events) = Run("s9", TimeSpan.FromDays(2));
        Assert.Equal(22, StartOf(sim, "s9").Hour);
        Assert.Equal([27.50m, 31.25m, 35.00m, 25.00m], events.OfType<PriceChanged>().Select(p => p.PricePerHour));

        var options = new FleetSimulatorOptions
        {
            Epoch = s_epoch0,
            BasePrice = key => key is { Provider: "aws", InstanceType: "p5.48xlarge", Capacity: CapacityType.Spot } ? 20m : null,
        };
        var (_, priced) = Run("s9", TimeSpan.FromDays(2), options);
        var changes = priced.OfType<PriceChanged>().ToList();
        Assert.Equal([22.00m, 25.00m, 28.00m, 20.00m], changes.Select(p => p.PricePerHour));
        Assert.All(changes, p => Assert.Equal(CapacityType.Spot, p.Capacity));
        // Overnight: the +40% step lands at 01:00 UTC while the job is running.
        Assert.Equal(1, changes[2].Time.Hour);
    }

    [Fact]
    public void S10_workloads_carry_a_launch_estimate_far_below_an_8_GPU_on_demand_price()
    {
        var (_, events) = Run("s10", TimeSpan.FromHours(1));
        var starts = events.OfType<WorkloadStarted>().ToList();
        Assert.Equal(2, starts.Count);
        Assert.All(starts, s => Assert.NotNull(s.EstimatePerHour));
        Assert.All(events.OfType<NodeStarted>(), n => Assert.Equal((8, "H100", CapacityType.OnDemand), (n.Node.GpuCount, n.Node.GpuModel, n.Node.Capacity)));
        Assert.Contains(events.OfType<NodeStarted>(), n => n.Node.Provider == "azure");
    }

    [Fact]
    public void S11_a_32_trial_sweep_starts_Friday_18_00_and_runs_14_hours()
    {
        var (sim, events) = Run("s11", TimeSpan.FromDays(7));
        var friday18 = new DateTimeOffset(2025, 1, 10, 18, 0, 0, TimeSpan.Zero);
        Assert.Equal(friday18, StartOf(sim, "s11"));
        var starts = events.OfType<WorkloadStarted>().ToList();
        Assert.Equal(32, starts.Count);
        Assert.All(starts, s => Assert.Equal(DayOfWeek.Friday, s.Time.DayOfWeek));
        Assert.All(events.OfType<WorkloadStopped>(), s => Assert.Equal(friday18 + TimeSpan.FromHours(14) + TimeSpan.FromMinutes(1), s.Time));
        Assert.Equal(32, events.OfType<GpuAllocated>().Select(a => (a.NodeId, a.GpuIndex)).Distinct().Count());
    }

    [Fact]
    public void S12_a_model_update_cuts_throughput_30_percent_on_the_same_GPU()
    {
        var (sim, events) = Run("s12", TimeSpan.FromHours(5));
        var rollout = StartOf(sim, "s12") + TimeSpan.FromHours(2);
        var requests = events.OfType<WorkCounter>().Where(c => c.Metric == "requests").GroupBy(c => c.WorkloadId)
            .ToDictionary(g => g.Key, g => g.OrderBy(c => c.Time).ToList());
        var old = requests["k8s:ranking/vllm-ranker-7d9f4"];
        var updated = requests["k8s:ranking/vllm-ranker-5c2a1"];
        var oldRate = old[^1].Total / (old[^1].Time - old[0].Time + TimeSpan.FromSeconds(15)).TotalSeconds;
        var newRate = updated[^1].Total / (updated[^1].Time - rollout).TotalSeconds;
        Assert.InRange(newRate / oldRate, 0.69, 0.71);
        var models = events.OfType<WorkloadStarted>().Select(s => s.Workload.Model).ToList();
        Assert.Equal(["ranker-1.4", "ranker-1.5"], models);
        Assert.Single(events.OfType<GpuAllocated>().Select(a => (a.NodeId, a.GpuIndex)).Distinct());
    }

    [Fact]
    public void S13_four_teams_share_one_p4d_and_2_and_6_sevenths_GPUs_stay_unallocated()
    {
        var (_, events) = Run("s13", TimeSpan.FromHours(1));
        var node = Assert.Single(events.OfType<NodeStarted>()).Node;
        Assert.Equal(("p4d.24xlarge", 8), (node.InstanceType, node.GpuCount));
        var teams = events.OfType<WorkloadStarted>()
            .Select(s => s.Workload.Team.Length > 0 ? s.Workload.Team : s.Workload.Labels!["team"]).Distinct().Order();
        Assert.Equal(["ads", "nlp", "recsys", "search"], teams);
        var allocations = events.OfType<GpuAllocated>().ToList();
        Assert.Contains(allocations, a => a.Share.Kind == GpuShareKind.Mig);
        Assert.Contains(allocations, a => a.Share.Kind == GpuShareKind.Shared);
        var allocated = allocations.Sum(a => (decimal)a.Share.Numerator / a.Share.Denominator);
        Assert.Equal(20m / 7m, decimal.Round(8 - allocated, 20), 10);
        Assert.Contains(events.OfType<GpuUtilization>(), u => u.GpuIndex == 7 && u.Utilization == 0);
    }

    [Fact]
    public void A_two_hour_all_run_stays_under_400_thousand_events_and_generates_fast()
    {
        var stopwatch = Stopwatch.StartNew();
        var (_, events) = Run("all", TimeSpan.FromHours(2), new FleetSimulatorOptions { Epoch = s_epoch0, IgnoreAnchors = true });
        stopwatch.Stop();
        Assert.InRange(events.Count, 100_000, 400_000);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(20), $"took {stopwatch.Elapsed}");
    }

    [Fact]
    public void The_virtual_clock_runs_N_times_faster_than_the_wall_clock()
    {
        var wall = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var time = new SimulatorTimeProvider(s_epoch0, speed: 60, wall);
        Assert.Equal(s_epoch0, time.GetUtcNow());
        wall.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(s_epoch0 + TimeSpan.FromMinutes(10), time.GetUtcNow());

        var fired = 0;
        using var timer = time.CreateTimer(_ => fired++, null, TimeSpan.FromMinutes(1), Timeout.InfiniteTimeSpan);
        wall.Advance(TimeSpan.FromSeconds(0.9));
        Assert.Equal(0, fired);
        wall.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, fired);

        // Rescheduling is in virtual time as well: 2 virtual minutes are 2 wall seconds at 60×.
        timer.Change(TimeSpan.FromMinutes(2), Timeout.InfiniteTimeSpan);
        wall.Advance(TimeSpan.FromSeconds(1.9));
        Assert.Equal(1, fired);
        wall.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(2, fired);
    }

    private static string Serialize(IEnumerable<FleetEvent> events)
    {
        var text = new StringBuilder();
        foreach (var e in events)
        {
            text.Append(e.ToString());
            // Record printing shows a dictionary's type, not its content; labels must be identical too.
            var labels = e switch
            {
                NodeStarted s => s.Node.Labels,
                WorkloadStarted s => s.Workload.Labels,
                _ => null,
            };
            if (labels is not null)
            {
                foreach (var (key, value) in labels)
                    text.Append(CultureInfo.InvariantCulture, $" {key}={value}");
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
