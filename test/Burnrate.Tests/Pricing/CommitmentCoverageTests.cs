using Burnrate.Pricing;
using Burnrate.Pricing.Terms;

namespace Burnrate.Tests.Pricing;

public sealed class CommitmentCoverageTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 0, 0, 0, TimeSpan.Zero);

    private static CoverageCandidate Node(string id, string type, decimal price, int launchedMinute, decimal running = 1m) =>
        new(id, "aws", "us-east-1", type, price, running, s_t0.AddMinutes(launchedMinute));

    [Fact]
    public void Reservations_cover_whole_nodes_then_the_savings_plan_buys_the_longest_running_nodes_and_part_of_the_next()
    {
        var terms = new PricingTerms
        {
            Reservations = [new Reservation("aws", "p5.48xlarge", "", 1, PricePerHour: 27.52m, DiscountPercent: null)],
            SavingsPlans = [new SavingsPlan("sp", "aws", 30m, 25m, [], [])],
        };
        List<CoverageCandidate> candidates =
        [
            Node("c", "p4d.24xlarge", 32m, launchedMinute: 5),
            Node("r2", "p5.48xlarge", 55.04m, launchedMinute: 2),
            Node("b", "p4d.24xlarge", 32m, launchedMinute: 1),
            Node("r1", "p5.48xlarge", 55.04m, launchedMinute: 0),
            Node("d", "p4d.24xlarge", 32m, launchedMinute: 9),
        ];
        var result = new Dictionary<string, Coverage>();

        var unspent = CommitmentCoverage.Allocate(terms, candidates, result);

        Assert.Equal(0.5m, result["r1"].Multiplier); // 27.52 / 55.04: the reservation goes to the first p5 launched
        Assert.Equal("reserved:p5.48xlarge", result["r1"].Note);
        // Then, by launch: b whole ($32 at 75 % = $24 of the $30), and the $6 left buys 6/41.28 of r2; c and d stay on demand.
        Assert.Equal(0.75m, result["b"].Multiplier);
        var fraction = 6m / (55.04m * 0.75m);
        Assert.Equal(decimal.Round((fraction * 0.75m) + (1m - fraction), 20), decimal.Round(result["r2"].Multiplier, 20));
        Assert.Equal("savings-plan:sp:14.53%", result["r2"].Note);
        Assert.False(result.ContainsKey("c"));
        Assert.False(result.ContainsKey("d"));
        Assert.Equal(0m, unspent["sp"]);
    }

    [Fact]
    public void A_commitment_larger_than_the_usage_is_reported_unspent_and_a_partly_covered_node_pays_a_blend()
    {
        var terms = new PricingTerms { SavingsPlans = [new SavingsPlan("sp", "aws", 30m, 25m, ["p4d.*"], [])] };
        var result = new Dictionary<string, Coverage>();

        var unspent = CommitmentCoverage.Allocate(terms, [Node("b", "p4d.24xlarge", 32m, 1), Node("c", "p4d.24xlarge", 32m, 5), Node("x", "p5.48xlarge", 55.04m, 0)], result);

        Assert.Equal(0.75m, result["b"].Multiplier);                     // $24 of the $30
        Assert.Equal(0.25m * 0.75m + 0.75m, result["c"].Multiplier);     // $6 buys a quarter of c at 75 %, the rest on demand
        Assert.Equal("savings-plan:sp:25.00%", result["c"].Note);
        Assert.False(result.ContainsKey("x"));                            // not a p4d: the plan does not cover it
        Assert.Equal(0m, unspent["sp"]);

        var idle = CommitmentCoverage.Allocate(terms, [Node("b", "p4d.24xlarge", 32m, 1, running: 0.5m)], result);
        Assert.Equal(18m, idle["sp"]); // half a minute of b at $24/h spends $12/h of the $30/h commitment
    }
}
