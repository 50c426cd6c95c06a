using System.Globalization;
using System.Text;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// The Azure Retail Prices API (no authentication): one query per region with an OData <c>$filter</c> on the service,
/// region, price type and (when configured) VM sizes, following <c>NextPageLink</c> until it is null.
/// </summary>
/// <remarks>
/// The default API version is <c>2023-01-01-preview</c>, the one that returns <c>savingsPlan</c> rates; from that version
/// filter values are case-sensitive, so regions are written as Azure does (<c>eastus</c>) and sizes as
/// <c>Standard_ND96asr_v4</c>. A next-page link to another host is refused.
/// </remarks>
public sealed class AzureRetailPriceSource : IPriceSource
{
    /// <summary>The public API.</summary>
    public static readonly Uri DefaultEndpoint = new("https://prices.azure.com/api/retail/prices");

    /// <summary>Pages followed in one region before the answer is taken as runaway.</summary>
    public const int MaxPages = 500;

    private readonly PriceFeedOptions _options;
    private readonly HttpClient _http;

    /// <summary>A source for <paramref name="options"/> over <paramref name="http"/>.</summary>
    public AzureRetailPriceSource(PriceFeedOptions options, HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(http);
        _options = options;
        _http = http;
    }

    /// <summary>The OData filter for one region: VMs, consumption prices, the configured sizes.</summary>
    public static string Filter(string region, IReadOnlyList<string> instanceTypes)
    {
        ArgumentNullException.ThrowIfNull(instanceTypes);
        var filter = new StringBuilder();
        filter.Append("serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and armRegionName eq '").Append(region).Append('\'');
        if (instanceTypes.Count > 0)
        {
            filter.Append(" and (");
            for (var i = 0; i < instanceTypes.Count; i++)
                filter.Append(i == 0 ? "" : " or ").Append("armSkuName eq '").Append(instanceTypes[i]).Append('\'');
            filter.Append(')');
        }
        return filter.ToString();
    }

    /// <inheritdoc />
    public async Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var endpoint = _options.Endpoint ?? DefaultEndpoint;
        var items = new List<AzureRetailItem>();
        foreach (var region in _options.Regions)
        {
            var url = new Uri(endpoint + (endpoint.Query.Length > 0 ? "&" : "?")
                + "api-version=" + Uri.EscapeDataString(_options.ApiVersion) + "&$filter=" + Uri.EscapeDataString(Filter(region, _options.InstanceTypes)));
            for (var page = 1; ; page++)
            {
                var body = await GetAsync(url, cancellationToken).ConfigureAwait(false);
                var parsed = AzureRetailPrices.ParsePage(body);
                items.AddRange(parsed.Items);
                if (parsed.NextPageLink is null)
                    break;
                if (page >= MaxPages)
                    throw new PriceFeedException(string.Create(CultureInfo.InvariantCulture, $"Azure retail prices: more than {MaxPages} pages for {region}; narrow instance_types"));
                if (!Uri.TryCreate(parsed.NextPageLink, UriKind.Absolute, out var next)
                    || !string.Equals(next.Host, endpoint.Host, StringComparison.OrdinalIgnoreCase) || next.Port != endpoint.Port || next.Scheme != endpoint.Scheme)
                    throw new PriceFeedException($"Azure retail prices: NextPageLink '{parsed.NextPageLink}' is not on {endpoint.Scheme}://{endpoint.Authority}");
                url = next;
            }
        }
        var (quotes, plans, skipped) = AzureRetailPrices.ToPrices(items);
        return new FetchedPrices { Quotes = quotes, SavingsPlans = plans, Skipped = skipped };
    }

    private async Task<byte[]> GetAsync(Uri url, CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new PriceFeedException(string.Create(CultureInfo.InvariantCulture, $"Azure retail prices: HTTP {(int)response.StatusCode} {response.ReasonPhrase} from {url.Authority}"));
        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }
}
