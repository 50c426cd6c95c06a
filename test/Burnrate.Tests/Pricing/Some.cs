using Burnrate.Pricing;

namespace Burnrate.Tests.Pricing;

/// <summary>Test data for the pricing tests.</summary>
internal static class Some
{
    public static readonly DateTimeOffset Jan1 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static InstancePrice Price(
        decimal perHour,
        DateTimeOffset from,
        string zone = "",
        CapacityType capacity = CapacityType.OnDemand,
        string provider = "aws",
        string region = "us-east-1",
        string type = "p5.48xlarge") =>
        new(provider, region, zone, type, capacity, perHour, perHour / 8, 8, "H100", 192, 2048m, from, $"test:{perHour}");
}
