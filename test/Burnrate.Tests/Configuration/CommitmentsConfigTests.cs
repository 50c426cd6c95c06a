using Burnrate.Configuration;
using Burnrate.Pricing;

namespace Burnrate.Tests.Configuration;

public sealed class CommitmentsConfigTests
{
    [Fact]
    public void A_commitments_section_becomes_the_rating_terms()
    {
        var config = BurnrateConfig.Parse("""
            commitments:
              discounts:
                - provider: AWS
                  percent: 8
              savings_plans:
                - name: compute-1y
                  provider: aws
                  commitment_per_hour: 120.50
                  discount_percent: 28
                  instance_types: [p4d.*]
                - name: ec2-p5
                  provider: aws
                  id: 3f1c2e9a-0b7d-4c55-9e21-7a6b5d4c3b2a
                  commitment_per_hour: 40
                  discount_percent: 35
              reservations:
                - provider: gcp
                  instance_type: a3-highgpu-8g
                  region: us-central1
                  count: 4
                  discount_percent: 37
                - provider: aws
                  instance_type: p5.48xlarge
                  count: 2
                  price_per_hour: 31.464
              credits:
                - provider: aws
                  amount: 5000
                  from: 2026-11-01T00:00:00Z
                  to: 2026-12-01T00:00:00Z
                  description: migration credit
            """);

        var terms = config.ToRatingOptions().Terms;

        Assert.Equal(0.92m, terms.DiscountMultiplier("aws", CapacityType.Spot));
        Assert.Equal(1m, terms.DiscountMultiplier("gcp", CapacityType.OnDemand));
        Assert.Equal(2, terms.SavingsPlans.Count);
        var plan = terms.SavingsPlans[0];
        Assert.Equal(("compute-1y", 120.50m, 28m), (plan.Name, plan.CommitmentPerHour, plan.DiscountPercent));
        Assert.True(plan.Covers("aws", "us-east-1", "p4d.24xlarge"));
        Assert.False(plan.Covers("aws", "us-east-1", "p5.48xlarge"));
        // How a bill names a plan: with no id, an ARN ending in savingsplan/NAME; with one, that id (whole or as the ARN's last part).
        Assert.True(plan.IsNamedBy("arn:aws:savingsplans::123456789012:savingsplan/compute-1y"));
        Assert.False(plan.IsNamedBy("arn:aws:savingsplans::123456789012:savingsplan/compute-1y-old"));
        var p5 = terms.SavingsPlans[1];
        Assert.Equal("savings-plan/ec2-p5", p5.LedgerResource);
        Assert.True(p5.IsNamedBy("arn:aws:savingsplans::123456789012:savingsplan/3f1c2e9a-0b7d-4c55-9e21-7a6b5d4c3b2a"));
        Assert.True(p5.IsNamedBy("3f1c2e9a-0b7d-4c55-9e21-7a6b5d4c3b2a"));
        Assert.False(p5.IsNamedBy("arn:aws:savingsplans::123456789012:savingsplan/ec2-p5"));
        Assert.Equal([4, 2], terms.Reservations.Select(r => r.Count));
        Assert.Equal(31.464m, terms.Reservations[1].PricePerHour);
        Assert.Equal(5000m, Assert.Single(terms.Credits).Amount);
    }

    [Theory]
    [InlineData("discounts:\n    - provider: aws\n      percent: 0", "commitments.discounts[0].percent must be above 0 and below 100, got 0")]
    [InlineData("discounts:\n    - percent: 8", "commitments.discounts[0].provider is required")]
    [InlineData("discounts:\n    - provider: aws\n      percent: 8\n      capacity: [preemptible-ish]", "commitments.discounts[0].capacity: 'preemptible-ish' is not on_demand, spot or reserved")]
    [InlineData("savings_plans:\n    - provider: aws\n      discount_percent: 20", "commitments.savings_plans[0].commitment_per_hour must be positive")]
    [InlineData("reservations:\n    - provider: aws\n      instance_type: p5.48xlarge\n      count: 2", "commitments.reservations[0] needs exactly one of price_per_hour")]
    [InlineData("reservations:\n    - provider: aws\n      instance_type: p5.48xlarge\n      count: 0\n      discount_percent: 30", "commitments.reservations[0].count must be at least 1, got 0")]
    [InlineData("credits:\n    - provider: aws\n      amount: 10\n      from: 2026-12-01T00:00:00Z\n      to: 2026-11-01T00:00:00Z", "commitments.credits[0]: to must be after from")]
    public void A_wrong_commitment_is_refused_naming_the_key(string section, string message)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("commitments:\n  " + section + "\n", "burnrate.yaml"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
