using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Server;

/// <summary>
/// <c>deploy/grafana-burnrate.json</c> cannot drift from <c>/metrics</c>: every metric its PromQL names is one that a
/// server fed by the simulator actually exposes.
/// </summary>
public sealed partial class GrafanaDashboardTests
{
    private static readonly HashSet<string> s_labelListKeywords = new(StringComparer.Ordinal) { "by", "without", "on", "ignoring", "group_left", "group_right" };
    private static readonly HashSet<string> s_operators = new(StringComparer.Ordinal) { "and", "or", "unless", "offset", "bool", "atan2" };

    private static JsonElement Dashboard()
    {
        var text = File.ReadAllText(Path.Combine(PricingTestPaths.RepoRoot(), "deploy", "grafana-burnrate.json"));
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static IEnumerable<(string Key, string Value)> Strings(JsonElement element, string? key = null)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in element.EnumerateObject())
                {
                    foreach (var s in Strings(p.Value, p.Name))
                        yield return s;
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    foreach (var s in Strings(item, key))
                        yield return s;
                }
                break;
            case JsonValueKind.String when key is not null:
                yield return (key, element.GetString()!);
                break;
        }
    }

    /// <summary>The metric names a PromQL expression selects: identifiers outside label matchers, ranges and strings that are not functions, keywords or label lists.</summary>
    internal static IReadOnlyList<string> MetricNames(string expr)
    {
        var names = new List<string>();
        var i = 0;
        while (i < expr.Length)
        {
            var c = expr[i];
            if (c is '"' or '\'' or '`')
            {
                i = SkipString(expr, i);
            }
            else if (c is '{' or '[')
            {
                var close = c == '{' ? '}' : ']';
                while (i < expr.Length && expr[i] != close)
                    i = expr[i] is '"' or '\'' or '`' ? SkipString(expr, i) : i + 1;
                i++;
            }
            else if (c == '$' || char.IsAsciiDigit(c))
            {
                i++; // a Grafana variable, a number or a duration
                while (i < expr.Length && (char.IsAsciiLetterOrDigit(expr[i]) || expr[i] is '_' or '.'))
                    i++;
            }
            else if (char.IsAsciiLetter(c) || c is '_' or ':')
            {
                var start = i;
                while (i < expr.Length && (char.IsAsciiLetterOrDigit(expr[i]) || expr[i] is '_' or ':'))
                    i++;
                var word = expr[start..i];
                var next = i;
                while (next < expr.Length && char.IsWhiteSpace(expr[next]))
                    next++;
                if (s_labelListKeywords.Contains(word))
                {
                    if (next < expr.Length && expr[next] == '(')
                        i = expr.IndexOf(')', next) + 1; // the label list
                }
                else if (!(next < expr.Length && expr[next] == '(') && !s_operators.Contains(word) && !IsAggregation(expr, next))
                {
                    names.Add(word);
                }
            }
            else
            {
                i++;
            }
        }
        return names;
    }

    // "sum by (team) (...)": a word followed by a grouping clause is an aggregation operator, not a metric.
    private static bool IsAggregation(string expr, int next)
    {
        var end = next;
        while (end < expr.Length && char.IsAsciiLetter(expr[end]))
            end++;
        return expr[next..end] is "by" or "without";
    }

    private static int SkipString(string text, int i)
    {
        var quote = text[i++];
        while (i < text.Length && text[i] != quote)
            i += text[i] == '\\' ? 2 : 1;
        return i + 1;
    }

    [Fact]
    public void The_expression_reader_finds_metrics_and_skips_functions_labels_ranges_and_keywords()
    {
        Assert.Equal(["a_total"], MetricNames("sum by (team, cloud) (increase(a_total{team=~\"$team\",x='b{c}'}[$__range]))"));
        Assert.Equal(["x", "y"], MetricNames("topk(10, x) / on (team) group_left(cloud) y offset 5m"));
        Assert.Equal(["idle", "all"], MetricNames("sum(idle) / sum without (user) (all) > bool 0.5"));
    }

    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_exposed_on_metrics()
    {
        var dashboard = Dashboard();
        var strings = Strings(dashboard).ToList();
        var expressions = strings.Where(s => s.Key == "expr").Select(s => s.Value).ToList();
        var variableMetrics = strings.Where(s => s.Key is "query" or "definition")
            .SelectMany(s => LabelValues().Matches(s.Value).Select(m => m.Groups[1].Value)).ToList();
        Assert.True(expressions.Count >= 15, "the dashboard has its panels");
        Assert.NotEmpty(variableMetrics);
        // The demo's server (rating, no write-ahead log) and serve's (with the log) together expose every family.
        await using var demo = await ReplayedServer.StartAsync("baseline+s1", TimeSpan.FromMinutes(20));
        var directory = Directory.CreateTempSubdirectory("burnrate-grafana-").FullName;
        var exposed = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            await using var serve = await LiveServer.StartAsync(directory, TimeProvider.System);
            foreach (var url in new[] { demo.Url, new Uri(serve.Url) })
            {
                using var client = new HttpClient { BaseAddress = url };
                var page = await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), TestContext.Current.CancellationToken);
                exposed.UnionWith(page.Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]));
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        foreach (var expr in expressions)
        {
            var names = MetricNames(expr);
            Assert.True(names.Count > 0, $"'{expr}' selects a metric");
            foreach (var name in names)
                Assert.True(exposed.Contains(name), $"'{expr}' uses {name}, which /metrics does not expose");
        }
        foreach (var name in variableMetrics)
            Assert.Contains(name, exposed);
        // What the dashboard is for: cost by team and cloud, cost over time, idle, and Burnrate's own health.
        var used = expressions.SelectMany(MetricNames).ToHashSet(StringComparer.Ordinal);
        foreach (var name in new[] { "burnrate_cost_rate_dollars_per_hour", "burnrate_cost_dollars_total", "burnrate_idle_cost_dollars_total", "burnrate_idle_cost_rate_dollars_per_hour",
            "burnrate_ingest_samples_total", "burnrate_ingest_queue_items", "burnrate_wal_bytes", "burnrate_rating_lag_seconds" })
            Assert.Contains(name, used);
        Assert.Contains(expressions, e => e.Contains("increase(burnrate_cost_dollars_total", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_panel_and_query_uses_the_DS_PROMETHEUS_datasource_variable()
    {
        var dashboard = Dashboard();

        Assert.Contains(dashboard.GetProperty("templating").GetProperty("list").EnumerateArray(),
            v => v.GetProperty("name").GetString() == "DS_PROMETHEUS" && v.GetProperty("type").GetString() == "datasource");
        Assert.Equal("DS_PROMETHEUS", dashboard.GetProperty("__inputs")[0].GetProperty("name").GetString());
        var uids = Strings(dashboard).Where(s => s.Key == "uid").Select(s => s.Value).Where(u => u != dashboard.GetProperty("uid").GetString()).ToList();
        Assert.NotEmpty(uids);
        Assert.All(uids, u => Assert.Equal("${DS_PROMETHEUS}", u));
    }

    [GeneratedRegex(@"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,")]
    private static partial Regex LabelValues();
}
