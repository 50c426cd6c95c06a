using Burnrate.Configuration;
using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing;

/// <summary>
/// Builds the price book in force from the configuration: the built-in catalog, then the user's catalog files, then
/// SkyPilot catalogs (later sources win for the same key and effective date).
/// </summary>
public static class PricingSetup
{
    /// <param name="config">The configuration (its <c>pricing</c> section).</param>
    /// <param name="logger">Where loaders report what they did with the user's files (rows skipped, prices capped).</param>
    public static (PriceBook Book, IRateCard RateCard) Load(BurnrateConfig config, ILogger? logger = null)
    {
        var builtIn = BuiltInCatalog.Load(); // always the same: nothing worth a note

        var book = builtIn.ToPriceBook();
        if (config.Pricing.Catalogs.Count > 0)
            book.AddRange(CatalogFile.Load(config.Pricing.Catalogs.Select(ExpandHome)).Prices);
        var skypilot = new List<string>();
        foreach (var path in config.Pricing.SkypilotCatalogs.Select(ExpandHome))
        {
            if (File.Exists(path))
                skypilot.Add(path);
            else if (Directory.Exists(path))
                skypilot.AddRange(Directory.EnumerateFiles(path, "vms*.csv", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
            else
                throw new ConfigException($"pricing.skypilot_catalogs: no file or directory at '{path}'.");
        }
        foreach (var group in skypilot.GroupBy(p => Path.GetDirectoryName(p) ?? "", StringComparer.Ordinal))
            book.AddRange(new SkyPilotCatalogLoader(logger).Load([.. group]).Prices);
        return (book, builtIn.RateCard);
    }

    private static string ExpandHome(string path) =>
        path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..])
            : path;
}
