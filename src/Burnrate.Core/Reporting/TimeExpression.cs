using System.Globalization;

namespace Burnrate.Reporting;

/// <summary>
/// Times and durations as users type them: RFC 3339 instants (<c>2025-06-01T00:00:00Z</c>), a date
/// (<c>2025-06-01</c>, UTC midnight), or a time relative to now (<c>now</c>, <c>-15m</c>, <c>-2h</c>, <c>-7d</c>,
/// <c>now-1w</c>); durations are a whole number and a unit (<c>30s</c>, <c>15m</c>, <c>1h</c>, <c>1d</c>, <c>1w</c>).
/// </summary>
public static class TimeExpression
{
    /// <summary>Parses an instant; relative forms are resolved against <paramref name="now"/>. The result is UTC.</summary>
    public static bool TryParse(string? text, DateTimeOffset now, out DateTimeOffset value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var s = text.Trim();
        if (s.Equals("now", StringComparison.OrdinalIgnoreCase))
        {
            value = now.ToUniversalTime();
            return true;
        }
        if (s.StartsWith("now", StringComparison.OrdinalIgnoreCase))
            s = s[3..];
        if (s.Length > 1 && (s[0] == '-' || s[0] == '+'))
        {
            if (!TryParseDuration(s[1..], out var offset))
                return false;
            try
            {
                value = (s[0] == '-' ? now - offset : now + offset).ToUniversalTime();
                return true;
            }
            catch (ArgumentOutOfRangeException)
            {
                return false;
            }
        }
        // A date is at least yyyy-MM-dd; anything shorter is not an instant (and not a duration without a sign).
        if (s.Length < 10 || !char.IsAsciiDigit(s[0]))
            return false;
        if (!DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
            return false;
        value = parsed.ToUniversalTime();
        return true;
    }

    /// <summary>Parses a positive duration (see <see cref="Configuration.Durations"/>: <c>15m</c>, <c>1h</c>, <c>1d</c>, <c>1w</c>, <c>1h30m</c>).</summary>
    public static bool TryParseDuration(string? text, out TimeSpan value) =>
        Configuration.Durations.TryParse(text, out value) && value > TimeSpan.Zero;

    /// <summary>The shortest exact form of a duration (<c>15m</c>, <c>1h</c>, <c>1d</c>), the inverse of <see cref="TryParseDuration"/>.</summary>
    public static string FormatDuration(TimeSpan duration)
    {
        var seconds = (long)duration.TotalSeconds;
        foreach (var (unit, size) in new[] { ("w", 604_800L), ("d", 86_400L), ("h", 3_600L), ("m", 60L) })
        {
            if (seconds % size == 0)
                return (seconds / size).ToString(CultureInfo.InvariantCulture) + unit;
        }
        return seconds.ToString(CultureInfo.InvariantCulture) + "s";
    }

    /// <summary>An instant in RFC 3339, UTC, with fractional seconds only when there are any.</summary>
    public static string Format(DateTimeOffset instant) =>
        instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}
