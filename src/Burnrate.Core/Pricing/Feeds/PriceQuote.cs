namespace Burnrate.Pricing.Feeds;

/// <summary>
/// One instance price as a price API states it: the whole instance, $/hour, without the GPU split (the feed takes the
/// split from the catalog entry of the same instance type).
/// </summary>
/// <param name="Provider">Lower-case provider: <c>aws</c>, <c>azure</c>, <c>gcp</c>.</param>
/// <param name="Region">Provider region.</param>
/// <param name="Zone">Availability zone, or empty for a region-wide price.</param>
/// <param name="InstanceType">Provider instance type (AWS <c>InstanceType</c>, Azure <c>armSkuName</c>).</param>
/// <param name="Capacity">On-demand or spot.</param>
/// <param name="PricePerHour">$/hour, exact as the API wrote it.</param>
/// <param name="EffectiveFrom">When the API says the price took effect.</param>
/// <param name="Detail">What in the response it came from (a meter or SKU id), for tracing.</param>
public sealed record PriceQuote(
    string Provider, string Region, string Zone, string InstanceType, CapacityType Capacity, decimal PricePerHour, DateTimeOffset EffectiveFrom, string Detail = "");

/// <summary>
/// One GPU's price where the provider bills GPUs apart from the machine (GCP accelerator SKUs): it reprices the GPU part
/// of every instance of that GPU model in the region.
/// </summary>
/// <param name="Provider">Lower-case provider (<c>gcp</c>).</param>
/// <param name="Region">Provider region.</param>
/// <param name="GpuModel">GPU model as the catalogs name it (<c>A100</c>, <c>A100-80GB</c>, <c>H100</c>).</param>
/// <param name="Capacity">On-demand or spot (GCP <c>Preemptible</c>).</param>
/// <param name="PricePerGpuHour">$/hour of one GPU, exact.</param>
/// <param name="EffectiveFrom">When the API says the price took effect.</param>
/// <param name="Detail">The SKU id.</param>
public sealed record GpuPriceQuote(
    string Provider, string Region, string GpuModel, CapacityType Capacity, decimal PricePerGpuHour, DateTimeOffset EffectiveFrom, string Detail = "");

/// <summary>A savings-plan rate an API reports for an instance type (Azure's preview API version).</summary>
/// <param name="Provider">Lower-case provider.</param>
/// <param name="Region">Provider region.</param>
/// <param name="InstanceType">Provider instance type.</param>
/// <param name="Term">The commitment term as the API writes it (<c>1 Year</c>, <c>3 Years</c>).</param>
/// <param name="PricePerHour">$/hour under the plan, exact.</param>
/// <param name="EffectiveFrom">When the API says the rate took effect.</param>
public sealed record SavingsPlanPrice(string Provider, string Region, string InstanceType, string Term, decimal PricePerHour, DateTimeOffset EffectiveFrom);

/// <summary>What one successful poll read.</summary>
public sealed class FetchedPrices
{
    /// <summary>Nothing changed since the last poll (a SkyPilot file not touched): the book is left as it is.</summary>
    public static FetchedPrices Unchanged { get; } = new() { IsUnchanged = true };

    /// <summary>Whether the source had nothing new to say.</summary>
    public bool IsUnchanged { get; private init; }

    /// <summary>Instance prices without the GPU split.</summary>
    public IReadOnlyList<PriceQuote> Quotes { get; init; } = [];

    /// <summary>Per-GPU prices.</summary>
    public IReadOnlyList<GpuPriceQuote> GpuQuotes { get; init; } = [];

    /// <summary>Complete entries (SkyPilot catalogs carry the GPU split themselves).</summary>
    public IReadOnlyList<InstancePrice> Entries { get; init; } = [];

    /// <summary>Savings-plan rates seen.</summary>
    public IReadOnlyList<SavingsPlanPrice> SavingsPlans { get; init; } = [];

    /// <summary>Prices the response held that were not used (Windows, dev/test, reservations, other units), for the status.</summary>
    public int Skipped { get; init; }

    /// <summary>How many prices the poll read.</summary>
    public int Count => Quotes.Count + GpuQuotes.Count + Entries.Count;
}

/// <summary>Where a feed reads its prices: one implementation per <see cref="PriceFeedKind"/>.</summary>
public interface IPriceSource
{
    /// <summary>Reads the prices in force now (and, for AWS, the changes since <paramref name="since"/>).</summary>
    /// <param name="now">The poll's instant.</param>
    /// <param name="since">The last successful poll's instant, or null on the first poll.</param>
    /// <param name="cancellationToken">Cancelled at the feed's timeout or shutdown.</param>
    /// <exception cref="PriceFeedException">The API answered with an error or a body that cannot be read.</exception>
    Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken);
}

/// <summary>A price API answered with an error or a body that cannot be read; the message says which, never a secret.</summary>
public sealed class PriceFeedException : Exception
{
    /// <summary>A failure described by <paramref name="message"/>.</summary>
    public PriceFeedException(string message) : base(message) { }

    /// <summary>A failure described by <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public PriceFeedException(string message, Exception inner) : base(message, inner) { }

    /// <summary>A failure without a message.</summary>
    public PriceFeedException() { }
}
