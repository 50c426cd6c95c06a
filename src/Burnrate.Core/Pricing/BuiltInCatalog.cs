using Burnrate.Pricing.Internal;
using Microsoft.Extensions.Logging;

namespace Burnrate.Pricing;

/// <summary>
/// The catalog shipped inside Burnrate.Core: public list prices of the GPU instance types of AWS, GCP, Azure,
/// Lambda, Nebius, RunPod and CoreWeave, and their egress and storage rates (files under <c>Pricing/Catalog/</c>).
/// </summary>
public static class BuiltInCatalog
{
    internal const string ResourcePrefix = "Burnrate.Pricing.Catalog.";

    /// <summary>The names of the embedded catalog files, e.g. <c>aws.yaml</c>, in load order.</summary>
    public static IReadOnlyList<string> FileNames { get; } = ListFiles();

    /// <summary>Reads every embedded catalog file.</summary>
    /// <exception cref="CatalogFormatException">An embedded file is broken (a build defect; tests catch it).</exception>
    public static PriceCatalog Load(ILogger? logger = null)
    {
        var assembly = typeof(BuiltInCatalog).Assembly;
        var builder = new CatalogFile.Builder();
        foreach (var name in FileNames)
        {
            using var stream = assembly.GetManifestResourceStream(ResourcePrefix + name)
                ?? throw new InvalidOperationException($"Embedded catalog {name} is missing.");
            using var reader = new StreamReader(stream);
            builder.Read(reader, "builtin:" + name);
        }

        var catalog = builder.Build();
        if (logger is not null)
            PricingLog.BuiltInCatalogLoaded(logger, catalog.Prices.Count, FileNames.Count);
        return catalog;
    }

    private static string[] ListFiles()
    {
        var names = new List<string>();
        foreach (var resource in typeof(BuiltInCatalog).Assembly.GetManifestResourceNames())
        {
            if (resource.StartsWith(ResourcePrefix, StringComparison.Ordinal) && resource.EndsWith(".yaml", StringComparison.Ordinal))
                names.Add(resource[ResourcePrefix.Length..]);
        }

        names.Sort(StringComparer.Ordinal);
        return [.. names];
    }
}
