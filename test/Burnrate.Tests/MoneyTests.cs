namespace Burnrate.Tests;

public sealed class MoneyTests
{
    [Fact]
    public void Dollars_round_trip_through_nano_dollars_exactly()
    {
        var m = Money.FromDollars(98.32m);
        Assert.Equal(98_320_000_000L, m.Nanos);
        Assert.Equal(98.32m, m.Dollars);
    }

    [Fact]
    public void Gcp_units_and_nanos_rates_are_held_exactly()
    {
        var rate = HourlyRate.FromDollarsPerHour(2.934180443m);
        Assert.Equal(2_934_180_443L, rate.NanosPerHour);
    }
}
