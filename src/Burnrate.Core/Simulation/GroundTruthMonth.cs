using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Pricing.Terms;
using Burnrate.Telemetry;

namespace Burnrate.Simulation;

/// <summary>One node's life in a <see cref="GroundTruthMonth"/>: a whole node held by one workload from start to end.</summary>
public sealed record TrueNode(NodeSpec Spec, DateTimeOffset Start, DateTimeOffset End, WorkloadInfo Workload);

/// <summary>Bytes a node sent to the internet at an instant.</summary>
public sealed record TrueEgress(DateTimeOffset Time, string NodeId, string WorkloadId, long Bytes);

/// <summary>
/// A month of a small fleet with its true usage, and the provider's bill for it written as FOCUS 1.2 — the ground
/// truth that reconciliation and calibration are tested against. The fleet: a baseline of on-demand
/// <c>p4d.24xlarge</c> nodes running all month, on-demand <c>g5.12xlarge</c> batch nodes on weekdays from about 08:00 to
/// 20:00, spot <c>p5.48xlarge</c> nodes running jobs of one to three days back to back while the spot price moves
/// every four hours, and internet egress from the baseline's serving workload every hour; all in AWS us-east-1.
/// </summary>
/// <remarks>
/// The bill is computed here from the usage, independently of the rating engine: per node and hour, the seconds
/// the node ran at each price in force (spot moves included) give the list cost; the provider's terms then apply as
/// AWS applies them — a savings plan's hourly commitment buys the hour's eligible on-demand usage at the plan's rate,
/// longest-running nodes first (AWS does not promise an order among equally discounted usage; this biller and
/// Burnrate both use launch order, so per-node effective cost is comparable), the rest on demand; a negotiated
/// discount off everything, data transfer included. Egress is billed at the rate card's internet price.
/// </remarks>
public sealed class GroundTruthMonth
{
    /// <summary>The provider and region of every node.</summary>
    public const string Provider = "aws";

    /// <inheritdoc cref="Provider"/>
    public const string Region = "us-east-1";

    private readonly List<FleetEvent> _events = [];

    private GroundTruthMonth(DateTimeOffset start, DateTimeOffset end, IReadOnlyList<TrueNode> nodes, IReadOnlyList<PriceChanged> spotMoves, IReadOnlyList<TrueEgress> egress)
    {
        Start = start;
        End = end;
        Nodes = nodes;
        SpotMoves = spotMoves;
        Egress = egress;
    }

    /// <summary>Start of the month simulated.</summary>
    public DateTimeOffset Start { get; }

    /// <summary>End of the month simulated (exclusive).</summary>
    public DateTimeOffset End { get; }

    /// <summary>Every node's life.</summary>
    public IReadOnlyList<TrueNode> Nodes { get; }

    /// <summary>The spot price changes, in time order.</summary>
    public IReadOnlyList<PriceChanged> SpotMoves { get; }

    /// <summary>The egress, in time order.</summary>
    public IReadOnlyList<TrueEgress> Egress { get; }

    /// <summary>Baseline nodes running all month.</summary>
    public int BaselineNodes { get; private init; }

    /// <summary>
    /// Plans <paramref name="days"/> days from <paramref name="start"/> (a UTC midnight) with <paramref name="seed"/>,
    /// spot prices moving around the spot price <paramref name="prices"/> holds for <c>p5.48xlarge</c>.
    /// </summary>
    public static GroundTruthMonth Plan(DateTimeOffset start, int days, int seed, IPriceBook prices, int baseline = 5, int batchPerDay = 3, int spotNodes = 2)
    {
        ArgumentNullException.ThrowIfNull(prices);
        var random = new Random(seed);
        var end = start.AddDays(days);
        var nodes = new List<TrueNode>();
        var teams = new[] { "research", "platform", "search", "vision", "speech" };

        for (var i = 0; i < baseline; i++)
        {
            var team = teams[i % teams.Length];
            nodes.Add(Node($"i-base{i:D2}", "p4d.24xlarge", CapacityType.OnDemand, 8, "A100", start.AddMinutes(i), end,
                new WorkloadInfo($"k8s:{team}/serve-{i}", "kubernetes", $"serve-{i}", "svc", team, i == 0 ? "chat" : "inference")));
        }

        for (var d = 0; d < days; d++)
        {
            var day = start.AddDays(d);
            if (day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
                continue;
            for (var k = 0; k < batchPerDay; k++)
            {
                var from = day.AddHours(8).AddMinutes(random.Next(0, 90)).AddSeconds(random.Next(0, 60));
                var to = day.AddHours(19).AddMinutes(random.Next(0, 120)).AddSeconds(random.Next(0, 60));
                var id = $"batch-{d:D2}-{k}";
                nodes.Add(Node($"i-{id}", "g5.12xlarge", CapacityType.OnDemand, 4, "A10G", from, to,
                    new WorkloadInfo($"slurm:{id}", "slurm", id, "etl", "data", "features")));
            }
        }

        for (var s = 0; s < spotNodes; s++)
        {
            var t = start.AddHours(s * 5);
            var job = 0;
            while (t < end)
            {
                var to = t.AddHours(random.Next(24, 72)).AddMinutes(random.Next(0, 60));
                if (to > end)
                    to = end;
                var id = $"train-{s}-{job++}";
                nodes.Add(Node($"i-spot{s}-{job:D2}", "p5.48xlarge", CapacityType.Spot, 8, "H100", t, to,
                    new WorkloadInfo($"skypilot:{id}", "skypilot", id, "ana", "research", "pretrain")));
                t = to.AddMinutes(random.Next(5, 30));
            }
        }

        var spotBase = prices.Find(Provider, Region, "", "p5.48xlarge", CapacityType.Spot, start)?.PricePerHour
            ?? throw new InvalidOperationException("the price book has no spot price for p5.48xlarge in us-east-1");
        var moves = new List<PriceChanged>();
        for (var t = start; t < end; t = t.AddHours(4))
        {
            var factor = 0.8m + (random.Next(0, 41) / 100m); // 0.80 .. 1.20 of the catalog's spot price
            moves.Add(new PriceChanged(t.AddMinutes(random.Next(0, 240)), Provider, Region, "", "p5.48xlarge", CapacityType.Spot, decimal.Round(spotBase * factor, 4)));
        }
        moves.Sort((a, b) => a.Time.CompareTo(b.Time));

        var egress = new List<TrueEgress>();
        for (var t = start.AddMinutes(30); t < end; t = t.AddHours(1))
            egress.Add(new TrueEgress(t, "i-base00", "k8s:research/serve-0", 20_000_000_000L + (random.Next(0, 1000) * 10_000_000L)));

        return new GroundTruthMonth(start, end, nodes, moves, egress) { BaselineNodes = baseline };

        static TrueNode Node(string id, string type, CapacityType capacity, int gpus, string model, DateTimeOffset from, DateTimeOffset to, WorkloadInfo workload) =>
            new(new NodeSpec(id, Provider, Region, "", type, capacity, gpus, model), from, to, workload);
    }

    /// <summary>The fleet's events, in time order, as orchestrators and cloud lifecycle hooks would report them.</summary>
    public IReadOnlyList<FleetEvent> Events()
    {
        if (_events.Count > 0)
            return _events;
        var events = new List<(FleetEvent Event, int Order)>();
        foreach (var move in SpotMoves)
            events.Add((move, 0));
        foreach (var n in Nodes)
        {
            events.Add((new WorkloadStarted(n.Start, n.Workload), 1));
            events.Add((new NodeStarted(n.Start, n.Spec), 2));
            for (var g = 0; g < n.Spec.GpuCount; g++)
            {
                events.Add((new GpuAllocated(n.Start, n.Workload.Id, n.Spec.Id, g, GpuShare.Whole), 3));
                events.Add((new GpuReleased(n.End, n.Workload.Id, n.Spec.Id, g), 4));
            }
            events.Add((new NodeStopped(n.End, n.Spec.Id), 5));
            events.Add((new WorkloadStopped(n.End, n.Workload.Id), 6));
        }
        foreach (var e in Egress)
            events.Add((new BytesTransferred(e.Time, e.WorkloadId, e.NodeId, TransferKind.Internet, e.Bytes), 3));
        _events.AddRange(events.OrderBy(e => e.Event.Time).ThenBy(e => e.Order).Select(e => e.Event));
        return _events;
    }

    /// <summary>
    /// Writes the provider's bill for the hours in [<paramref name="from"/>, <paramref name="to"/>) as a FOCUS 1.2 CSV:
    /// one line per node and hour it ran, one per node and hour it sent data, each with ListCost (list and spot prices),
    /// EffectiveCost and BilledCost (after <paramref name="terms"/>), and the node's workload and team as tags.
    /// Returns the true effective cost per (workload, UTC day), exact.
    /// </summary>
    public IReadOnlyDictionary<(string Workload, DateTime Day), decimal> WriteFocus(TextWriter output, DateTimeOffset from, DateTimeOffset to,
        IPriceBook prices, IRateCard rateCard, PricingTerms terms)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(prices);
        ArgumentNullException.ThrowIfNull(rateCard);
        ArgumentNullException.ThrowIfNull(terms);
        var truth = new Dictionary<(string, DateTime), decimal>();
        output.WriteLine(string.Join(',', s_columns));
        var spot = SpotMoves.ToList();
        for (var hour = from; hour < to; hour = hour.AddHours(1))
        {
            var next = hour.AddHours(1);
            // The hour's usage per node: seconds at each price (spot moves cut the hour).
            var usage = new List<(TrueNode Node, decimal Seconds, decimal ListCost, decimal OnDemandPerHour)>();
            foreach (var n in Nodes)
            {
                var a = n.Start > hour ? n.Start : hour;
                var b = n.End < next ? n.End : next;
                if (b <= a)
                    continue;
                var od = prices.Find(Provider, Region, "", n.Spec.InstanceType, CapacityType.OnDemand, a)!.PricePerHour;
                var list = 0m;
                if (n.Spec.Capacity == CapacityType.Spot)
                {
                    var cuts = new List<DateTimeOffset> { a, b };
                    cuts.AddRange(spot.Where(m => m.Time > a && m.Time < b).Select(m => CeilingToSecond(m.Time)));
                    cuts.Sort();
                    for (var i = 0; i + 1 < cuts.Count; i++)
                    {
                        var price = SpotPriceAt(spot, prices, n.Spec.InstanceType, cuts[i]);
                        list += price * Seconds(cuts[i], cuts[i + 1]) / 3600m;
                    }
                }
                else
                {
                    list = od * Seconds(a, b) / 3600m;
                }
                usage.Add((n, Seconds(a, b), list, od));
            }

            // Savings plans: the hour's commitment buys on-demand usage at the plan's rate, longest-running first.
            var covered = new Dictionary<string, decimal>(StringComparer.Ordinal); // node → effective cost of its covered part
            var uncoveredShare = usage.ToDictionary(u => u.Node.Spec.Id, _ => 1m, StringComparer.Ordinal);
            foreach (var plan in terms.SavingsPlans)
            {
                var rate = 1m - (plan.DiscountPercent / 100m);
                var commitment = plan.CommitmentPerHour;
                foreach (var u in usage.Where(u => u.Node.Spec.Capacity == CapacityType.OnDemand).OrderBy(u => u.Node.Start).ThenBy(u => u.Node.Spec.Id, StringComparer.Ordinal))
                {
                    if (commitment <= 0m || !plan.Covers(Provider, Region, u.Node.Spec.InstanceType))
                        continue;
                    var needed = u.ListCost * rate * uncoveredShare[u.Node.Spec.Id];
                    if (needed <= 0m)
                        continue;
                    var take = Math.Min(commitment, needed);
                    var fraction = uncoveredShare[u.Node.Spec.Id] * (take / needed);
                    covered[u.Node.Spec.Id] = covered.GetValueOrDefault(u.Node.Spec.Id) + (u.ListCost * fraction * rate);
                    uncoveredShare[u.Node.Spec.Id] -= fraction;
                    commitment -= take;
                }
                // The commitment is billed in full: what the hour's usage left unused is a line of its own (no workload,
                // so it is in the bill but not in the per-workload truth).
                if (commitment > 0m)
                {
                    var unused = decimal.Round(commitment * terms.DiscountMultiplier(Provider, CapacityType.OnDemand), 10);
                    WriteCommitmentLine(output, hour, next, plan, decimal.Round(commitment, 10), unused);
                }
            }

            foreach (var u in usage)
            {
                var id = u.Node.Spec.Id;
                var beforeDiscount = covered.GetValueOrDefault(id) + (u.ListCost * uncoveredShare[id]);
                var effective = decimal.Round(beforeDiscount * terms.DiscountMultiplier(Provider, u.Node.Spec.Capacity), 10);
                var sku = u.Node.Spec.Capacity == CapacityType.Spot ? "Dynamic" : covered.ContainsKey(id) ? "Committed" : "Standard";
                WriteLine(output, hour, next, u.Node, "Compute", "Amazon Elastic Compute Cloud", $"{u.Node.Spec.InstanceType} {sku}",
                    sku, decimal.Round(u.ListCost, 10), effective, u.Seconds / 3600m, "Hours");
                var key = (u.Node.Workload.Id, hour.UtcDateTime.Date);
                truth[key] = truth.GetValueOrDefault(key) + effective;
            }

            foreach (var group in Egress.Where(e => e.Time >= hour && e.Time < next).GroupBy(e => e.NodeId))
            {
                var node = Nodes.First(n => n.Spec.Id == group.Key);
                var bytes = group.Sum(e => e.Bytes);
                var perGb = rateCard.EgressPerGb(Provider, Region, TransferKind.Internet);
                var list = perGb * bytes / Money.NanosPerDollar;
                var effective = decimal.Round(list * terms.NetworkMultiplier(Provider), 10);
                WriteLine(output, hour, next, node, "Networking", "AWS Data Transfer", "DataTransfer-Out-Bytes", "Standard",
                    decimal.Round(list, 10), effective, bytes / 1_000_000_000m, "GB");
                var key = (node.Workload.Id, hour.UtcDateTime.Date);
                truth[key] = truth.GetValueOrDefault(key) + effective;
            }
        }
        return truth;
    }

    private static readonly string[] s_columns =
    [
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
        "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
        "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
        "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "ResourceId",
        "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "Tags",
    ];

    private static void WriteCommitmentLine(TextWriter output, DateTimeOffset from, DateTimeOffset to, SavingsPlan plan, decimal list, decimal effective)
    {
        var month = new DateTimeOffset(from.Year, from.Month, 1, 0, 0, 0, TimeSpan.Zero);
        string[] values =
        [
            Number(effective), "123456789012", "Ground truth", "USD", Time(month.AddMonths(1)), Time(month),
            "Usage", "", $"Savings plan {plan.Name}: unused commitment", "Recurring", Time(to), Time(from),
            "1", "Hours", Number(list), Number(effective), "Amazon Web Services, Inc.", Number(list),
            "Committed", "1", "Hours", "AWS", "Amazon Web Services, Inc.", "",
            "arn:aws:savingsplans::123456789012:savingsplan/" + plan.Name, "", "Compute", "Savings Plans for AWS Compute usage",
            "ComputeSP:Recurring", "",
        ];
        WriteValues(output, values);
    }

    private static void WriteLine(TextWriter output, DateTimeOffset from, DateTimeOffset to, TrueNode node, string category, string service,
        string sku, string pricingCategory, decimal list, decimal effective, decimal quantity, string unit)
    {
        var month = new DateTimeOffset(from.Year, from.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var tags = JsonSerializer.Serialize(new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["team"] = node.Workload.Team,
            ["workload"] = node.Workload.Id,
        });
        string[] values =
        [
            Number(effective), "123456789012", "Ground truth", "USD", Time(month.AddMonths(1)), Time(month),
            "Usage", "", $"{service}: {sku}", "Usage-Based", Time(to), Time(from),
            Number(quantity), unit, Number(list), Number(effective), "Amazon Web Services, Inc.", Number(list),
            pricingCategory, Number(quantity), unit, "AWS", "Amazon Web Services, Inc.", Region, node.Spec.Id,
            node.Spec.InstanceType, category, service, sku, tags,
        ];
        WriteValues(output, values);
    }

    // One CSV record: values with a comma or a quote quoted.
    private static void WriteValues(TextWriter output, string[] values)
    {
        var line = new StringBuilder();
        for (var i = 0; i < values.Length; i++)
        {
            if (i > 0)
                line.Append(',');
            var v = values[i];
            if (v.Contains(',', StringComparison.Ordinal) || v.Contains('"', StringComparison.Ordinal))
                line.Append('"').Append(v.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
            else
                line.Append(v);
        }
        output.WriteLine(line.ToString());
    }

    private static decimal SpotPriceAt(List<PriceChanged> moves, IPriceBook prices, string instanceType, DateTimeOffset at)
    {
        PriceChanged? last = null;
        foreach (var m in moves)
        {
            if (CeilingToSecond(m.Time) > at)
                break;
            last = m;
        }
        return last?.PricePerHour ?? prices.Find(Provider, Region, "", instanceType, CapacityType.Spot, at)!.PricePerHour;
    }

    private static DateTimeOffset CeilingToSecond(DateTimeOffset t)
    {
        var r = t.Ticks % TimeSpan.TicksPerSecond;
        return r == 0 ? t : t.AddTicks(TimeSpan.TicksPerSecond - r);
    }

    private static decimal Seconds(DateTimeOffset a, DateTimeOffset b) => (b - a).Ticks / TimeSpan.TicksPerSecond;

    private static string Number(decimal value) => value.ToString("0.##########", CultureInfo.InvariantCulture);

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
