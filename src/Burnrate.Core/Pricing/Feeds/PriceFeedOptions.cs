namespace Burnrate.Pricing.Feeds;

/// <summary>Which price API (or file) a feed polls.</summary>
public enum PriceFeedKind
{
    /// <summary>AWS EC2 <c>DescribeSpotPriceHistory</c> through AWSSDK.EC2: spot prices per availability zone.</summary>
    AwsSpot,

    /// <summary>The Azure Retail Prices API: on-demand, spot and low-priority meters, savings-plan rates.</summary>
    AzureRetail,

    /// <summary>The GCP Cloud Billing Catalog API: per-GPU accelerator SKUs (on-demand and preemptible).</summary>
    GcpBilling,

    /// <summary>SkyPilot <c>vms.csv</c> catalogs on disk, re-read when a file changes.</summary>
    SkyPilot,
}

/// <summary>Names of <see cref="PriceFeedKind"/> as the config writes them.</summary>
public static class PriceFeedKinds
{
    /// <summary>Every kind, as written in the config.</summary>
    public static IReadOnlyList<string> Names { get; } = ["aws_spot", "azure_retail", "gcp_billing", "skypilot"];

    /// <summary>The config name: <c>aws_spot</c>, <c>azure_retail</c>, <c>gcp_billing</c>, <c>skypilot</c>.</summary>
    public static string ToName(this PriceFeedKind kind) => kind switch
    {
        PriceFeedKind.AwsSpot => "aws_spot",
        PriceFeedKind.AzureRetail => "azure_retail",
        PriceFeedKind.GcpBilling => "gcp_billing",
        PriceFeedKind.SkyPilot => "skypilot",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Parses a config name (exact, lower-case).</summary>
    public static bool TryParse(string? text, out PriceFeedKind kind)
    {
        for (var i = 0; i < Names.Count; i++)
        {
            if (string.Equals(Names[i], text, StringComparison.Ordinal))
            {
                kind = (PriceFeedKind)i;
                return true;
            }
        }
        kind = default;
        return false;
    }

    /// <summary>How often a kind polls when the config names no interval.</summary>
    /// <remarks>
    /// Spot moves by the minute on AWS and Azure, so those poll every 60 s. GCP's catalog is large (pages of up to 5,000
    /// SKUs) and its spot prices change at most once a month, so it polls hourly. A SkyPilot file check is a stat call.
    /// </remarks>
    public static TimeSpan DefaultInterval(this PriceFeedKind kind) => kind switch
    {
        PriceFeedKind.GcpBilling => TimeSpan.FromHours(1),
        _ => TimeSpan.FromSeconds(60),
    };
}

/// <summary>One configured price feed, validated (see <c>pricing.feeds</c> in docs/configuration.md).</summary>
public sealed record PriceFeedOptions
{
    /// <summary>The name metrics and the API show, unique among feeds.</summary>
    public required string Name { get; init; }

    /// <summary>What the feed polls.</summary>
    public required PriceFeedKind Kind { get; init; }

    /// <summary>Time between polls after a success.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest one poll (all its pages) may take before it counts as failed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The API's base URL: AWS <c>ServiceURL</c> (default: the region's EC2 endpoint), the Azure prices URL (default
    /// <c>https://prices.azure.com/api/retail/prices</c>), the GCP billing API root (default
    /// <c>https://cloudbilling.googleapis.com</c>); null for the default. Unused by <see cref="PriceFeedKind.SkyPilot"/>.
    /// </summary>
    public Uri? Endpoint { get; init; }

    /// <summary>Regions to ask for (AWS, Azure: required) or keep (GCP, SkyPilot: empty keeps all).</summary>
    public IReadOnlyList<string> Regions { get; init; } = [];

    /// <summary>Instance types to ask for or keep; empty keeps all.</summary>
    public IReadOnlyList<string> InstanceTypes { get; init; } = [];

    /// <summary>AWS product descriptions (operating systems) to ask for.</summary>
    public IReadOnlyList<string> ProductDescriptions { get; init; } = ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"];

    /// <summary>AWS: use fixed dummy credentials (for a local test endpoint) instead of the SDK's default chain.</summary>
    public bool DummyCredentials { get; init; }

    /// <summary>Azure: the API version; the preview version is the one that returns savings-plan rates.</summary>
    public string ApiVersion { get; init; } = "2023-01-01-preview";

    /// <summary>GCP: the billing service id (Compute Engine by default).</summary>
    public string Service { get; init; } = "6F81-5844-456A";

    /// <summary>GCP: the API key, read from the environment when the server starts; null sends none.</summary>
    public string? ApiKey { get; init; }

    /// <summary>SkyPilot: <c>vms.csv</c> files, or directories searched for <c>vms*.csv</c>.</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>The wait after <paramref name="failures"/> failed polls in a row: the interval, doubling per failure, at most 8 intervals.</summary>
    public TimeSpan RetryAfter(int failures)
    {
        if (failures <= 0)
            return Interval;
        var factor = 1L << Math.Min(failures - 1, 3);
        return TimeSpan.FromTicks(Interval.Ticks * factor);
    }
}
