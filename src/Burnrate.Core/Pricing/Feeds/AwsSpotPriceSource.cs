using System.Globalization;
using Amazon;
using Amazon.EC2;
using Amazon.EC2.Model;
using Amazon.Runtime;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// AWS spot prices through AWSSDK.EC2's <c>DescribeSpotPriceHistory</c>, one client per region: the changes since the
/// last poll and, as AWS documents, the last change before the start time (the price in force then), per availability
/// zone. Each change is an entry dated at its <c>Timestamp</c>, for the zone.
/// </summary>
/// <remarks>
/// The SDK does not retry (<c>MaxErrorRetry = 0</c>): the feed's own schedule retries, with backoff, and keeps the last
/// good prices meanwhile. <see cref="PriceFeedOptions.Endpoint"/> sets the SDK's <c>ServiceURL</c> (a VPC endpoint, or a
/// local server in tests, which may use dummy credentials); without it the region's public endpoint and the SDK's
/// default credential chain (environment, profile, instance role) are used.
/// </remarks>
public sealed class AwsSpotPriceSource : IPriceSource, IDisposable
{
    /// <summary>Pages followed in one poll before the answer is taken as runaway.</summary>
    public const int MaxPages = 200;

    private readonly PriceFeedOptions _options;
    private readonly Dictionary<string, AmazonEC2Client> _clients = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>A source for the regions and instance types of <paramref name="options"/>.</summary>
    public AwsSpotPriceSource(PriceFeedOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <inheritdoc />
    public async Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var quotes = new List<PriceQuote>();
        var skipped = 0;
        foreach (var region in _options.Regions)
        {
            var client = Client(region);
            string? next = null;
            var pages = 0;
            do
            {
                var request = new DescribeSpotPriceHistoryRequest
                {
                    StartTime = (since ?? now).UtcDateTime,
                    ProductDescriptions = [.. _options.ProductDescriptions],
                    MaxResults = 1000,
                    NextToken = next,
                };
                if (_options.InstanceTypes.Count > 0)
                    request.InstanceTypes = [.. _options.InstanceTypes];
                var response = await client.DescribeSpotPriceHistoryAsync(request, cancellationToken).ConfigureAwait(false);
                foreach (var item in response.SpotPriceHistory ?? [])
                {
                    if (ToQuote(region, item) is { } quote)
                        quotes.Add(quote);
                    else
                        skipped++;
                }
                next = string.IsNullOrEmpty(response.NextToken) ? null : response.NextToken;
                if (++pages >= MaxPages && next is not null)
                    throw new PriceFeedException(string.Create(CultureInfo.InvariantCulture, $"{region}: more than {MaxPages} pages of spot prices; narrow instance_types"));
            }
            while (next is not null);
        }
        return new FetchedPrices { Quotes = quotes, Skipped = skipped };
    }

    /// <summary>The quote for one <c>SpotPriceHistory</c> item, or null when the filters leave it out.</summary>
    private PriceQuote? ToQuote(string region, SpotPrice item)
    {
        var type = item.InstanceType?.Value ?? "";
        var product = item.ProductDescription?.Value ?? "";
        // The filters are sent, but a server that ignores them must not put Windows prices on Linux nodes.
        if (!_options.ProductDescriptions.Contains(product, StringComparer.Ordinal))
            return null;
        if (_options.InstanceTypes.Count > 0 && !_options.InstanceTypes.Contains(type, StringComparer.OrdinalIgnoreCase))
            return null;
        if (string.IsNullOrEmpty(type) || string.IsNullOrEmpty(item.AvailabilityZone))
            throw new PriceFeedException($"{region}: a SpotPriceHistory item without InstanceType or AvailabilityZone");
        // SpotPrice is a decimal string in $/hour ("0.080000"): read exactly, never through a double.
        if (!decimal.TryParse(item.Price, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var price) || price < 0)
            throw new PriceFeedException($"{region}: SpotPrice '{item.Price}' of {type} in {item.AvailabilityZone} is not a price");
        if (item.Timestamp is not { } stamp)
            throw new PriceFeedException($"{region}: the spot price of {type} in {item.AvailabilityZone} has no Timestamp");
        var utc = stamp.Kind switch
        {
            DateTimeKind.Local => stamp.ToUniversalTime(),
            _ => DateTime.SpecifyKind(stamp, DateTimeKind.Utc),
        };
        return new PriceQuote("aws", region, item.AvailabilityZone, type, CapacityType.Spot, price, new DateTimeOffset(utc), product);
    }

    private AmazonEC2Client Client(string region)
    {
        lock (_lock)
        {
            if (_clients.TryGetValue(region, out var client))
                return client;
            var config = new AmazonEC2Config { MaxErrorRetry = 0, Timeout = _options.Timeout };
            if (_options.Endpoint is { } endpoint)
            {
                config.ServiceURL = endpoint.ToString();
                config.AuthenticationRegion = region;
            }
            else
            {
                config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
            }
            client = _options.DummyCredentials
                ? new AmazonEC2Client(new BasicAWSCredentials("burnrate-dummy-key", "burnrate-dummy-secret"), config)
                : new AmazonEC2Client(config);
            _clients[region] = client;
            return client;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var client in _clients.Values)
                client.Dispose();
            _clients.Clear();
        }
    }
}
