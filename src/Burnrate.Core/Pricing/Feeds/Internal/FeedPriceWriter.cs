namespace Burnrate.Pricing.Feeds.Internal;

/// <summary>
/// Writes what a feed read into the price book, as effective-dated entries: only what changes the answer, and never
/// behind a newer entry of the same key.
/// </summary>
/// <remarks>
/// An API's price carries the date the API says it took effect (AWS: the change's timestamp; Azure:
/// <c>effectiveStartDate</c>; GCP: <c>effectiveTime</c>; SkyPilot: the file's last write). It goes in at that date,
/// unless the book already holds an entry of the same key (provider, region, zone, instance type, capacity) dated as
/// late or later, from a catalog or from an earlier poll: then the price takes effect at the poll's instant, when
/// Burnrate learned it, so a stale date never hides it behind the built-in catalog. Minutes already in the ledger keep
/// the price they were rated at; the next minute rated after the entry's date uses it.
/// </remarks>
internal sealed class FeedPriceWriter
{
    private readonly IPriceBook _book;
    private readonly IReadOnlyList<string> _instanceTypes;

    public FeedPriceWriter(IPriceBook book, string feedName, IReadOnlyList<string> instanceTypes)
    {
        _book = book;
        Source = "feed:" + feedName;
        _instanceTypes = instanceTypes;
    }

    /// <summary>The source every entry of this feed carries (<c>feed:NAME</c>, then what in the response it came from).</summary>
    public string Source { get; }

    /// <summary>Writes <paramref name="fetched"/>; returns how many entries were added to the book.</summary>
    public int Write(FetchedPrices fetched, DateTimeOffset now)
    {
        var added = 0;
        // Oldest first, so a poll holding a key's history (AWS) lays it down in order.
        foreach (var quote in fetched.Quotes.OrderBy(static q => q.EffectiveFrom))
        {
            if (Write(FromQuote(quote), now))
                added++;
        }
        foreach (var entry in fetched.Entries.OrderBy(static e => e.EffectiveFrom))
        {
            if (Write(entry with { Source = Source + ":" + entry.Source }, now))
                added++;
        }
        // One snapshot for all GPU quotes: repricing changes only the GPU part, so the machine part read here stays right.
        var inForce = fetched.GpuQuotes.Count > 0 ? _book.InForce(now) : [];
        foreach (var quote in fetched.GpuQuotes.OrderBy(static q => q.EffectiveFrom))
        {
            foreach (var entry in inForce)
            {
                if (entry.GpuCount <= 0 || entry.Capacity != quote.Capacity
                    || !string.Equals(entry.Provider, quote.Provider, StringComparison.OrdinalIgnoreCase)
                    || !string.Equals(entry.Region, quote.Region, StringComparison.OrdinalIgnoreCase)
                    || !string.Equals(entry.GpuModel, quote.GpuModel, StringComparison.OrdinalIgnoreCase)
                    || (_instanceTypes.Count > 0 && !_instanceTypes.Contains(entry.InstanceType, StringComparer.OrdinalIgnoreCase)))
                    continue;
                // The GPUs are billed apart: keep the machine part, put the new accelerator price on each GPU.
                var machine = entry.PricePerHour - (entry.GpuPricePerHour * entry.GpuCount);
                var (price, gpu) = PriceSplit.PricedApart(Math.Max(machine, 0m), quote.PricePerGpuHour, entry.GpuCount);
                var repriced = entry with
                {
                    PricePerHour = price,
                    GpuPricePerHour = gpu,
                    EffectiveFrom = quote.EffectiveFrom,
                    Source = Source + (quote.Detail.Length > 0 ? ":" + quote.Detail : ""),
                };
                if (Write(repriced, now))
                    added++;
            }
        }
        return added;
    }

    /// <summary>An entry for <paramref name="quote"/>, its GPU split taken from the catalog's entry for the instance type.</summary>
    private InstancePrice FromQuote(PriceQuote quote)
    {
        var template = _book.Find(quote.Provider, quote.Region, quote.Zone, quote.InstanceType, quote.Capacity, DateTimeOffset.MaxValue)
            ?? _book.Find(quote.Provider, quote.Region, quote.Zone, quote.InstanceType, CapacityType.OnDemand, DateTimeOffset.MaxValue);
        decimal gpuPrice = 0, memory = 0;
        int gpus = 0, vcpus = 0;
        var model = "";
        if (template is not null && template.PricePerHour > 0)
        {
            // A spot move moves the GPU part and the machine part alike (as a price_changed event does).
            gpuPrice = PriceSplit.Round(template.GpuPricePerHour * quote.PricePerHour / template.PricePerHour);
            gpus = template.GpuCount;
            vcpus = template.VCpus;
            memory = template.MemoryGiB;
            model = template.GpuModel;
        }
        return new InstancePrice(quote.Provider, quote.Region, quote.Zone, quote.InstanceType, quote.Capacity, quote.PricePerHour,
            gpuPrice, gpus, model, vcpus, memory, quote.EffectiveFrom, Source + (quote.Detail.Length > 0 ? ":" + quote.Detail : ""));
    }

    private bool Write(InstancePrice candidate, DateTimeOffset now)
    {
        var zone = candidate.Zone ?? "";
        var effective = candidate.EffectiveFrom;
        var latest = _book.Find(candidate.Provider, candidate.Region, zone, candidate.InstanceType, candidate.Capacity, DateTimeOffset.MaxValue);
        if (latest is not null && SameKey(latest, zone) && latest.EffectiveFrom >= effective && now > effective)
            effective = now; // never behind a newer entry of the same key: in force from when it was learned
        var inForce = _book.Find(candidate.Provider, candidate.Region, zone, candidate.InstanceType, candidate.Capacity, effective);
        if (inForce is not null && SameKey(inForce, zone) && inForce.PricePerHour == candidate.PricePerHour && inForce.GpuPricePerHour == candidate.GpuPricePerHour)
            return false; // the same price is already in force then
        _book.Add(candidate with { EffectiveFrom = effective });
        return true;
    }

    /// <summary>Whether <paramref name="entry"/>, found for a key with <paramref name="zone"/>, is that key's own (not the region's under a zone).</summary>
    private static bool SameKey(InstancePrice entry, string zone) => string.Equals(entry.Zone ?? "", zone, StringComparison.OrdinalIgnoreCase);
}
