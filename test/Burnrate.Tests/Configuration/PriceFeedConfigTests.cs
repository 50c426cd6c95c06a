using Burnrate.Configuration;
using Burnrate.Pricing.Feeds;

namespace Burnrate.Tests.Configuration;

public sealed class PriceFeedConfigTests
{
    [Fact]
    public void Each_feed_kind_reads_with_its_keys_and_defaults()
    {
        const string yaml = """
            pricing:
              feeds:
                - kind: aws_spot
                  regions: [us-east-1, us-west-2]
                  instance_types: [p5.48xlarge]
                - name: azure-eu
                  kind: azure_retail
                  regions: [westeurope]
                  interval: 5m
                  timeout: 10s
                - kind: gcp_billing
                  api_key_env: GCP_BILLING_KEY
                  regions: [us-central1]
                - kind: skypilot
                  paths: [~/.sky/catalogs/v7]
                - kind: aws_spot
                  endpoint: http://127.0.0.1:4566
                  credentials: dummy
                  regions: [us-east-1]
                  product_descriptions: [Linux/UNIX (Amazon VPC)]
            """;
        var config = BurnrateConfig.Parse(yaml, "burnrate.yaml");

        var feeds = config.ToPriceFeedOptions(name => name == "GCP_BILLING_KEY" ? "k-123" : null);

        Assert.Equal(["aws_spot-0", "azure-eu", "gcp_billing-2", "skypilot-3", "aws_spot-4"], feeds.Select(f => f.Name));
        Assert.Equal([PriceFeedKind.AwsSpot, PriceFeedKind.AzureRetail, PriceFeedKind.GcpBilling, PriceFeedKind.SkyPilot, PriceFeedKind.AwsSpot], feeds.Select(f => f.Kind));
        // Spot every 60 s by default; the GCP catalog hourly.
        Assert.Equal([TimeSpan.FromSeconds(60), TimeSpan.FromMinutes(5), TimeSpan.FromHours(1), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60)], feeds.Select(f => f.Interval));
        Assert.Equal(TimeSpan.FromSeconds(10), feeds[1].Timeout);
        Assert.Equal(TimeSpan.FromSeconds(30), feeds[0].Timeout);
        Assert.Equal(["us-east-1", "us-west-2"], feeds[0].Regions);
        Assert.Equal(["Linux/UNIX", "Linux/UNIX (Amazon VPC)"], feeds[0].ProductDescriptions);
        Assert.False(feeds[0].DummyCredentials);
        Assert.Equal("2023-01-01-preview", feeds[1].ApiVersion);
        Assert.Equal(("k-123", "6F81-5844-456A"), (feeds[2].ApiKey, feeds[2].Service));
        Assert.Equal(["~/.sky/catalogs/v7"], feeds[3].Paths);
        Assert.Equal((true, new Uri("http://127.0.0.1:4566")), (feeds[4].DummyCredentials, feeds[4].Endpoint));
        Assert.Equal(["Linux/UNIX (Amazon VPC)"], feeds[4].ProductDescriptions);
    }

    [Fact]
    public void No_feeds_is_the_default() => Assert.Empty(new BurnrateConfig().ToPriceFeedOptions());

    [Theory]
    [InlineData("- regions: [us-east-1]", "pricing.feeds[0].kind is required: one of aws_spot, azure_retail, gcp_billing, skypilot")]
    [InlineData("- kind: aws\n    regions: [us-east-1]", "pricing.feeds[0].kind: 'aws' is not one of aws_spot, azure_retail, gcp_billing, skypilot")]
    [InlineData("- kind: aws_spot", "pricing.feeds[0].regions is required for kind aws_spot")]
    [InlineData("- kind: azure_retail", "pricing.feeds[0].regions is required for kind azure_retail")]
    [InlineData("- kind: skypilot", "pricing.feeds[0].paths is required for kind skypilot")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    interval: often", "pricing.feeds[0].interval: 'often' is not a duration")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    interval: 100ms", "pricing.feeds[0].interval must be at least 1s")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    timeout: 0s", "pricing.feeds[0].timeout must be positive")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    endpoint: ftp://x", "pricing.feeds[0].endpoint: 'ftp://x' is not an http(s) URL")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    credentials: dummy", "pricing.feeds[0].credentials: dummy is only for a local endpoint; set endpoint too")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    credentials: root", "pricing.feeds[0].credentials: 'root' is not one of default, dummy")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    paths: [x]", "pricing.feeds[0].paths does not apply to kind aws_spot")]
    [InlineData("- kind: skypilot\n    paths: [x]\n    endpoint: http://x", "pricing.feeds[0].endpoint does not apply to kind skypilot")]
    [InlineData("- kind: azure_retail\n    regions: [\"east us\"]", "pricing.feeds[0].regions[0]: 'east us' is not a region name")]
    [InlineData("- kind: azure_retail\n    regions: [eastus]\n    instance_types: [\"Standard_D2s_v3' or 1 eq 1\"]", "pricing.feeds[0].instance_types[0]")]
    [InlineData("- kind: skypilot\n    paths: [a]\n  - kind: skypilot\n    paths: [b]\n    name: skypilot-0", "pricing.feeds[1].name: 'skypilot-0' is used by another feed")]
    [InlineData("- kind: aws_spot\n    regions: [us-east-1]\n    region: us-west-2", "region")]
    public void A_bad_feed_is_refused_naming_the_item_and_key(string feeds, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("pricing:\n  feeds:\n  " + feeds + "\n", "burnrate.yaml"));

        Assert.StartsWith("burnrate.yaml:", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_GCP_key_variable_that_is_not_set_is_an_error_when_serve_reads_the_environment()
    {
        var config = BurnrateConfig.Parse("pricing:\n  feeds:\n    - kind: gcp_billing\n      api_key_env: GCP_BILLING_KEY\n", "burnrate.yaml");

        var e = Assert.Throws<ArgumentException>(() => config.ToPriceFeedOptions(_ => null));

        Assert.Equal("pricing.feeds[0].api_key_env: the environment variable GCP_BILLING_KEY is not set", e.Message);
    }
}
