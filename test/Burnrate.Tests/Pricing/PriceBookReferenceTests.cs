using Burnrate.Pricing;

namespace Burnrate.Tests.Pricing;

public sealed class PriceBookReferenceTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Find_and_next_change_agree_with_a_brute_force_scan(int seed)
    {
        var random = new Random(seed);
        var entries = new List<InstancePrice>();
        var book = new PriceBook();
        for (var i = 0; i < 40; i++)
        {
            // Minutes 0..120, zone "" or az1, prices from a small set so equal prices at different dates occur.
            var price = Some.Price(random.Next(1, 4), Some.Jan1.AddMinutes(random.Next(0, 121)), zone: random.Next(3) == 0 ? "az1" : "");
            entries.Add(price);
            book.Add(price);
        }

        foreach (var zone in new[] { "az1", "az2" })
        {
            for (var m = -1; m <= 122; m++)
            {
                var at = Some.Jan1.AddMinutes(m);
                Assert.Same(Naive(entries, zone, at), book.Find("aws", "us-east-1", zone, "p5.48xlarge", CapacityType.OnDemand, at));
            }

            for (var a = -1; a <= 121; a += 7)
            {
                for (var b = a; b <= 122; b += 11)
                {
                    DateTimeOffset after = Some.Jan1.AddMinutes(a), before = Some.Jan1.AddMinutes(b);
                    DateTimeOffset? expected = null;
                    for (var m = a + 1; m < b; m++)
                    {
                        if (!ReferenceEquals(Naive(entries, zone, Some.Jan1.AddMinutes(m)), Naive(entries, zone, Some.Jan1.AddMinutes(m - 1))))
                        {
                            expected = Some.Jan1.AddMinutes(m);
                            break;
                        }
                    }

                    Assert.Equal(expected, book.NextChange("aws", "us-east-1", zone, "p5.48xlarge", CapacityType.OnDemand, after, before));
                }
            }
        }
    }

    // The last entry added wins among entries of the same key and instant, as in the book.
    private static InstancePrice? Naive(List<InstancePrice> entries, string zone, DateTimeOffset at)
    {
        InstancePrice? best = null;
        foreach (var candidate in new[] { zone, "" })
        {
            foreach (var e in entries)
            {
                if (e.Zone == candidate && e.EffectiveFrom <= at && (best is null || e.EffectiveFrom >= best.EffectiveFrom))
                    best = e;
            }

            if (best is not null)
                return best;
        }

        return null;
    }
}
