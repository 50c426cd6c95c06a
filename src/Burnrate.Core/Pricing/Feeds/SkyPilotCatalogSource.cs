using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing.Feeds;

/// <summary>
/// SkyPilot <c>vms.csv</c> catalogs on disk (for example <c>~/.sky/catalogs/v7</c>, which <c>sky</c> refreshes), read
/// again whenever a file's size or last write time changes; the prices are dated at the file's last write.
/// </summary>
public sealed class SkyPilotCatalogSource : IPriceSource
{
    private readonly PriceFeedOptions _options;
    private readonly ILogger? _logger;
    private Dictionary<string, (DateTime Written, long Length)>? _seen;

    /// <summary>A source for the paths of <paramref name="options"/>; the loader logs what it repaired to <paramref name="logger"/>.</summary>
    public SkyPilotCatalogSource(PriceFeedOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _logger = logger;
    }

    /// <inheritdoc />
    public Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var files = new List<string>();
        foreach (var configured in _options.Paths)
        {
            var path = configured.StartsWith("~/", StringComparison.Ordinal)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), configured[2..])
                : configured;
            if (File.Exists(path))
                files.Add(Path.GetFullPath(path));
            else if (Directory.Exists(path))
                files.AddRange(Directory.EnumerateFiles(path, "vms*.csv", SearchOption.AllDirectories).Select(Path.GetFullPath).Order(StringComparer.Ordinal));
            else
                throw new PriceFeedException($"SkyPilot catalog: no file or directory at '{configured}'");
        }
        var seen = files.Distinct(StringComparer.Ordinal).ToDictionary(f => f, f =>
        {
            var info = new FileInfo(f);
            return (info.LastWriteTimeUtc, info.Length);
        }, StringComparer.Ordinal);
        if (_seen is not null && _seen.Count == seen.Count && seen.All(p => _seen.TryGetValue(p.Key, out var old) && old == p.Value))
            return Task.FromResult(FetchedPrices.Unchanged);

        var entries = new List<InstancePrice>();
        try
        {
            // One load per directory, so GCP host rows join the accelerator rows beside them (as pricing.skypilot_catalogs).
            foreach (var group in seen.Keys.GroupBy(p => Path.GetDirectoryName(p) ?? "", StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                foreach (var price in new SkyPilotCatalogLoader(_logger).Load([.. group]).Prices)
                {
                    if ((_options.Regions.Count == 0 || _options.Regions.Contains(price.Region, StringComparer.OrdinalIgnoreCase))
                        && (_options.InstanceTypes.Count == 0 || _options.InstanceTypes.Contains(price.InstanceType, StringComparer.OrdinalIgnoreCase)))
                        entries.Add(price);
                }
            }
        }
        catch (CatalogFormatException e)
        {
            throw new PriceFeedException("SkyPilot catalog: " + e.Message, e);
        }
        catch (IOException e)
        {
            throw new PriceFeedException("SkyPilot catalog: " + e.Message, e);
        }
        _seen = seen; // only once read: a file that failed is read again on the next poll
        return Task.FromResult(new FetchedPrices { Entries = entries });
    }
}
