using Burnrate.Configuration;
using Burnrate.Storage;

namespace Burnrate.Tests.Configuration;

/// <summary>The <c>metrics</c> section: labels and cap of the cost series on <c>/metrics</c>, and errors that name the key.</summary>
public sealed class MetricsConfigTests
{
    [Fact]
    public void Without_a_metrics_section_cost_series_are_by_team_and_cloud_capped_at_1000()
    {
        var options = new BurnrateConfig().ToRatingOptions().CostSeries;

        Assert.Equal([CostDimension.Team, CostDimension.Cloud], options.Labels);
        Assert.Equal(1000, options.MaxSeries);
    }

    [Fact]
    public void Cost_labels_and_max_series_are_read_in_order()
    {
        var options = BurnrateConfig.Parse("metrics:\n  cost_labels: [project, gpu, capacity]\n  max_series: 50\n").ToRatingOptions().CostSeries;

        Assert.Equal([CostDimension.Project, CostDimension.Gpu, CostDimension.Capacity], options.Labels);
        Assert.Equal(50, options.MaxSeries);
    }

    [Theory]
    [InlineData("metrics:\n  cost_labels: [team, workload]\n", "metrics.cost_labels[1]: 'workload' is not a bounded dimension")]
    [InlineData("metrics:\n  cost_labels: [colour]\n", "metrics.cost_labels[0]: 'colour'")]
    [InlineData("metrics:\n  cost_labels: [team, team]\n", "metrics.cost_labels[1]: 'team' is listed twice")]
    [InlineData("metrics:\n  max_series: 0\n", "metrics.max_series must be at least 1")]
    [InlineData("metrics:\n  max_serie: 10\n", "max_serie")]
    public void A_bad_metrics_key_is_refused_naming_it(string yaml, string message)
    {
        var error = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml, "burnrate.yaml"));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("burnrate.yaml", error.Message, StringComparison.Ordinal);
    }
}
