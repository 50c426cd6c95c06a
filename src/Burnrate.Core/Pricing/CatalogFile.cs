using Burnrate.Pricing.Internal;

namespace Burnrate.Pricing;

/// <summary>Reads catalog files in the Burnrate catalog format (see docs/pricing.md): a user's own prices and rates.</summary>
public static class CatalogFile
{
    /// <summary>Reads one catalog file.</summary>
    /// <exception cref="CatalogFormatException">The file is not a valid catalog; the message names file, line and problem.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    public static PriceCatalog Load(string path) => Load([path]);

    /// <summary>
    /// Reads several catalog files into one catalog. Rates given by a later file override the same rate of an earlier
    /// one; prices are all kept (a later price with the same key and date wins once put in a <see cref="PriceBook"/>).
    /// </summary>
    public static PriceCatalog Load(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var builder = new Builder();
        foreach (var path in paths)
        {
            using var reader = new StreamReader(path);
            builder.Read(reader, path);
        }

        return builder.Build();
    }

    /// <summary>Reads catalog text; <paramref name="fileName"/> names it in errors and in each price's source.</summary>
    public static PriceCatalog Parse(string text, string fileName)
    {
        var builder = new Builder();
        builder.Read(new StringReader(text), fileName);
        return builder.Build();
    }

    /// <summary>Accumulates prices and rates over several files.</summary>
    internal sealed class Builder
    {
        private readonly List<InstancePrice> _prices = [];
        private readonly Dictionary<string, RateCardTable.Rates> _rates = new(StringComparer.OrdinalIgnoreCase);

        public void Read(TextReader text, string fileName) => new CatalogYamlReader(fileName, _prices, _rates).Read(text);

        public PriceCatalog Build() => new(_prices.ToArray(), new RateCardTable(_rates));
    }
}
