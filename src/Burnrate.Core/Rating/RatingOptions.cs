namespace Burnrate.Rating;

/// <summary>Settings of the rating engine (config section <c>rating:</c>).</summary>
public sealed class RatingOptions
{
    /// <summary>
    /// How long a node known only from samples stays alive after its last sample: gaps up to this count as alive;
    /// a longer gap ends the node at its last sample and a new sample starts it again.
    /// </summary>
    public TimeSpan Staleness { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long after a minute ends the engine waits for late events before rating it.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A spot node whose spot price is unknown is priced at the on-demand price of its type (the upper bound, so
    /// spend is never under-reported); false prices it at zero and marks it unpriced.
    /// </summary>
    public bool SpotFallsBackToOnDemand { get; init; } = true;

    /// <summary>Commitments and discounts live rates apply (config section <c>commitments:</c>).</summary>
    public Pricing.Terms.PricingTerms Terms { get; init; } = Pricing.Terms.PricingTerms.None;

    /// <summary>How the cost series on <c>/metrics</c> are labelled and capped (config section <c>metrics:</c>).</summary>
    public CostSeriesOptions CostSeries { get; init; } = new();
}
