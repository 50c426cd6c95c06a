using System.Globalization;

namespace Burnrate.Reporting;

/// <summary>How money is written in reports.</summary>
public static class MoneyText
{
    /// <summary>Exact dollars with nine decimals and no sign or separators (<c>1234.560000000</c>), for CSV and JSON.</summary>
    public static string Exact(Money amount) => amount.Dollars.ToString("0.000000000", CultureInfo.InvariantCulture);

    /// <summary>
    /// Dollars for people: cents (<c>$1,234.56</c>); an amount under a cent (other than zero) gets two significant
    /// digits (<c>$0.0042</c>) so that small costs do not show as <c>$0.00</c>.
    /// </summary>
    public static string Display(Money amount)
    {
        var dollars = amount.Dollars;
        var magnitude = Math.Abs(dollars);
        if (magnitude == 0m || magnitude >= 0.01m)
            return amount.ToString();
        var decimals = 2;
        var threshold = 0.1m;
        while (magnitude < threshold && decimals < 9)
        {
            threshold /= 10m;
            decimals++;
        }
        var text = decimal.Round(magnitude, decimals, MidpointRounding.AwayFromZero).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return (dollars < 0 ? "-$" : "$") + text;
    }
}
