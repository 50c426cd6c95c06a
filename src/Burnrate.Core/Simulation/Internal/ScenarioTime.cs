using System.Globalization;

namespace Burnrate.Simulation.Internal;

/// <summary>
/// A wall-clock anchor for a scenario's start: <c>friday 17:00</c> (the next such weekday and time, UTC) or
/// <c>daily 22:00</c> (the next such time of day), at or after the slot the simulator gives the scenario.
/// </summary>
internal sealed record ScenarioAnchor(DayOfWeek? Day, TimeSpan TimeOfDay)
{
    public DateTimeOffset NextAtOrAfter(DateTimeOffset instant)
    {
        var utc = instant.ToUniversalTime();
        var candidate = new DateTimeOffset(utc.Date, TimeSpan.Zero) + TimeOfDay;
        if (Day is { } day)
            candidate = candidate.AddDays(((int)day - (int)utc.DayOfWeek + 7) % 7);
        while (candidate < utc)
            candidate = candidate.AddDays(Day is null ? 1 : 7);
        return candidate;
    }
}

/// <summary>Parses offsets (<c>90s</c>, <c>14m</c>, <c>6h</c>, <c>2d</c>, <c>1h30m</c>, <c>0</c>) and anchors.</summary>
internal static class ScenarioTime
{
    public static bool TryParseOffset(string? text, out TimeSpan offset)
    {
        offset = TimeSpan.Zero;
        if (text?.Trim() == "0")
            return true;
        return Configuration.Durations.TryParse(text, out offset);
    }

    public static bool TryParseAnchor(string? text, out ScenarioAnchor? anchor)
    {
        anchor = null;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var parts = text.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2)
            return false;
        if (!TimeSpan.TryParseExact(parts[1], @"h\:mm", CultureInfo.InvariantCulture, out var timeOfDay) || timeOfDay >= TimeSpan.FromDays(1))
            return false;
        if (parts[0].Equals("daily", StringComparison.OrdinalIgnoreCase))
        {
            anchor = new ScenarioAnchor(null, timeOfDay);
            return true;
        }
        if (!Enum.TryParse<DayOfWeek>(parts[0], ignoreCase: true, out var day) || !Enum.IsDefined(day) || char.IsAsciiDigit(parts[0][0]))
            return false;
        anchor = new ScenarioAnchor(day, timeOfDay);
        return true;
    }
}
