using Burnrate.Reporting;

namespace Burnrate.Tests.Cli;

public sealed class MoneyTextTests
{
    [Theory]
    [InlineData("1234.567", "$1,234.57")]
    [InlineData("0.01", "$0.01")]
    [InlineData("0.0042", "$0.0042")]
    [InlineData("0.000000123", "$0.00000012")]
    [InlineData("0", "$0.00")]
    public void Display_shows_cents_and_two_significant_digits_below_a_cent(string dollars, string expected)
    {
        Assert.Equal(expected, MoneyText.Display(Money.FromDollars(decimal.Parse(dollars, System.Globalization.CultureInfo.InvariantCulture))));
    }

    [Fact]
    public void Exact_text_keeps_every_nano_dollar()
    {
        Assert.Equal("1234.000000001", MoneyText.Exact(new Money(1_234_000_000_001)));
    }
}
