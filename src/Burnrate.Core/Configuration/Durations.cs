using System.Globalization;

namespace Burnrate.Configuration;

/// <summary>Durations as written in the config and on the command line: <c>90s</c>, <c>15m</c>, <c>2h</c>, <c>7d</c>, <c>1w</c>, or combined (<c>1h30m</c>).</summary>
public static class Durations
{
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var s = text.Trim();
        var i = 0;
        var any = false;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
                i++;
            if (i == start || i == s.Length)
                return false;
            if (!decimal.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
                return false;
            var unitStart = i;
            while (i < s.Length && char.IsAsciiLetter(s[i]))
                i++;
            var seconds = s[unitStart..i].ToLowerInvariant() switch
            {
                "ms" => 0.001m,
                "s" or "sec" => 1m,
                "m" or "min" => 60m,
                "h" => 3600m,
                "d" => 86400m,
                "w" => 604800m,
                _ => -1m,
            };
            if (seconds < 0)
                return false;
            var ticks = value * seconds * TimeSpan.TicksPerSecond;
            if (ticks > TimeSpan.MaxValue.Ticks / 2 || duration.Ticks > TimeSpan.MaxValue.Ticks / 2)
                return false; // absurdly long: refuse rather than overflow
            duration += TimeSpan.FromTicks((long)ticks);
            any = true;
        }
        return any;
    }

    public static TimeSpan Parse(string text, string what) =>
        TryParse(text, out var d) ? d : throw new FormatException($"{what}: '{text}' is not a duration (examples: 30s, 15m, 2h, 7d, 1h30m).");

    /// <summary>The shortest exact form: <c>2h</c>, <c>90s</c>, <c>1h30m</c>.</summary>
    public static string Format(TimeSpan d)
    {
        if (d == TimeSpan.Zero)
            return "0s";
        var parts = new List<string>();
        if (d.Days > 0) parts.Add($"{d.Days}d");
        if (d.Hours > 0) parts.Add($"{d.Hours}h");
        if (d.Minutes > 0) parts.Add($"{d.Minutes}m");
        if (d.Seconds > 0) parts.Add($"{d.Seconds}s");
        return string.Concat(parts);
    }
}
