using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace Burnrate.Tests.Rating;

/// <summary>
/// The rating engine against a naive pricer that walks every second of a random timeline on its own: the two must
/// agree to the nano-dollar on every line of every minute.
/// </summary>
public sealed class RatingPropertyTests
{
    private static readonly DateTimeOffset s_start = new(2026, 5, 1, 0, 0, 0, TimeSpan.Zero);
    private const int Minutes = 12;

    [Fact]
    public void Ledger_equals_a_per_second_brute_force_pricer_for_random_fleets()
    {
        var property = Prop.ForAll(Arb.From(Gen.Choose(1, int.MaxValue)), seed =>
        {
            var scenario = RandomScenario.Create(seed);
            var engine = new RatingEngine(scenario.Book(), new FakeRateCard());
            var events = scenario.Events.OrderBy(e => e.Time).ToList();
            var ledger = new Dictionary<(DateTimeOffset, LineKey), long>();
            var next = 0;
            for (var m = 0; m < Minutes; m++)
            {
                var minute = s_start.AddMinutes(m);
                // Feed what happened up to the end of this minute, as a live pipeline would.
                while (next < events.Count && events[next].Time < minute.AddMinutes(1))
                    engine.Apply(events[next++]);
                var rated = engine.RateMinute(minute).Lines;
                if (rated.GroupBy(l => (l.ResourceId, l.GpuIndex, l.WorkloadId, l.Component, l.SegmentStart)).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
                    return false.Label($"seed {seed}: two rows with the key {duplicate.Key} in minute {minute:O}");
                foreach (var l in rated)
                {
                    var key = (minute, new LineKey(l.ResourceId, l.GpuIndex, l.WorkloadId, l.Component));
                    ledger[key] = ledger.GetValueOrDefault(key) + l.Cost.Nanos;
                }
            }
            var expected = BruteForce(scenario, events);
            var nonZeroLedger = ledger.Where(kv => kv.Value != 0).ToDictionary();
            var nonZeroExpected = expected.Where(kv => kv.Value != 0).ToDictionary();
            if (nonZeroExpected.Count != nonZeroLedger.Count)
                return false.Label($"seed {seed}: {nonZeroLedger.Count} lines in the ledger, {nonZeroExpected.Count} by brute force");
            foreach (var (key, nanos) in nonZeroExpected)
            {
                if (nonZeroLedger.GetValueOrDefault(key) != nanos)
                    return false.Label($"seed {seed}: {key} ledger {nonZeroLedger.GetValueOrDefault(key)} brute force {nanos}");
            }
            return true.ToProperty();
        });
        property.QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Minutes_of_a_constant_rate_add_up_to_rate_times_duration()
    {
        var property = Prop.ForAll(Arb.From(Gen.Choose(1, 5_000_000)), Arb.From(Gen.Choose(1, 7200)), (cents, seconds) =>
        {
            // An arbitrary price with nano-dollar digits, any run length: the line's minutes add up to floor(rate × s / 3600).
            var book = new FakePriceBook();
            var perHour = cents / 100m + 0.000000007m;
            book.Add(Some.Price("x1", CapacityType.OnDemand, perHour, 0m, 0));
            var engine = new RatingEngine(book, new FakeRateCard());
            engine.Apply(new NodeStarted(s_start, new NodeSpec("n", "aws", "us-east-1", "", "x1", CapacityType.OnDemand, 0, "")));
            engine.Apply(new NodeStopped(s_start.AddSeconds(seconds), "n"));
            long total = 0;
            for (var m = 0; m <= seconds / 60; m++)
                total += engine.RateMinute(s_start.AddMinutes(m)).Lines.Sum(l => l.Cost.Nanos);
            var rate = HourlyRate.FromDollarsPerHour(perHour).NanosPerHour;
            return (total == (long)((Int128)rate * seconds / 3600)).Label($"{perHour}/h × {seconds}s: {total}");
        });
        property.QuickCheckThrowOnFailure();
    }

    /// <summary>Walks every second; the state at a second is every event at or before it, applied in order.</summary>
    private static Dictionary<(DateTimeOffset, LineKey), long> BruteForce(RandomScenario scenario, List<FleetEvent> events)
    {
        var units = new Dictionary<(DateTimeOffset, LineKey), Int128>();
        for (var s = 0; s < Minutes * 60; s++)
        {
            var t = s_start.AddSeconds(s);
            var minute = s_start.AddMinutes(s / 60);
            foreach (var node in scenario.Nodes)
            {
                var started = events.OfType<NodeStarted>().Any(e => e.Node.Id == node.Id && e.Time <= t);
                var stopped = events.OfType<NodeStopped>().Any(e => e.NodeId == node.Id && e.Time <= t);
                if (!started || stopped)
                    continue;
                var capacity = events.OfType<CapacityChanged>().Where(e => e.NodeId == node.Id && e.Time <= t).Select(e => (CapacityType?)e.Capacity).LastOrDefault() ?? node.Capacity;
                var (price, gpuPrice) = scenario.PriceAt(capacity, t);
                var nodeRate = HourlyRate.FromDollarsPerHour(price).NanosPerHour;
                var gpuRate = HourlyRate.FromDollarsPerHour(gpuPrice).NanosPerHour;
                var computeRate = nodeRate - gpuRate * node.GpuCount;
                var nodeShare = new Dictionary<string, (Int128 Num, Int128 Den)>();
                for (var g = 0; g < node.GpuCount; g++)
                {
                    var holders = new Dictionary<string, GpuShare>();
                    foreach (var e in events.Where(e => e.Time <= t))
                    {
                        switch (e)
                        {
                            case GpuAllocated a when a.NodeId == node.Id && a.GpuIndex == g: holders[a.WorkloadId] = a.Share; break;
                            case GpuReleased r when r.NodeId == node.Id && r.GpuIndex == g: holders.Remove(r.WorkloadId); break;
                            case WorkloadStopped w: holders.Remove(w.WorkloadId); break;
                        }
                    }
                    // Naive exact split: common denominator, then scale down if overbooked.
                    Int128 den = 1;
                    foreach (var h in holders.Values)
                        den *= h.Denominator;
                    Int128 sum = 0;
                    foreach (var h in holders.Values)
                        sum += h.Numerator * (den / h.Denominator);
                    var total = sum > den ? sum : den;
                    long used = 0;
                    foreach (var (w, h) in holders.OrderBy(h => h.Key, StringComparer.Ordinal))
                    {
                        var num = h.Numerator * (den / h.Denominator);
                        var part = (long)(gpuRate * num / total);
                        used += part;
                        Add(units, minute, new LineKey(node.Id, g, w, CostComponent.Gpu), part);
                        var prev = nodeShare.GetValueOrDefault(w, (0, 1));
                        nodeShare[w] = (prev.Num * total * node.GpuCount + num * prev.Den, prev.Den * total * node.GpuCount);
                    }
                    Add(units, minute, new LineKey(node.Id, g, "", CostComponent.Gpu), gpuRate - used);
                }
                long usedCompute = 0;
                foreach (var (w, (num, den)) in nodeShare.OrderBy(k => k.Key, StringComparer.Ordinal))
                {
                    var part = (long)(computeRate * num / den);
                    usedCompute += part;
                    Add(units, minute, new LineKey(node.Id, -1, w, CostComponent.Compute), part);
                }
                Add(units, minute, new LineKey(node.Id, -1, "", CostComponent.Compute), computeRate - usedCompute);
            }
        }
        // Whole nano-dollars per minute, the remainder carried per line, as the ledger promises.
        var result = new Dictionary<(DateTimeOffset, LineKey), long>();
        var carry = new Dictionary<LineKey, Int128>();
        foreach (var ((minute, key), u) in units.OrderBy(kv => kv.Key.Item1))
        {
            var total = u + carry.GetValueOrDefault(key);
            result[(minute, key)] = (long)(total / 3600);
            carry[key] = total % 3600;
        }
        return result;
    }

    private static void Add(Dictionary<(DateTimeOffset, LineKey), Int128> units, DateTimeOffset minute, LineKey key, long ratePerHour) =>
        units[(minute, key)] = units.GetValueOrDefault((minute, key)) + ratePerHour; // one second at $/h = rate units

    /// <summary>One node type with random on-demand and spot prices, random nodes, workloads, shares and changes.</summary>
    private sealed class RandomScenario
    {
        private readonly List<(DateTimeOffset From, CapacityType Capacity, decimal Price, decimal Gpu)> _prices = [];
        public List<NodeSpec> Nodes { get; } = [];
        public List<FleetEvent> Events { get; } = [];

        public static RandomScenario Create(int seed)
        {
            var random = new Random(seed);
            var s = new RandomScenario();
            decimal Dollars(int max) => random.Next(1, max * 1000) / 1000m + random.Next(0, 1000) / 1_000_000_000m;
            var od = Dollars(100);
            s._prices.Add((DateTimeOffset.UnixEpoch, CapacityType.OnDemand, od, decimal.Round(od / 10m, 9)));
            var spot = Dollars(40);
            s._prices.Add((DateTimeOffset.UnixEpoch, CapacityType.Spot, spot, decimal.Round(spot / 10m, 9)));
            var changes = Enumerable.Range(0, random.Next(0, 4)).Select(_ => s_start.AddSeconds(random.Next(1, Minutes * 60))).Distinct().Order().ToList();
            var (lastSpot, lastGpu) = (spot, decimal.Round(spot / 10m, 9));
            foreach (var at in changes)
            {
                var newSpot = Dollars(40);
                // A spot price change, as the engine applies it: the GPU part keeps its share of the price in force.
                var gpu = decimal.Round(lastGpu * newSpot / lastSpot, 9, MidpointRounding.AwayFromZero);
                s._prices.Add((at, CapacityType.Spot, newSpot, gpu));
                s.Events.Add(new PriceChanged(at, "aws", "us-east-1", "", "p4d.24xlarge", CapacityType.Spot, newSpot));
                (lastSpot, lastGpu) = (newSpot, gpu);
            }
            var nodeCount = random.Next(1, 4);
            for (var n = 0; n < nodeCount; n++)
            {
                var gpus = random.Next(0, 4);
                var node = new NodeSpec($"n{n}", "aws", "us-east-1", "", "p4d.24xlarge", random.Next(2) == 0 ? CapacityType.Spot : CapacityType.OnDemand, gpus, "A100");
                s.Nodes.Add(node);
                var start = s_start.AddSeconds(random.Next(0, 300));
                s.Events.Add(new NodeStarted(start, node));
                if (random.Next(2) == 0)
                    s.Events.Add(new NodeStopped(start.AddSeconds(random.Next(1, 400)), node.Id));
                if (random.Next(3) == 0)
                    s.Events.Add(new CapacityChanged(start.AddSeconds(random.Next(1, 400)), node.Id, random.Next(2) == 0 ? CapacityType.OnDemand : CapacityType.Spot));
                for (var w = 0; w < random.Next(0, 5) && gpus > 0; w++)
                {
                    var id = $"w{n}-{w}";
                    var from = start.AddSeconds(random.Next(0, 300));
                    s.Events.Add(new WorkloadStarted(from, new Attribution.WorkloadInfo(id, "slurm", id, Team: "t" + (w % 2))));
                    var share = random.Next(3) switch
                    {
                        0 => GpuShare.Whole,
                        1 => GpuShare.Mig($"{random.Next(1, 8)}g.10gb"),
                        _ => GpuShare.Shared(1, random.Next(1, 5)),
                    };
                    s.Events.Add(new GpuAllocated(from, id, node.Id, random.Next(gpus), share));
                    var end = from.AddSeconds(random.Next(1, 500));
                    s.Events.Add(random.Next(2) == 0 ? new WorkloadStopped(end, id) : new GpuReleased(end, id, node.Id, 0));
                }
            }
            // The same instant for several events of one node and a workload is legal; the order among them is the list's.
            return s;
        }

        public FakePriceBook Book()
        {
            var book = new FakePriceBook();
            foreach (var (from, capacity, price, gpu) in _prices.Where(p => p.From == DateTimeOffset.UnixEpoch))
                book.Add(Some.Price("p4d.24xlarge", capacity, price, gpu, 8, from: from));
            return book;
        }

        public (decimal Price, decimal Gpu) PriceAt(CapacityType capacity, DateTimeOffset t)
        {
            var p = _prices.Where(p => p.Capacity == capacity && p.From <= t).OrderBy(p => p.From).Last();
            return (p.Price, p.Gpu);
        }
    }
}
