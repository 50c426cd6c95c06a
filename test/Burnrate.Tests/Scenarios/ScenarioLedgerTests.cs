using System.Globalization;
using Burnrate.Configuration;
using Burnrate.Demo;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Simulation;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Scenarios;

/// <summary>
/// The second half of "each scenario is a simulator scenario and a test": every built-in scenario S1–S13 played
/// through the real rating pipeline (built-in catalog, default attribution rules) into an in-memory DuckDB ledger,
/// and the ledger asked what the scenario is about. Expected figures are worked out by hand from the scenario YAML
/// (src/Burnrate.Core/Simulation/Scenarios) and the built-in catalog (src/Burnrate.Core/Pricing/Catalog); the
/// arithmetic is written above each assertion.
/// </summary>
/// <remarks>
/// Conventions used in the arithmetic (docs/design.md, docs/pricing.md):
/// <list type="bullet">
/// <item>Amounts are nano-dollars (n$). A node's rate splits into GpuCount × GPU part and a compute remainder; the
/// GPU part is (price − compute) / GPUs with compute = min(50% × price, vCPUs × 0.031611 + GiB × 0.004237), or the
/// accelerator's own price for GCP a2.</item>
/// <item>Each ledger line (resource, GPU, workload, component) books floor(rate × seconds / 3600) n$ per minute and
/// carries the remainder to its next minute, so a line's minutes add up to floor(rate × duration / 3600): over a
/// window that starts where the line's carry is zero (e.g. whole hours from the line's start) the sum is exact.</item>
/// <item>Every scenario is played alone, so it starts at the epoch (IgnoreAnchors; slot 0 of the stagger).</item>
/// </list>
/// </remarks>
public sealed class ScenarioLedgerTests
{
    // A Monday 08:00 UTC; anchors (friday 17:00, daily 22:00) are ignored, so every scenario starts here.
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static long Dollars(decimal dollars) => (long)(dollars * Money.NanosPerDollar);

    /// <summary>
    /// Plays <paramref name="scenario"/> for <paramref name="span"/> from <see cref="s_t0"/> through the real pipeline.
    /// Samples (heartbeats, utilization, counters) every <paramref name="sampleEvery"/> (1 min by default): nodes are
    /// billed from their lifecycle events, so sample spacing changes no cost, only how fast a long scenario plays.
    /// </summary>
    private static async Task<DuckDbCostStore> PlayAsync(string scenario, TimeSpan span, TimeSpan? sampleEvery = null, TimeSpan? tick = null)
    {
        var store = await DuckDbCostStore.OpenAsync(":memory:", ct: Ct);
        var config = new BurnrateConfig();
        var (book, rateCard) = PricingSetup.Load(config);
        var options = new RatingOptions();
        var sample = sampleEvery ?? TimeSpan.FromMinutes(1);
        var simulator = new FleetSimulator(ScenarioLibrary.Resolve(scenario), new FleetSimulatorOptions
        {
            Epoch = s_t0,
            IgnoreAnchors = true,
            BasePrice = FleetReplay.BasePrices(book, s_t0),
            HeartbeatInterval = sample,
            UtilizationInterval = sample,
            CounterInterval = sample,
        });
        var clock = new FakeTimeProvider(s_t0);
        using var pipeline = new CostPipeline(new RatingEngine(book, rateCard, config.ToAttributionRules(), options), store, options);
        var replay = new FleetReplay(simulator, pipeline, clock);
        var end = s_t0 + span;
        var step = tick ?? TimeSpan.FromMinutes(10);
        while (clock.GetUtcNow() < end)
        {
            clock.Advance(step);
            await replay.TickAsync(end, Ct);
        }
        await replay.FinishAsync(end, options.Grace, Ct);
        Assert.Empty(pipeline.Unpriced); // every scenario node has a built-in price
        return store;
    }

    private static Dictionary<CostDimension, IReadOnlyList<string>> Where(params (CostDimension Dimension, string[] Values)[] filters) =>
        filters.ToDictionary(f => f.Dimension, f => (IReadOnlyList<string>)f.Values);

    /// <summary>The ledger over [s_t0 + from, s_t0 + to) grouped by <paramref name="by"/>, keyed by the group's keys joined with '/'.</summary>
    private static async Task<Dictionary<string, CostReportRow>> ReportAsync(ICostStore store, TimeSpan from, TimeSpan to,
        CostDimension[] by, Dictionary<CostDimension, IReadOnlyList<string>>? filters = null)
    {
        var rows = await store.QueryCostsAsync(new CostQuery
        {
            From = s_t0 + from,
            To = s_t0 + to,
            By = by,
            Filters = filters ?? new Dictionary<CostDimension, IReadOnlyList<string>>(),
        }, Ct);
        return rows.ToDictionary(r => string.Join("/", r.Keys), StringComparer.Ordinal);
    }

    /// <summary>Total cost (n$) over [s_t0 + from, s_t0 + to) with the filters.</summary>
    private static async Task<long> CostAsync(ICostStore store, TimeSpan from, TimeSpan to, Dictionary<CostDimension, IReadOnlyList<string>>? filters = null)
    {
        var rows = await ReportAsync(store, from, to, [], filters);
        return rows.Values.Sum(r => r.Cost.Nanos);
    }

    private static string Show(Dictionary<string, CostReportRow> rows) =>
        string.Join("; ", rows.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => $"{r.Key}={r.Value.Cost.Nanos} idle={r.Value.IdleCost.Nanos} gpus={r.Value.GpuSeconds}"));

    /// <summary>The work counter increases the pipeline stored for a workload's metric over [s_t0 + from, s_t0 + to) (not exposed by ICostStore).</summary>
    private static async Task<double> WorkAsync(DuckDbCostStore store, string workloadId, string metric, TimeSpan from, TimeSpan to)
    {
        static string Ts(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        var value = await store.ScalarAsync(
            $"SELECT COALESCE(SUM(increase), 0) FROM work_minutes WHERE workload_id = '{workloadId}' AND metric = '{metric}' " +
            $"AND minute >= TIMESTAMP '{Ts(s_t0 + from)}' AND minute < TIMESTAMP '{Ts(s_t0 + to)}'", Ct);
        return Convert.ToDouble(value, CultureInfo.InvariantCulture);
    }

    private static TimeSpan M(double minutes) => TimeSpan.FromMinutes(minutes);

    private static TimeSpan H(double hours) => TimeSpan.FromHours(hours);

    [Fact]
    public async Task S1_the_runaway_job_costs_nine_p5_prices_an_hour_from_its_first_minute_on_jlee_and_team_llm()
    {
        const string Job = "skypilot:managed-4711";
        await using var store = await PlayAsync("s1", M(61));

        // p5.48xlarge us-east-1 on demand $55.04/h: compute = min(27.52, 192 × 0.031611 + 2048 × 0.004237 = 14.746688)
        // = $14.746688/h; each H100 (55.04 − 14.746688) / 8 = $5.036664/h. The job (from 1m) holds all 72 GPUs of the
        // nine nodes, so it pays whole nodes. Its first minute [1m, 2m): 72 GPU lines × 5,036,664,000 / 60 = 83,944,400
        // each (exact) + 9 compute lines × floor(14,746,688,000 / 60 = 245,778,133.33) = 245,778,133 each
        // = 6,043,996,800 + 2,212,003,197 = 8,255,999,997 n$ ($8.256 a minute, less the 3 n$ the compute lines carry).
        // The spend rate is visible within the first minute, not the next day.
        Assert.Equal(8_255_999_997L, await CostAsync(store, M(1), M(2), Where((CostDimension.Workload, [Job]))));

        // Its first hour [1m, 61m): 9 × $55.04 = $495.36 exactly (each line's carry is zero after 60 minutes);
        // 72 GPUs × 3,600 s = 259,200 GPU-seconds, none idle.
        var byPerson = await ReportAsync(store, M(1), M(61), [CostDimension.Workload, CostDimension.User, CostDimension.Team]);
        Assert.True(byPerson.TryGetValue($"{Job}/jlee/llm", out var job), Show(byPerson));
        Assert.Equal(Dollars(495.36m), job.Cost.Nanos);
        Assert.Equal(0L, job.IdleCost.Nanos);
        Assert.Equal(259_200m, job.GpuSeconds);
        Assert.Single(byPerson); // nothing else burns in that hour: the whole $495.36 is jlee's

        // The launch estimate was one node ($55.04/h): the actual $495.36/h is exactly 9 × the estimate.
        var record = Assert.Single(await store.GetWorkloadsAsync([Job], Ct));
        Assert.Equal(55.04m, record.EstimatePerHour);
        Assert.Equal(Dollars(9 * record.EstimatePerHour!.Value), job.Cost.Nanos);
    }

    [Fact]
    public async Task S2_the_stalled_p4d_costs_the_same_per_minute_after_minute_14_while_its_steps_stop()
    {
        const string Job = "skypilot:sky-bert-pretrain";
        // Counters on the simulator's default 15 s grid, so the stall shows within the minute it happens.
        await using var store = await PlayAsync("s2", M(30), sampleEvery: TimeSpan.FromSeconds(15));
        var instance = Where((CostDimension.Workload, [Job]), (CostDimension.Component, ["gpu", "compute"]));

        // p4d.24xlarge us-east-1 on demand $21.957642/h: compute = min(10.978821, 96 × 0.031611 + 1152 × 0.004237
        // = 7.91568) = $7.91568/h (131,928,000 n$ a minute, exact); each A100 (21.957642 − 7.91568) / 8 = $1.75524525/h
        // (29,254,087.5 n$ a minute: the GPU lines alternate .5 carries, so any even number of minutes is exact).
        // The node is $21.957642/h = 365,960,700 n$ a minute. 14 minutes before the stall [0, 14m) and 14 minutes of
        // stall [14m, 28m) each cost 14 × 365,960,700 = 5,123,449,800 n$: the cost keeps flowing unchanged.
        Assert.Equal(5_123_449_800L, await CostAsync(store, M(0), M(14), instance));
        Assert.Equal(5_123_449_800L, await CostAsync(store, M(14), M(28), instance));
        // And it is billed to the workload, not idle: the 8 GPUs stay allocated at 18% utilization.
        var stalled = await ReportAsync(store, M(14), M(28), [CostDimension.Idle], instance);
        Assert.Equal(0L, stalled.Values.Sum(r => r.IdleCost.Nanos));

        // Steps: 30 a minute before the stall. The engine takes a counter's first sample (0:15) as its baseline and
        // books each later sample's increase at the minute the sample arrives, so [0, 14m) holds the samples
        // 0:30 … 13:45 = 13.5 minutes × 30 = 405 steps, ± the simulator's 5% counter jitter; minute 14 holds the
        // 13:45–14:00 sample (≈7.5); from minute 15 on the increase is exactly zero.
        var before = await WorkAsync(store, Job, "steps", M(0), M(14));
        Assert.InRange(before, 405 * 0.95, 405 * 1.05);
        Assert.Equal(0d, await WorkAsync(store, Job, "steps", M(15), M(30)));
    }

    [Fact]
    public async Task S3_the_node_is_spot_for_30_minutes_then_on_demand_for_6_hours_at_each_rate()
    {
        const string Job = "skypilot:managed-3310";
        await using var store = await PlayAsync("s3", H(6.5), tick: M(30));
        var job = Where((CostDimension.Workload, [Job]));

        // Spot p4d.24xlarge us-west-2, region-wide $13.2415/h: compute = min(50% = 6.62075, 7.91568) = $6.62075/h,
        // each A100 6.62075 / 8 = $0.82759375/h. [0, 25m): 8 GPU lines × floor(827,593,750 × 1500 / 3600
        // = 344,830,729.17) + compute floor(6,620,750,000 × 1500 / 3600 = 2,758,645,833.33)
        // = 2,758,645,832 + 2,758,645,833 = 5,517,291,665 n$ (exact: $5.517291667).
        Assert.Equal(5_517_291_665L, await CostAsync(store, M(0), M(25), job));

        // At 25m the zone's spot price becomes 1.6 × 13.2415 = $21.1864/h (GPU part scaled alike: $1.32415/GPU,
        // compute $10.5932). Cumulative at 30m per GPU line floor((827,593,750 × 1500 + 1,324,150,000 × 300) / 3600
        // = 455,176,562.5) = 455,176,562, compute (6,620,750,000 × 1500 + 10,593,200,000 × 300) / 3600 = 3,641,412,500;
        // so [25m, 30m) = 8 × (455,176,562 − 344,830,729) + (3,641,412,500 − 2,758,645,833)
        // = 882,766,664 + 882,766,667 = 1,765,533,331 n$ (exact: 5/60 × 21.1864 = $1.765533333).
        Assert.Equal(1_765_533_331L, await CostAsync(store, M(25), M(30), job));

        // At 30m the capacity falls back to on demand, us-west-2 $21.95764/h (compute $7.91568, GPU $1.755245 each)
        // for 6 h until the node stops at 6h30m: 6 × 21.95764 = $131.74584 exactly (each GPU line's half-n$ carry from
        // its spot minutes stays in the carry: floor(455,176,562.5 + 10,531,470,000) − 455,176,562 = 10,531,470,000).
        // The capacity split is exact: 30 spot minutes = 8 × 1,800 = 14,400 GPU-seconds, 360 on-demand minutes =
        // 8 × 21,600 = 172,800 GPU-seconds; spot total 5,517,291,665 + 1,765,533,331 = 7,282,824,996 n$.
        var byCapacity = await ReportAsync(store, M(0), H(6.5), [CostDimension.Capacity], job);
        Assert.Equal(["on_demand", "spot"], byCapacity.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(14_400m, byCapacity["spot"].GpuSeconds);
        Assert.Equal(7_282_824_996L, byCapacity["spot"].Cost.Nanos);
        Assert.Equal(172_800m, byCapacity["on_demand"].GpuSeconds);
        Assert.Equal(Dollars(131.74584m), byCapacity["on_demand"].Cost.Nanos);
        // Nothing after the node stops at 6h30m (the scenario's end) and nothing on spot after 30m.
        Assert.Empty(await ReportAsync(store, M(30), H(6.5), [CostDimension.Capacity], Where((CostDimension.Capacity, ["spot"]))));
    }

    [Fact]
    public async Task S4_the_weekend_idle_h100s_are_booked_as_idle_on_team_rl_at_50_15_an_hour_for_48_hours()
    {
        // The whole 49h30m: samples every 30 min and hour ticks keep it fast (nodes are billed from lifecycle events).
        await using var store = await PlayAsync("s4", H(49.5), sampleEvery: M(30), tick: H(2));

        // Nebius gpu-h100-sxm_8gpu $23.60/h (compute min(11.80, 128 × 0.031611 + 1600 × 0.004237 = 10.825408), each
        // H100 $1.596824) × 2 + the 1×H100 dev box $2.95/h = $50.15/h for 17 H100s. The job holds the 16 cluster GPUs
        // [0, 1h30m) = 1.5 × 2 × 23.60 = $70.80 on the workload, while the dev box idles 1.5 × 2.95 = $4.425.
        var job = await ReportAsync(store, M(0), H(1.5), [CostDimension.Workload, CostDimension.Idle]);
        Assert.Equal(Dollars(70.80m), job["skypilot:sky-rl-exp/false"].Cost.Nanos);
        Assert.Equal(Dollars(4.425m), job["/true"].Cost.Nanos);

        // From 1h30m (Friday 18:30 in the anchored scenario) to the end, all 17 GPUs sit idle: 48 h × $50.15/h
        // = $2,407.20, every n$ booked as idle on the node owner: team rl from the node's `team` label; no user, since
        // the default attribution rules read a `user` label and the nodes carry only `skypilot-user`. Each line's
        // carry being zero at whole hours and at 1h30m (rates with an even n$/h); 17 × 48 × 3600 = 2,937,600 GPU-seconds.
        var weekend = await ReportAsync(store, H(1.5), H(49.5), [CostDimension.Idle, CostDimension.Team, CostDimension.User]);
        var idle = Assert.Single(weekend).Value;
        Assert.Equal(["true", "rl", ""], idle.Keys);
        Assert.Equal(Dollars(2_407.20m), idle.Cost.Nanos);
        Assert.Equal(idle.Cost, idle.IdleCost);
        Assert.Equal(2_937_600m, idle.GpuSeconds);

        // Friday night, any whole hour of the weekend: $50.15 of idle.
        Assert.Equal(Dollars(50.15m), await CostAsync(store, H(6), H(7), Where((CostDimension.Idle, ["true"]))));
    }

    [Fact]
    public async Task S5_each_run_sends_10_TB_cross_region_for_200_dollars_and_the_five_runs_1000()
    {
        await using var store = await PlayAsync("s5", H(5), tick: M(30));
        var network = await ReportAsync(store, M(0), H(5), [CostDimension.Workload],
            Where((CostDimension.Component, ["network"])));

        // 10,000 GB = 1e13 bytes sent over 45 minutes in 45 one-minute chunks: 44 × 222,222,222,222 bytes + a last
        // chunk of 222,222,222,232. At $0.02/GB (aws cross-region, 0.02 n$ a byte) each minute is rounded to the n$:
        // 44 × round(4,444,444,444.44) + round(4,444,444,444.64) = 44 × 4,444,444,444 + 4,444,444,445
        // = 199,999,999,981 n$: $200 a run, 19 n$ of per-minute rounding short.
        Assert.Equal(5, network.Count);
        for (var i = 0; i < 5; i++)
            Assert.Equal(199_999_999_981L, network[$"skypilot:managed-52{i}"].Cost.Nanos);
        // 50 TB in five hours: 5 × 199,999,999,981 = 999,999,999,905 n$ ≈ $1,000.
        Assert.Equal(999_999_999_905L, network.Values.Sum(r => r.Cost.Nanos));

        // The instance part of a run (50 minutes of a whole p4d.24xlarge us-west-2 at $21.95764/h): 8 GPU lines
        // floor(1,755,245,000 × 3000 / 3600 = 1,462,704,166.67) + compute 7,915,680,000 × 5/6 = 6,596,400,000
        // = 18,298,033,328 n$ ($18.30): egress is more than ten times the GPUs of the run.
        var instance = await ReportAsync(store, M(0), H(5), [CostDimension.Workload],
            Where((CostDimension.Component, ["gpu", "compute"]), (CostDimension.Idle, ["false"])));
        for (var i = 0; i < 5; i++)
            Assert.Equal(18_298_033_328L, instance[$"skypilot:managed-52{i}"].Cost.Nanos);
    }

    [Fact]
    public async Task S6_per_user_attribution_shows_mchen_paying_three_times_the_cost_of_the_four_hour_time_limit()
    {
        await using var store = await PlayAsync("s6", H(12.5), sampleEvery: M(5), tick: H(1));

        // Three p4d.24xlarge us-east-1 at $21.957642/h (GPU $1.75524525 each, compute $7.91568).
        // mchen (slurm:48211) holds 16 GPUs = two whole nodes from 5m to 12h5m: 12 × 2 × 21.957642 = $526.983408.
        // apatel: 4 runs of 4 GPUs (half a node: 4 GPU lines + half the compute, $10.978821/h) for 2h40m each:
        //   per run 4 × 1,755,245,250 × 160/60 + 3,957,840,000 × 160/60 = 18,722,616,000 + 10,554,240,000
        //   = 29,276,856,000; × 4 = $117.107424.
        // sroy: 6 runs of 4 GPUs for 1h40m: 4 × 2,925,408,750 + 6,596,400,000 = 18,298,035,000; × 6 = $109.78821.
        // (Every run's minute count is even, so its GPU lines' half-n$ carries cancel: exact.)
        var byUser = await ReportAsync(store, M(0), H(12.5), [CostDimension.User, CostDimension.Idle]);
        Assert.Equal(Dollars(526.983408m), byUser["mchen/false"].Cost.Nanos);
        Assert.Equal(Dollars(117.107424m), byUser["apatel/false"].Cost.Nanos);
        Assert.Equal(Dollars(109.78821m), byUser["sroy/false"].Cost.Nanos);

        // The whole cluster for 12h30m: 3 × 12.5 × 21.957642 = $823.411575; what no job held is idle (on team research).
        // The workload rows are exact; the idle lines are cut into fragments, each fragment-chain floors its own
        // carry, so the total may be short by less than one n$ per idle line (27: 3 nodes × (8 GPUs + compute)).
        var total = byUser.Values.Sum(r => r.Cost.Nanos);
        Assert.InRange(total, Dollars(823.411575m) - 27, Dollars(823.411575m));

        // 48211 ran 12 h against its 4 h time limit: 3× longer, and its $526.983408 is 3 × the 4 h of two nodes
        // (4 × 43.915284 = 175.661136).
        var record = Assert.Single(await store.GetWorkloadsAsync(["slurm:48211"], Ct));
        Assert.Equal("4h", record.Workload.Labels!["expected_runtime"]);
        Assert.Equal(H(12), record.Ended - record.Started);
        Assert.Equal(3 * Dollars(175.661136m), byUser["mchen/false"].Cost.Nanos);
    }

    [Fact]
    public async Task S7_each_flow_run_costs_exactly_twice_as_much_after_the_gpu_2_to_4_change()
    {
        await using var store = await PlayAsync("s7", H(3), sampleEvery: M(5), tick: M(30));
        var byWorkload = await ReportAsync(store, M(0), H(3), [CostDimension.Workload], Where((CostDimension.Idle, ["false"])));

        // GCP a2-highgpu-8g us-central1, GPUs priced apart: A100 $2.9339075/h each, machine $5.91582/h
        // (node $29.38708/h). A run with 2 GPUs for 40 minutes: 2 GPU lines floor(2,933,907,500 × 2400 / 3600
        // = 1,955,938,333.33) + compute 2/8 × 5,915,820,000 × 40/60 = 985,970,000 → 2 × 1,955,938,333 + 985,970,000
        // = 4,897,846,666 n$. With 4 GPUs: 4 × 1,955,938,333 + 1,971,940,000 = 9,795,693,332 n$ = exactly 2×.
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(4_897_846_666L, byWorkload[$"metaflow:Variant{i}Flow/{i + 1000}/train"].Cost.Nanos);
            Assert.Equal(4_897_846_666L, byWorkload[$"metaflow:Variant{i}Flow/{i + 2000}/train"].Cost.Nanos);
            Assert.Equal(9_795_693_332L, byWorkload[$"metaflow:Variant{i}Flow/{i + 3000}/train"].Cost.Nanos);
        }

        // The pool: 5 nodes for 50 minutes in the 1:00–2:00 hour, 10 in the 2:00–3:00 hour: 5 × 29.38708 × 50/60
        // = $122.4461667 and $244.8923333. The runs are exact; each node's idle minutes (5 before, 5 after the
        // runs) floor their own carries, so each hour is within 9 n$ per node of the exact figure.
        var second = await CostAsync(store, H(1), H(2));
        var third = await CostAsync(store, H(2), H(3));
        Assert.InRange(second, 122_446_166_666L - 5 * 9, 122_446_166_667L);
        Assert.InRange(third, 244_892_333_333L - 10 * 9, 244_892_333_334L);
    }

    [Fact]
    public async Task S8_the_warm_endpoint_keeps_costing_its_full_price_on_team_sales_eng_for_two_weeks_with_no_tokens()
    {
        const string Endpoint = "k8s:demo/vllm-mixtral-demo";
        // The whole 14 days 2 hours: hourly samples and daily ticks (nodes are billed from lifecycle events).
        await using var store = await PlayAsync("s8", TimeSpan.FromDays(14) + H(2), sampleEvery: H(1), tick: TimeSpan.FromDays(1));

        // g5.12xlarge us-east-1 $5.672/h: compute min(2.836, 48 × 0.031611 + 192 × 0.004237 = 2.330832) = $2.330832,
        // each A10G $0.835292. The pod keeps all 4 GPUs allocated at 2% utilization, so the full price stays on the
        // workload (team sales-eng, known only from its namespace label), none of it idle.
        // Two weeks [2h, 14d2h): 336 h × $5.672 = $1,905.792 exactly (every line's carry is zero at whole hours).
        var twoWeeks = await ReportAsync(store, H(2), TimeSpan.FromDays(14) + H(2), [CostDimension.Workload, CostDimension.Team, CostDimension.Idle]);
        var row = Assert.Single(twoWeeks).Value;
        Assert.Equal([Endpoint, "sales-eng", "false"], row.Keys);
        Assert.Equal(Dollars(1_905.792m), row.Cost.Nanos);
        // Any hour of it: $5.672.
        Assert.Equal(Dollars(5.672m), await CostAsync(store, TimeSpan.FromDays(9), TimeSpan.FromDays(9) + H(1)));

        // Tokens: 900/s while it serves (2 h). The simulator's zero sample at the start is the engine's baseline, so
        // both serving hours reach the ledger (samples at 1h and 2h): 2 × 900 × 3600 = 6.48M tokens ± 5% jitter;
        // from then on the counter is flat for two weeks.
        Assert.InRange(await WorkAsync(store, Endpoint, "tokens", M(0), H(2) + M(1)), 6_480_000 * 0.95, 6_480_000 * 1.05);
        Assert.Equal(0d, await WorkAsync(store, Endpoint, "tokens", H(2) + M(1), TimeSpan.FromDays(15)));
    }

    [Fact]
    public async Task S9_the_spot_cost_per_hour_rises_40_percent_after_the_overnight_price_steps()
    {
        const string Job = "skypilot:managed-7702";
        await using var store = await PlayAsync("s9", H(4), tick: M(30));
        var job = Where((CostDimension.Workload, [Job]), (CostDimension.Capacity, ["spot"]));

        // Two spot p5.48xlarge us-east-1: region-wide spot $18.6838/h (compute min(50% = 9.3419, 14.746688) = 9.3419,
        // each H100 $1.1677375, i.e. price / 16). The simulator emits base × multiplier to the nano-dollar:
        // 18.6838 × 1.10 = $20.55218 at 1h, × 1.25 = $23.35475 at 2h, × 1.40 = $26.15732 at 3h; the engine scales the
        // GPU part alike (still exactly price / 16). Each hour is exact (a line's carry is zero at whole hours), two
        // nodes: hour 0 $37.3676; hour 1 $41.10436; hour 2 $46.7095; hour 3 $52.31464.
        var hour0 = await CostAsync(store, H(0), H(1), job);
        Assert.Equal(Dollars(37.3676m), hour0);
        Assert.Equal(Dollars(41.10436m), await CostAsync(store, H(1), H(2), job));
        Assert.Equal(Dollars(46.7095m), await CostAsync(store, H(2), H(3), job));
        var hour3 = await CostAsync(store, H(3), H(4), job);
        Assert.Equal(Dollars(52.31464m), hour3);
        // +40% exactly.
        Assert.Equal(hour0 * 14 / 10, hour3);

        // Per minute: minute 0 = 2 × (8 × floor(1,167,737,500 / 60) + floor(9,341,900,000 / 60))
        // = 2 × (8 × 19,462,291 + 155,698,333) = 622,793,322 n$; minute 180 (carry zero again) = 2 × (8 ×
        // floor(1,634,832,500 / 60) + floor(13,078,660,000 / 60)) = 2 × (8 × 27,247,208 + 217,977,666) = 871,910,660 n$.
        Assert.Equal(622_793_322L, await CostAsync(store, M(0), M(1), job));
        Assert.Equal(871_910_660L, await CostAsync(store, M(180), M(181), job));
    }

    [Fact]
    public async Task S10_the_actual_dollars_per_gpu_hour_are_above_the_launch_estimates()
    {
        await using var store = await PlayAsync("s10", H(1));
        var byWorkload = await ReportAsync(store, H(0), H(1), [CostDimension.Workload]);
        var estimates = (await store.GetWorkloadsAsync(["skypilot:sky-eval-suite", "skypilot:sky-rp-sft"], Ct))
            .ToDictionary(w => w.Workload.Id, w => w.EstimatePerHour!.Value, StringComparer.Ordinal);

        // Azure Standard_ND96isr_H100_v5 eastus on demand $98.32/h, all 8 GPUs held: the first hour costs $98.32 for
        // 8 × 3600 = 28,800 GPU-seconds = $12.29/GPU-h, against the estimate $55/h = $6.875/GPU-h (+78.8%).
        var eval = byWorkload["skypilot:sky-eval-suite"];
        Assert.Equal(Dollars(98.32m), eval.Cost.Nanos);
        Assert.Equal(28_800m, eval.GpuSeconds);
        Assert.Equal(12.29m, eval.Cost.Dollars / (eval.GpuSeconds / 3600));
        Assert.Equal(55.00m, estimates["skypilot:sky-eval-suite"]);
        Assert.True(eval.Cost.Dollars / (eval.GpuSeconds / 3600) > estimates["skypilot:sky-eval-suite"] / 8);

        // RunPod 8x_H100-80GB_SECURE US $21.52/h: $2.69/GPU-h against the estimate $12/h = $1.50/GPU-h (+79.3%).
        var sft = byWorkload["skypilot:sky-rp-sft"];
        Assert.Equal(Dollars(21.52m), sft.Cost.Nanos);
        Assert.Equal(28_800m, sft.GpuSeconds);
        Assert.Equal(2.69m, sft.Cost.Dollars / (sft.GpuSeconds / 3600));
        Assert.Equal(12.00m, estimates["skypilot:sky-rp-sft"]);
        Assert.True(sft.Cost.Dollars / (sft.GpuSeconds / 3600) > estimates["skypilot:sky-rp-sft"] / 8);
    }

    [Fact]
    public async Task S11_the_weekend_sweep_books_14_hours_of_32_trials_at_117_55_an_hour_on_fsilva()
    {
        await using var store = await PlayAsync("s11", H(14) + M(10), sampleEvery: H(1), tick: H(3));

        // Four a2-highgpu-8g us-central1 ($29.38708/h: machine 5.91582 + 8 × A100 2.9339075). Each trial holds one
        // GPU: 2,933,907,500 + 1/8 × 5,915,820,000 = 3,673,385,000 n$/h ($3.673385/h, above its $3.67 estimate);
        // 32 trials fill the 32 GPUs: $117.54832/h = 4 × 29.38708, nothing idle while they run [1m, 14h1m).
        // 14 h per trial: 14 × 3.673385 = $51.42739 (840 minutes, a multiple of the 3-minute carry period: exact);
        // the sweep: 32 × 51.42739 = $1,645.67648.
        var sweep = await ReportAsync(store, M(0), H(14) + M(10), [CostDimension.Workload, CostDimension.User],
            Where((CostDimension.Project, ["vit-sweep"]), (CostDimension.Idle, ["false"])));
        Assert.Equal(32, sweep.Count);
        for (var i = 0; i < 32; i++)
            Assert.Equal(Dollars(51.42739m), sweep[$"skypilot:managed-{9100 + i}/fsilva"].Cost.Nanos);
        Assert.Equal(Dollars(1_645.67648m), sweep.Values.Sum(r => r.Cost.Nanos));

        // Any hour of the plateau, e.g. [6h1m, 7h1m): $117.54832, none of it idle.
        var hour = await ReportAsync(store, H(6) + M(1), H(7) + M(1), [CostDimension.Idle]);
        Assert.Equal(Dollars(117.54832m), Assert.Single(hour).Value.Cost.Nanos);
        Assert.Equal(0L, hour.Values.Single().IdleCost.Nanos);

        var record = (await store.GetWorkloadsAsync(["skypilot:managed-9100"], Ct)).Single();
        Assert.Equal(3.67m, record.EstimatePerHour);
    }

    [Fact]
    public async Task S12_the_cost_per_hour_stays_the_same_while_requests_drop_30_percent_so_each_costs_43_percent_more()
    {
        const string Old = "k8s:ranking/vllm-ranker-7d9f4";
        const string New = "k8s:ranking/vllm-ranker-5c2a1";
        await using var store = await PlayAsync("s12", H(4), tick: M(30));

        // Azure Standard_NC24ads_A100_v4 eastus $3.673/h (compute min(1.8365, 24 × 0.031611 + 220 × 0.004237
        // = 1.690804), the A100 $1.982196): two hours of ranker-1.4 [0, 2h) and two of ranker-1.5 [2h, 4h) each cost
        // 2 × 3.673 = $7.346 exactly, on team search; none of it idle.
        var byWorkload = await ReportAsync(store, H(0), H(4), [CostDimension.Workload, CostDimension.Team, CostDimension.Idle]);
        Assert.Equal(Dollars(7.346m), byWorkload[$"{Old}/search/false"].Cost.Nanos);
        Assert.Equal(Dollars(7.346m), byWorkload[$"{New}/search/false"].Cost.Nanos);
        Assert.Equal(2, byWorkload.Count);

        // Requests over an hour inside each version: 3.805/s × 3600 = 13,698 then 2.6635/s × 3600 = 9,588.6 (−30%),
        // each ± the simulator's 5% jitter per sample, which averages over 60 samples to well under 2%.
        var cost = Dollars(3.673m) / 1e9;
        var oldRequests = await WorkAsync(store, Old, "requests", M(30), M(90));
        var newRequests = await WorkAsync(store, New, "requests", M(150), M(210));
        Assert.InRange(oldRequests, 13_698 * 0.98, 13_698 * 1.02);
        Assert.InRange(newRequests, 9_588.6 * 0.98, 9_588.6 * 1.02);
        // Cost per request: 3.673 / 13,698 = $0.000268 → 3.673 / 9,588.6 = $0.000383: × 1/0.7 = +42.9%.
        var ratio = (cost / newRequests) / (cost / oldRequests);
        Assert.InRange(ratio, 1.40, 1.46);
        // Tokens likewise: 951/s → 666/s (−30%).
        var tokenRatio = await WorkAsync(store, New, "tokens", M(150), M(210)) / await WorkAsync(store, Old, "tokens", M(30), M(90));
        Assert.InRange(tokenRatio, 0.68, 0.72);
    }

    [Fact]
    public async Task S13_four_teams_pay_their_share_of_the_p4d_and_20_sevenths_of_a_gpu_price_is_idle_on_platform()
    {
        await using var store = await PlayAsync("s13", H(2), tick: M(30));

        // p4d.24xlarge us-east-1 $21.957642/h = 21,957,642,000 n$/h: GPU part 1,755,245,250 n$/h per A100, compute
        // 7,915,680,000. Each holder gets floor(rate × share), idle the remainder (one hour = the hourly rates exactly,
        // since every line's carry is zero at whole hours):
        //  search: GPU0 ½ → 877,622,625; GPU1 whole → 1,755,245,250; compute 3/16 → 1,484,190,000        = 4,117,057,875
        //  recsys: GPU0 ½ → 877,622,625; compute 1/16 → 494,730,000                                       = 1,372,352,625
        //  ads:    GPU2, GPU3 3/7 → 2 × floor(752,247,964.29); compute 3/28 → floor(848,108,571.43)       = 2,352,604,499
        //  nlp:    GPU2 2/7 → floor(501,498,642.86); GPU4, GPU5 → 3,510,490,500; compute 2/7 → floor(2,261,622,857.14)
        //                                                                                                  = 6,273,611,999
        //  idle (platform, the node's owner): GPU2 1,755,245,250 − 752,247,964 − 501,498,642 = 501,498,644;
        //    GPU3 1,755,245,250 − 752,247,964 = 1,002,997,286; GPU6, GPU7 3,510,490,500 → GPU idle 5,014,986,430;
        //    compute 7,915,680,000 − 5,088,651,428 = 2,827,028,572                                       = 7,842,015,002
        //  total 21,957,642,000 ✓.
        var byTeam = await ReportAsync(store, H(1), H(2), [CostDimension.Team, CostDimension.Idle]);
        Assert.Equal(5, byTeam.Count);
        Assert.Equal(4_117_057_875L, byTeam["search/false"].Cost.Nanos);
        Assert.Equal(1_372_352_625L, byTeam["recsys/false"].Cost.Nanos);
        Assert.Equal(2_352_604_499L, byTeam["ads/false"].Cost.Nanos);
        Assert.Equal(6_273_611_999L, byTeam["nlp/false"].Cost.Nanos);
        Assert.Equal(7_842_015_002L, byTeam["platform/true"].Cost.Nanos);
        Assert.Equal(Dollars(21.957642m), byTeam.Values.Sum(r => r.Cost.Nanos));

        // The idle GPU part: 20/7 GPUs (2/7 of GPU2, 4/7 of GPU3, GPUs 6 and 7) × 1,755,245,250 = 5,014,986,428.57;
        // the ledger books 5,014,986,430: the 1.43 n$ above it are the holders' floor roundings, which go to idle
        // by design so the parts add up to the node. GPU-seconds: 20/7 × 3600 = 10,285.714… idle.
        var idleGpu = await ReportAsync(store, H(1), H(2), [CostDimension.Component],
            Where((CostDimension.Idle, ["true"])));
        Assert.Equal(5_014_986_430L, idleGpu["gpu"].Cost.Nanos);
        Assert.Equal(2_827_028_572L, idleGpu["compute"].Cost.Nanos);
        Assert.InRange(idleGpu["gpu"].GpuSeconds, 10_285.71m, 10_285.72m);
        // Shares in GPU-seconds: search 1.5 × 3600 = 5,400; recsys ½ × 3600 = 1,800; ads 6/7 × 3600 = 3,085.71…;
        // nlp 16/7 × 3600 = 8,228.57… (DECIMAL(38, 6) quantities, so the sevenths are rounded in the last places).
        Assert.Equal(5_400m, byTeam["search/false"].GpuSeconds);
        Assert.Equal(1_800m, byTeam["recsys/false"].GpuSeconds);
        Assert.InRange(byTeam["ads/false"].GpuSeconds, 3_085.71m, 3_085.72m);
        Assert.InRange(byTeam["nlp/false"].GpuSeconds, 8_228.57m, 8_228.58m);
    }
}
