using System.Text.Json;
using Burnrate.Pricing;

namespace Burnrate.Tests.Cli;

public sealed class PricesCommandTests
{
    private static FakePriceBook Book() => new(
        Some.Price("gcp", "us-central1", "a3-highgpu-8g", "H100", 8, 88.25m),
        Some.Price("aws", "us-east-1", "p5.48xlarge", "H100", 8, 55.04m),
        Some.Price("aws", "us-east-1", "p5.48xlarge", "H100", 8, 20.00m, CapacityType.Spot, zone: "us-east-1a"),
        Some.Price("aws", "us-east-1", "p4d.24xlarge", "A100", 8, 21.96m),
        Some.Price("aws", "eu-west-1", "p5.48xlarge", "H100", 8, 60.00m),
        Some.Price("aws", "us-east-1", "m5.large", "", 0, 0.096m));

    [Fact]
    public async Task Gpu_filter_matches_the_model_prefix_case_insensitively()
    {
        using var cli = new CliHarness(prices: Book());

        Assert.Equal(0, await cli.RunAsync("prices", "--gpu", "h100", "--format", "json"));

        using var document = JsonDocument.Parse(cli.Output.ToString());
        var models = document.RootElement.EnumerateArray().Select(p => p.GetProperty("gpu_model").GetString()).ToArray();
        Assert.Equal(4, models.Length);
        Assert.All(models, m => Assert.Equal("H100", m));
    }

    [Fact]
    public async Task Prices_are_sorted_by_cloud_region_instance_type_and_capacity()
    {
        using var cli = new CliHarness(prices: Book());

        Assert.Equal(0, await cli.RunAsync("prices", "--format", "json"));

        using var document = JsonDocument.Parse(cli.Output.ToString());
        var keys = document.RootElement.EnumerateArray()
            .Select(p => $"{p.GetProperty("cloud").GetString()}/{p.GetProperty("region").GetString()}/{p.GetProperty("instance_type").GetString()}/{p.GetProperty("capacity").GetString()}")
            .ToArray();
        Assert.Equal(
            ["aws/eu-west-1/p5.48xlarge/on_demand", "aws/us-east-1/m5.large/on_demand", "aws/us-east-1/p4d.24xlarge/on_demand",
             "aws/us-east-1/p5.48xlarge/on_demand", "aws/us-east-1/p5.48xlarge/spot", "gcp/us-central1/a3-highgpu-8g/on_demand"],
            keys);
    }

    [Fact]
    public async Task Cloud_region_and_capacity_filters_combine()
    {
        using var cli = new CliHarness(prices: Book());

        Assert.Equal(0, await cli.RunAsync("prices", "--cloud", "AWS", "--region", "us-east-1", "--capacity", "spot", "--format", "json"));

        using var document = JsonDocument.Parse(cli.Output.ToString());
        var only = Assert.Single(document.RootElement.EnumerateArray().ToArray());
        Assert.Equal(20.00m, only.GetProperty("price_per_hour").GetDecimal());
        Assert.Equal("us-east-1a", only.GetProperty("zone").GetString());
    }

    [Fact]
    public async Task Table_shows_gpus_capacity_and_both_rates()
    {
        using var cli = new CliHarness(prices: Book());

        Assert.Equal(0, await cli.RunAsync("prices", "--gpu", "A100"));

        var line = Assert.Single(cli.Output.ToString().Split('\n'), l => l.Contains("p4d.24xlarge", StringComparison.Ordinal));
        Assert.Contains("8 × A100", line, StringComparison.Ordinal);
        Assert.Contains("on_demand", line, StringComparison.Ordinal);
        Assert.Contains("$21.96", line, StringComparison.Ordinal);
        Assert.Contains("$2.4705", line, StringComparison.Ordinal); // 21.96 × 0.9 / 8
        Assert.Contains("builtin:aws", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task At_asks_the_book_for_the_prices_in_force_at_that_instant()
    {
        var book = Book();
        using var cli = new CliHarness(prices: book);

        Assert.Equal(0, await cli.RunAsync("prices", "--at", "-30d"));

        Assert.Equal(CliHarness.Now.AddDays(-30), book.LastAt);
    }

    [Fact]
    public async Task Unknown_capacity_exits_2()
    {
        using var cli = new CliHarness(prices: Book());

        Assert.Equal(2, await cli.RunAsync("prices", "--capacity", "cheap"));

        Assert.StartsWith("error: --capacity: 'cheap'", cli.Errors.ToString(), StringComparison.Ordinal);
    }
}
