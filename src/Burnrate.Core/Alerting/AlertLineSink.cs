using System.Collections.Concurrent;
using System.Globalization;

namespace Burnrate.Alerting;

/// <summary>
/// Keeps one printable line per notification for a terminal (<c>burnrate demo</c>) to show when it draws; never
/// blocks the engine.
/// </summary>
public sealed class AlertLineSink : IAlertSink
{
    private readonly ConcurrentQueue<string> _lines = new();

    public void Publish(IReadOnlyList<AlertNotification> notifications)
    {
        foreach (var n in notifications)
            _lines.Enqueue(Format(n));
    }

    /// <summary>The lines published since the last call, oldest first.</summary>
    public IReadOnlyList<string> Drain()
    {
        var result = new List<string>();
        while (_lines.TryDequeue(out var line))
            result.Add(line);
        return result;
    }

    /// <summary><c>2026-03-02 08:02Z FIRING  runaway-spend [critical] summary ($/h 495.36, since 08:01Z, so far $8.26) /workloads/...</c></summary>
    public static string Format(AlertNotification n)
    {
        var a = n.Annotations;
        var state = n.State == AlertState.Resolved ? "RESOLVED" : "FIRING  ";
        var at = (n.State == AlertState.Resolved ? n.EndsAt ?? n.EvidenceAt : n.EvidenceAt).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
        return $"{at}Z {state} {a.GetValueOrDefault("summary", n.Rule)} [{n.Labels.GetValueOrDefault("severity", "")}] " +
            $"($/h {a.GetValueOrDefault("usd_per_hour", "?")}, since {n.StartsAt.ToString("HH:mm", CultureInfo.InvariantCulture)}Z, so far ${a.GetValueOrDefault("cost_so_far_usd", "?")}) {a.GetValueOrDefault("dashboard", "")}";
    }
}
