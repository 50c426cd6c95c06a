using System.Globalization;

namespace Burnrate;

/// <summary>
/// An exact amount of money in US dollars, held as a whole number of nano-dollars (1e-9 $).
/// Ledger amounts are always <see cref="Money"/>; never sum money in <see cref="double"/>.
/// </summary>
public readonly record struct Money(long Nanos) : IComparable<Money>
{
    /// <summary>Nano-dollars per dollar.</summary>
    public const long NanosPerDollar = 1_000_000_000;

    public static Money Zero => default;

    /// <summary>Converts dollars to nano-dollars, rounding half away from zero below the nano-dollar.</summary>
    public static Money FromDollars(decimal dollars) =>
        new((long)decimal.Round(dollars * NanosPerDollar, MidpointRounding.AwayFromZero));

    /// <summary>The exact amount in dollars.</summary>
    public decimal Dollars => (decimal)Nanos / NanosPerDollar;

    public static Money operator +(Money a, Money b) => new(checked(a.Nanos + b.Nanos));
    public static Money operator -(Money a, Money b) => new(checked(a.Nanos - b.Nanos));
    public static Money Add(Money a, Money b) => a + b;
    public static Money Subtract(Money a, Money b) => a - b;
    public static bool operator <(Money a, Money b) => a.Nanos < b.Nanos;
    public static bool operator >(Money a, Money b) => a.Nanos > b.Nanos;
    public static bool operator <=(Money a, Money b) => a.Nanos <= b.Nanos;
    public static bool operator >=(Money a, Money b) => a.Nanos >= b.Nanos;

    public int CompareTo(Money other) => Nanos.CompareTo(other.Nanos);

    /// <summary>Dollars with cents, e.g. <c>$1,234.56</c>.</summary>
    public override string ToString() => Dollars.ToString("$#,##0.00", CultureInfo.InvariantCulture);

    /// <summary>Dollars with the given number of decimals, no currency sign.</summary>
    public string ToString(int decimals) =>
        decimal.Round(Dollars, decimals, MidpointRounding.AwayFromZero).ToString("F" + decimals, CultureInfo.InvariantCulture);
}

/// <summary>
/// A price rate in whole nano-dollars per hour. Rates with up to nine decimals of a dollar (GCP's
/// <c>units + nanos</c>) are held exactly.
/// </summary>
public readonly record struct HourlyRate(long NanosPerHour)
{
    public static HourlyRate Zero => default;

    /// <summary>Converts $/hour to nano-dollars/hour, rounding below the nano-dollar half away from zero.</summary>
    public static HourlyRate FromDollarsPerHour(decimal dollarsPerHour) =>
        new((long)decimal.Round(dollarsPerHour * Money.NanosPerDollar, MidpointRounding.AwayFromZero));

    /// <summary>$/hour.</summary>
    public decimal DollarsPerHour => (decimal)NanosPerHour / Money.NanosPerDollar;

    public static HourlyRate operator +(HourlyRate a, HourlyRate b) => new(checked(a.NanosPerHour + b.NanosPerHour));
    public static HourlyRate operator -(HourlyRate a, HourlyRate b) => new(checked(a.NanosPerHour - b.NanosPerHour));
    public static HourlyRate Add(HourlyRate a, HourlyRate b) => a + b;
    public static HourlyRate Subtract(HourlyRate a, HourlyRate b) => a - b;

    public override string ToString() => DollarsPerHour.ToString("$#,##0.00####/h", CultureInfo.InvariantCulture);
}
