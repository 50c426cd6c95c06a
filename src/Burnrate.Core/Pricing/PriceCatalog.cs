namespace Burnrate.Pricing;

/// <summary>Prices and a rate card read from catalog files (the built-in catalog or a user's own).</summary>
public sealed class PriceCatalog
{
    /// <summary>A catalog of <paramref name="prices"/> and <paramref name="rateCard"/>.</summary>
    public PriceCatalog(IReadOnlyList<InstancePrice> prices, IRateCard rateCard)
    {
        ArgumentNullException.ThrowIfNull(prices);
        ArgumentNullException.ThrowIfNull(rateCard);
        Prices = prices;
        RateCard = rateCard;
    }

    /// <summary>Every instance price of the catalog, effective-dated.</summary>
    public IReadOnlyList<InstancePrice> Prices { get; }

    /// <summary>Egress and storage rates.</summary>
    public IRateCard RateCard { get; }

    /// <summary>A new price book holding every price of the catalog.</summary>
    public PriceBook ToPriceBook() => new(Prices);
}
