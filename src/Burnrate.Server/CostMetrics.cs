using System.Globalization;
using System.Text;
using Burnrate.Rating;
using Burnrate.Storage;

namespace Burnrate.Server;

/// <summary>
/// Burnrate's cost series on <c>GET /metrics</c> (Prometheus text exposition 0.0.4): the burn rate now and what has been
/// rated since start, in total and for idle capacity, labelled by the configured bounded dimensions
/// (<c>metrics.cost_labels</c>, capped by <c>metrics.max_series</c>). Sums are kept in exact nano-dollars and printed
/// as decimal dollars with nine places; Prometheus reads them as floats. Listed in docs/metrics.md.
/// </summary>
public static class CostMetrics
{
    /// <summary>The families this page can hold, for docs and for checks that dashboards only use what exists.</summary>
    public static IReadOnlyList<string> FamilyNames { get; } =
    [
        "burnrate_cost_rate_dollars_per_hour",
        "burnrate_cost_dollars_total",
        "burnrate_idle_cost_rate_dollars_per_hour",
        "burnrate_idle_cost_dollars_total",
        "burnrate_cost_series_folded_label_sets",
    ];

    /// <summary>
    /// The cost families at <paramref name="now"/>; empty when the server does not rate. With <paramref name="team"/> (a
    /// team-scoped key), only the series whose <c>team</c> label is that team, and none when the series carry no
    /// <c>team</c> label; the fleet-wide count of folded label sets is left out.
    /// </summary>
    public static string Render(CostPipeline? pipeline, DateTimeOffset now, string? team = null)
    {
        if (pipeline is null)
            return "";
        var snapshot = pipeline.Series(now);
        var names = snapshot.Labels.Select(d => d.ToName()).ToArray();
        var series = snapshot.Series;
        if (team is not null)
        {
            var at = IndexOf(snapshot.Labels, CostDimension.Team);
            series = at < 0 ? [] : [.. series.Where(s => string.Equals(s.LabelValues[at], team, StringComparison.Ordinal))];
            snapshot = snapshot with { Series = series };
        }
        var labels = snapshot.Series.Select(s => LabelText(names, s.LabelValues)).ToArray();
        var page = new StringBuilder();

        Family(page, "burnrate_cost_rate_dollars_per_hour", "gauge", "What is burning right now, $/hour (idle capacity included).");
        for (var i = 0; i < labels.Length; i++)
            Line(page, "burnrate_cost_rate_dollars_per_hour", labels[i], snapshot.Series[i].Rate.DollarsPerHour);
        Family(page, "burnrate_cost_dollars_total", "counter", "Dollars rated into the ledger since this server started (idle capacity included).");
        for (var i = 0; i < labels.Length; i++)
            Line(page, "burnrate_cost_dollars_total", labels[i], snapshot.Series[i].Total.Dollars);
        Family(page, "burnrate_idle_cost_rate_dollars_per_hour", "gauge", "The part of the burn rate paying for capacity no workload uses, $/hour.");
        for (var i = 0; i < labels.Length; i++)
            Line(page, "burnrate_idle_cost_rate_dollars_per_hour", labels[i], snapshot.Series[i].IdleRate.DollarsPerHour);
        Family(page, "burnrate_idle_cost_dollars_total", "counter", "Dollars rated for capacity no workload used, since this server started.");
        for (var i = 0; i < labels.Length; i++)
            Line(page, "burnrate_idle_cost_dollars_total", labels[i], snapshot.Series[i].IdleTotal.Dollars);
        if (team is not null)
            return page.ToString();
        Family(page, "burnrate_cost_series_folded_label_sets", "gauge", "Distinct label sets over metrics.max_series, counted into the __other__ series.");
        page.Append("burnrate_cost_series_folded_label_sets ").Append(snapshot.FoldedLabelSets.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return page.ToString();
    }

    private static int IndexOf(IReadOnlyList<CostDimension> labels, CostDimension dimension)
    {
        for (var i = 0; i < labels.Count; i++)
        {
            if (labels[i] == dimension)
                return i;
        }
        return -1;
    }

    private static string? LabelText(string[] names, IReadOnlyList<string> values)
    {
        if (names.Length == 0)
            return null;
        var text = new StringBuilder();
        for (var i = 0; i < names.Length; i++)
        {
            if (i > 0)
                text.Append(',');
            text.Append(names[i]).Append("=\"").Append(Escape(values[i])).Append('"');
        }
        return text.ToString();
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static void Family(StringBuilder page, string name, string type, string help) =>
        page.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Line(StringBuilder page, string name, string? labels, decimal dollars)
    {
        page.Append(name);
        if (labels is not null)
            page.Append('{').Append(labels).Append('}');
        page.Append(' ').Append(dollars.ToString("0.#########", CultureInfo.InvariantCulture)).Append('\n');
    }
}
