using System.Globalization;
using System.Text.Json;

namespace Burnrate.Pricing.Feeds;

/// <summary>One item of an Azure Retail Prices API page (the fields Burnrate uses).</summary>
/// <param name="CurrencyCode">ISO currency of the prices.</param>
/// <param name="RetailPrice">The list price per <paramref name="UnitOfMeasure"/>, exact.</param>
/// <param name="ArmRegionName">Region, e.g. <c>eastus</c>.</param>
/// <param name="ArmSkuName">The VM size, e.g. <c>Standard_D2s_v3</c>.</param>
/// <param name="SkuName">Meter SKU name, e.g. <c>D2s v3 Spot</c>.</param>
/// <param name="MeterName">Meter name.</param>
/// <param name="MeterId">Meter id.</param>
/// <param name="ProductName">Product, e.g. <c>Virtual Machines DSv3 Series Windows</c>.</param>
/// <param name="ServiceName">Service, e.g. <c>Virtual Machines</c>.</param>
/// <param name="UnitOfMeasure">e.g. <c>1 Hour</c>.</param>
/// <param name="Type"><c>Consumption</c>, <c>DevTestConsumption</c> or <c>Reservation</c>.</param>
/// <param name="TierMinimumUnits">The tier's start; 0 for untiered prices.</param>
/// <param name="EffectiveStartDate">When the price took effect.</param>
/// <param name="SavingsPlan">Savings-plan rates (only with the preview API version): term and hourly price.</param>
public sealed record AzureRetailItem(
    string CurrencyCode, decimal RetailPrice, string ArmRegionName, string ArmSkuName, string SkuName, string MeterName, string MeterId,
    string ProductName, string ServiceName, string UnitOfMeasure, string Type, decimal TierMinimumUnits, DateTimeOffset EffectiveStartDate,
    IReadOnlyList<(string Term, decimal RetailPrice)> SavingsPlan);

/// <summary>One page of the Azure Retail Prices API: its items and the link to the next page (null on the last).</summary>
public sealed record AzureRetailPage(IReadOnlyList<AzureRetailItem> Items, string? NextPageLink);

/// <summary>
/// Reads Azure Retail Prices API pages (<c>{"BillingCurrency", "Items": [...], "NextPageLink", "Count"}</c>) and turns
/// their VM items into on-demand and spot prices.
/// </summary>
/// <remarks>
/// Prices are JSON numbers read as <see cref="decimal"/> from their text (exact, never through a double). Kept: type
/// <c>Consumption</c>, service <c>Virtual Machines</c>, unit <c>1 Hour</c>, untiered, USD, Linux (a product name ending
/// in <c>Windows</c> is the Windows meter). A SKU name ending in <c>Spot</c> is the spot price; one ending in
/// <c>Low Priority</c> (the older Batch/VMSS meter) is used as spot only where the region and size have no Spot meter.
/// </remarks>
public static class AzureRetailPrices
{
    /// <summary>Parses one page.</summary>
    /// <exception cref="PriceFeedException">The body is not a Retail Prices page; the message says what is wrong.</exception>
    public static AzureRetailPage ParsePage(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Items", out var items) || items.ValueKind != JsonValueKind.Array)
                throw new PriceFeedException("Azure retail prices: the body has no Items array");
            var list = new List<AzureRetailItem>(items.GetArrayLength());
            var index = 0;
            foreach (var item in items.EnumerateArray())
            {
                list.Add(ReadItem(item, index));
                index++;
            }
            string? next = null;
            if (root.TryGetProperty("NextPageLink", out var link) && link.ValueKind == JsonValueKind.String)
                next = link.GetString();
            return new AzureRetailPage(list, string.IsNullOrEmpty(next) ? null : next);
        }
        catch (JsonException e)
        {
            throw new PriceFeedException($"Azure retail prices: the body is not JSON ({e.Message})", e);
        }
    }

    private static AzureRetailItem ReadItem(JsonElement item, int index)
    {
        if (item.ValueKind != JsonValueKind.Object)
            throw Bad(index, "is not an object");
        string Text(string name) => item.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        decimal Number(string name, bool required)
        {
            if (!item.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
                return required ? throw Bad(index, $"has no {name}") : 0m;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out var d))
                throw Bad(index, $"{name} is not a number");
            return d;
        }
        var price = Number("retailPrice", required: true);
        if (price < 0)
            throw Bad(index, "retailPrice is negative");
        var startText = Text("effectiveStartDate");
        if (!DateTimeOffset.TryParse(startText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var start))
            throw Bad(index, $"effectiveStartDate '{startText}' is not a date");
        var plans = new List<(string, decimal)>();
        if (item.TryGetProperty("savingsPlan", out var plan) && plan.ValueKind == JsonValueKind.Array)
        {
            foreach (var p in plan.EnumerateArray())
            {
                if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("retailPrice", out var pp) || pp.ValueKind != JsonValueKind.Number || !pp.TryGetDecimal(out var planPrice))
                    throw Bad(index, "has a savingsPlan entry without a numeric retailPrice");
                var term = p.TryGetProperty("term", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
                plans.Add((term, planPrice));
            }
        }
        return new AzureRetailItem(Text("currencyCode"), price, Text("armRegionName"), Text("armSkuName"), Text("skuName"), Text("meterName"),
            Text("meterId"), Text("productName"), Text("serviceName"), Text("unitOfMeasure"), Text("type"), Number("tierMinimumUnits", required: false),
            start, plans);
    }

    private static PriceFeedException Bad(int index, string what) =>
        new(string.Create(CultureInfo.InvariantCulture, $"Azure retail prices: Items[{index}] {what}"));

    /// <summary>
    /// The on-demand and spot prices, and the savings-plan rates, of <paramref name="items"/> (all pages of a poll); the
    /// count of items left out (Windows, dev/test, reservations, other services or units).
    /// </summary>
    public static (IReadOnlyList<PriceQuote> Quotes, IReadOnlyList<SavingsPlanPrice> SavingsPlans, int Skipped) ToPrices(IEnumerable<AzureRetailItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var quotes = new List<PriceQuote>();
        var lowPriority = new List<PriceQuote>();
        var plans = new List<SavingsPlanPrice>();
        var skipped = 0;
        foreach (var item in items)
        {
            if (item.Type != "Consumption" || item.ServiceName != "Virtual Machines" || item.UnitOfMeasure != "1 Hour" || item.TierMinimumUnits != 0
                || !string.Equals(item.CurrencyCode, "USD", StringComparison.OrdinalIgnoreCase)
                || item.ProductName.EndsWith(" Windows", StringComparison.Ordinal)
                || item.ArmSkuName.Length == 0 || item.ArmRegionName.Length == 0)
            {
                skipped++;
                continue;
            }
            var capacity = CapacityType.OnDemand;
            var isLowPriority = false;
            if (item.SkuName.EndsWith(" Spot", StringComparison.Ordinal))
                capacity = CapacityType.Spot;
            else if (item.SkuName.EndsWith(" Low Priority", StringComparison.Ordinal))
                (capacity, isLowPriority) = (CapacityType.Spot, true);
            var quote = new PriceQuote("azure", item.ArmRegionName, "", item.ArmSkuName, capacity, item.RetailPrice, item.EffectiveStartDate, item.MeterId);
            (isLowPriority ? lowPriority : quotes).Add(quote);
            if (capacity == CapacityType.OnDemand)
            {
                foreach (var (term, price) in item.SavingsPlan)
                    plans.Add(new SavingsPlanPrice("azure", item.ArmRegionName, item.ArmSkuName, term, price, item.EffectiveStartDate));
            }
        }
        foreach (var low in lowPriority)
        {
            if (quotes.Exists(q => q.Capacity == CapacityType.Spot
                    && string.Equals(q.Region, low.Region, StringComparison.OrdinalIgnoreCase)
                    && string.Equals(q.InstanceType, low.InstanceType, StringComparison.OrdinalIgnoreCase)))
                skipped++; // a Spot meter exists: it is the price a spot VM pays
            else
                quotes.Add(low);
        }
        return (quotes, plans, skipped);
    }
}
