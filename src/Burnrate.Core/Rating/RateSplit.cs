using Burnrate.Inventory;

namespace Burnrate.Rating;

/// <summary>An exact non-negative fraction (used for GPU shares; never for money).</summary>
public readonly record struct Fraction
{
    public Fraction(Int128 numerator, Int128 denominator)
    {
        if (denominator <= 0 || numerator < 0)
            throw new ArgumentOutOfRangeException(nameof(denominator), $"fraction {numerator}/{denominator} is not a non-negative share");
        var gcd = Gcd(numerator, denominator);
        Numerator = numerator / gcd;
        Denominator = denominator / gcd;
    }

    public Int128 Numerator { get; }
    public Int128 Denominator { get; }

    public static Fraction Zero => new(0, 1);
    public static Fraction One => new(1, 1);

    public static Fraction Of(GpuShare share) => new(share.Numerator, share.Denominator);

    public static Fraction operator +(Fraction a, Fraction b) =>
        new(a.Numerator * b.Denominator + b.Numerator * a.Denominator, a.Denominator * b.Denominator);
    public static Fraction operator *(Fraction a, Fraction b) => new(a.Numerator * b.Numerator, a.Denominator * b.Denominator);
    public static Fraction operator /(Fraction a, Fraction b) => new(a.Numerator * b.Denominator, a.Denominator * b.Numerator);
    public static Fraction Add(Fraction a, Fraction b) => a + b;
    public static Fraction Multiply(Fraction a, Fraction b) => a * b;
    public static Fraction Divide(Fraction a, Fraction b) => a / b;

    public bool IsZero => Numerator == 0;
    public bool GreaterThanOne => Numerator > Denominator;

    /// <summary>floor(<paramref name="value"/> × this).</summary>
    public long FloorTimes(long value) => (long)(value * Numerator / Denominator);

    /// <summary>The fraction in parts per million, rounded down.</summary>
    public int ToPpm() => (int)(1_000_000 * Numerator / Denominator);

    /// <summary>The fraction as a decimal (for quantities, which are not money).</summary>
    public decimal ToDecimal() => (decimal)Numerator / (decimal)Denominator;

    private static Int128 Gcd(Int128 a, Int128 b)
    {
        if (a == 0)
            return b;
        while (b != 0)
            (a, b) = (b, a % b);
        return a;
    }
}

/// <summary>
/// Splits an hourly rate among holders by exact fractions. Each holder gets floor(rate × share); whatever is left
/// (the unallocated part and the sub-nano-dollar rounding) is idle, so the parts always add up to the rate exactly.
/// When the shares add up to more than the whole (an overbooked time-sliced GPU), each is scaled down by the total.
/// </summary>
public static class RateSplit
{
    /// <summary>Normalizes shares that add up to more than one; returns them unchanged otherwise.</summary>
    public static void Normalize(Span<Fraction> shares)
    {
        var total = Fraction.Zero;
        foreach (var s in shares)
            total += s;
        if (!total.GreaterThanOne)
            return;
        for (var i = 0; i < shares.Length; i++)
            shares[i] /= total;
    }

    /// <summary>Writes each holder's part of <paramref name="rate"/> into <paramref name="parts"/> and returns the idle remainder.</summary>
    public static HourlyRate Split(HourlyRate rate, ReadOnlySpan<Fraction> shares, Span<HourlyRate> parts)
    {
        var left = rate.NanosPerHour;
        for (var i = 0; i < shares.Length; i++)
        {
            var part = shares[i].FloorTimes(rate.NanosPerHour);
            parts[i] = new HourlyRate(part);
            left -= part;
        }
        return new HourlyRate(left);
    }
}
