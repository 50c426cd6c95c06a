using System.Globalization;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// The GCP Cloud Billing Catalog API: <c>GET {endpoint}/v1/services/{service}/skus?currencyCode=USD&amp;pageSize=5000</c>
/// with the API key, following <c>nextPageToken</c>; the GPU SKUs reprice the GPU part of the catalog's GCP instances.
/// </summary>
/// <remarks>The key travels in the query string as Google documents; it is never written into an error or a log line.</remarks>
public sealed class GcpBillingPriceSource : IPriceSource
{
    /// <summary>The public API root.</summary>
    public static readonly Uri DefaultEndpoint = new("https://cloudbilling.googleapis.com");

    /// <summary>Pages followed in one poll before the answer is taken as runaway.</summary>
    public const int MaxPages = 200;

    private readonly PriceFeedOptions _options;
    private readonly HttpClient _http;

    /// <summary>A source for <paramref name="options"/> over <paramref name="http"/>.</summary>
    public GcpBillingPriceSource(PriceFeedOptions options, HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(http);
        _options = options;
        _http = http;
    }

    /// <inheritdoc />
    public async Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var root = (_options.Endpoint ?? DefaultEndpoint).ToString().TrimEnd('/');
        var skus = new List<GcpSku>();
        string? token = null;
        for (var page = 1; ; page++)
        {
            var query = "currencyCode=USD&pageSize=5000"
                + (_options.ApiKey is null ? "" : "&key=" + Uri.EscapeDataString(_options.ApiKey))
                + (token is null ? "" : "&pageToken=" + Uri.EscapeDataString(token));
            var url = new Uri($"{root}/v1/services/{Uri.EscapeDataString(_options.Service)}/skus?{query}");
            using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new PriceFeedException(string.Create(CultureInfo.InvariantCulture, $"GCP billing catalog: HTTP {(int)response.StatusCode} {response.ReasonPhrase} from {url.Authority}"));
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            var parsed = GcpBillingCatalog.ParsePage(body);
            skus.AddRange(parsed.Skus);
            token = parsed.NextPageToken;
            if (token is null)
                break;
            if (page >= MaxPages)
                throw new PriceFeedException(string.Create(CultureInfo.InvariantCulture, $"GCP billing catalog: more than {MaxPages} pages of SKUs"));
        }
        var (quotes, skipped) = GcpBillingCatalog.ToGpuPrices(skus, _options.Regions);
        return new FetchedPrices { GpuQuotes = quotes, Skipped = skipped };
    }
}
