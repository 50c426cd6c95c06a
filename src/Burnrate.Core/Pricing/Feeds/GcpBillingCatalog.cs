using System.Globalization;
using System.Text.Json;

namespace Burnrate.Pricing.Feeds;

/// <summary>One SKU of the GCP Cloud Billing Catalog API (the fields Burnrate uses), its price from the newest pricing info.</summary>
/// <param name="SkuId">e.g. <c>039F-D0DA-4055</c>.</param>
/// <param name="Description">e.g. <c>Nvidia Tesla A100 GPU running in Americas</c>.</param>
/// <param name="ResourceGroup"><c>category.resourceGroup</c>: <c>GPU</c>, <c>CPU</c>, <c>RAM</c>, ...</param>
/// <param name="UsageType"><c>category.usageType</c>: <c>OnDemand</c>, <c>Preemptible</c>, <c>Commit1Yr</c>, ...</param>
/// <param name="ServiceRegions">Regions the SKU applies to.</param>
/// <param name="UsageUnit"><c>pricingExpression.usageUnit</c>, e.g. <c>h</c>.</param>
/// <param name="UnitPrice">Price per usage unit of the first tier, exact: <c>units + nanos / 10^9</c>.</param>
/// <param name="CurrencyCode">Currency of the price.</param>
/// <param name="EffectiveTime">The pricing info's <c>effectiveTime</c>.</param>
public sealed record GcpSku(
    string SkuId, string Description, string ResourceGroup, string UsageType, IReadOnlyList<string> ServiceRegions, string UsageUnit, decimal UnitPrice,
    string CurrencyCode, DateTimeOffset EffectiveTime);

/// <summary>One page of SKUs and the token of the next (null on the last).</summary>
public sealed record GcpSkuPage(IReadOnlyList<GcpSku> Skus, string? NextPageToken);

/// <summary>
/// Reads GCP Cloud Billing Catalog <c>services/*/skus</c> pages and turns the GPU SKUs into per-GPU prices.
/// </summary>
/// <remarks>
/// A price is a <c>Money</c>: <c>units</c> (an int64, written as a JSON string) plus <c>nanos</c> (billionths, same sign),
/// combined as an exact decimal. Only GPU SKUs (<c>resourceGroup</c> <c>GPU</c>, usage <c>OnDemand</c> or
/// <c>Preemptible</c> = spot, unit <c>h</c>) are used: GCP bills a GPU machine as the machine plus its accelerators, so a
/// GPU SKU reprices the GPU part of each catalog instance with that GPU in the SKU's regions; the machine part (CPU and
/// RAM SKUs) stays the catalog's.
/// </remarks>
public static class GcpBillingCatalog
{
    /// <summary>Parses one page.</summary>
    /// <exception cref="PriceFeedException">The body is not a SKU page; the message says what is wrong.</exception>
    public static GcpSkuPage ParsePage(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new PriceFeedException("GCP billing catalog: the body is not a JSON object");
            var skus = new List<GcpSku>();
            if (root.TryGetProperty("skus", out var array))
            {
                if (array.ValueKind != JsonValueKind.Array)
                    throw new PriceFeedException("GCP billing catalog: skus is not an array");
                var index = 0;
                foreach (var sku in array.EnumerateArray())
                {
                    if (ReadSku(sku, index) is { } read)
                        skus.Add(read);
                    index++;
                }
            }
            else if (!root.TryGetProperty("nextPageToken", out _))
            {
                throw new PriceFeedException("GCP billing catalog: the body has no skus array");
            }
            var next = root.TryGetProperty("nextPageToken", out var token) && token.ValueKind == JsonValueKind.String ? token.GetString() : null;
            return new GcpSkuPage(skus, string.IsNullOrEmpty(next) ? null : next);
        }
        catch (JsonException e)
        {
            throw new PriceFeedException($"GCP billing catalog: the body is not JSON ({e.Message})", e);
        }
    }

    /// <summary>The exact value of a GCP <c>Money</c>: <paramref name="units"/> whole units plus <paramref name="nanos"/> billionths.</summary>
    /// <exception cref="PriceFeedException">nanos is outside ±999,999,999 or its sign differs from units'.</exception>
    public static decimal ToDecimal(long units, int nanos)
    {
        if (nanos is < -999_999_999 or > 999_999_999 || (units > 0 && nanos < 0) || (units < 0 && nanos > 0))
            throw new PriceFeedException(string.Create(CultureInfo.InvariantCulture, $"GCP billing catalog: units {units} and nanos {nanos} are not a valid Money"));
        return units + (nanos / 1_000_000_000m);
    }

    private static GcpSku? ReadSku(JsonElement sku, int index)
    {
        if (sku.ValueKind != JsonValueKind.Object)
            throw Bad(index, "is not an object");
        static string Text(JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        var category = sku.TryGetProperty("category", out var c) ? c : default;
        var regions = new List<string>();
        if (sku.TryGetProperty("serviceRegions", out var r) && r.ValueKind == JsonValueKind.Array)
        {
            foreach (var region in r.EnumerateArray())
            {
                if (region.ValueKind == JsonValueKind.String)
                    regions.Add(region.GetString()!);
            }
        }
        if (!sku.TryGetProperty("pricingInfo", out var infos) || infos.ValueKind != JsonValueKind.Array || infos.GetArrayLength() == 0)
            return null; // a SKU without a price (rare; free or retired): nothing to use
        // The newest pricing info is the one in force.
        JsonElement info = default;
        var effective = DateTimeOffset.MinValue;
        foreach (var i in infos.EnumerateArray())
        {
            var text = Text(i, "effectiveTime");
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var when))
                throw Bad(index, $"pricingInfo effectiveTime '{text}' is not a time");
            if (when >= effective)
                (info, effective) = (i, when);
        }
        if (!info.TryGetProperty("pricingExpression", out var expression) || expression.ValueKind != JsonValueKind.Object)
            throw Bad(index, "has no pricingExpression");
        if (!expression.TryGetProperty("tieredRates", out var tiers) || tiers.ValueKind != JsonValueKind.Array || tiers.GetArrayLength() == 0)
            throw Bad(index, "has no tieredRates");
        // The first tier (startUsageAmount 0) is the price of the first unit; GPU SKUs have only that one.
        var tier = tiers[0];
        if (!tier.TryGetProperty("unitPrice", out var money) || money.ValueKind != JsonValueKind.Object)
            throw Bad(index, "has a tier without unitPrice");
        long units = 0;
        if (money.TryGetProperty("units", out var u))
        {
            // int64 travels as a JSON string in Google's APIs; accept a bare number too.
            var ok = u.ValueKind switch
            {
                JsonValueKind.String => long.TryParse(u.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out units),
                JsonValueKind.Number => u.TryGetInt64(out units),
                _ => false,
            };
            if (!ok)
                throw Bad(index, $"unitPrice.units '{u}' is not an integer");
        }
        var nanos = 0;
        if (money.TryGetProperty("nanos", out var n) && (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out nanos)))
            throw Bad(index, $"unitPrice.nanos '{n}' is not an integer");
        decimal price;
        try
        {
            price = ToDecimal(units, nanos);
        }
        catch (PriceFeedException e)
        {
            throw Bad(index, e.Message);
        }
        return new GcpSku(Text(sku, "skuId"), Text(sku, "description"), Text(category, "resourceGroup"), Text(category, "usageType"), regions,
            Text(expression, "usageUnit"), price, Text(money, "currencyCode"), effective);
    }

    private static PriceFeedException Bad(int index, string what) =>
        new(string.Create(CultureInfo.InvariantCulture, $"GCP billing catalog: skus[{index}] {what}"));

    /// <summary>
    /// The GPU model a SKU description names, as the catalogs write it: <c>Nvidia Tesla A100 GPU running in Americas</c> →
    /// <c>A100</c>, <c>Nvidia Tesla A100 80GB GPU ...</c> → <c>A100-80GB</c>, <c>Nvidia H100 80GB Mega GPU ...</c> →
    /// <c>H100-MEGA</c>, <c>Spot Preemptible Nvidia L4 GPU ...</c> → <c>L4</c>; empty when it names none.
    /// </summary>
    public static string GpuModelOf(string description)
    {
        ArgumentNullException.ThrowIfNull(description);
        var at = description.IndexOf("Nvidia ", StringComparison.OrdinalIgnoreCase);
        if (at < 0)
            return "";
        var rest = description[(at + "Nvidia ".Length)..];
        var end = rest.IndexOf(" GPU", StringComparison.OrdinalIgnoreCase);
        if (end >= 0)
            rest = rest[..end];
        var tokens = rest.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(t => !t.Equals("Tesla", StringComparison.OrdinalIgnoreCase)).ToList();
        if (tokens.Count == 0)
            return "";
        var model = tokens[0].ToUpperInvariant();
        if (tokens.Any(t => t.Equals("Mega", StringComparison.OrdinalIgnoreCase)))
            return model + "-MEGA";
        if (model == "A100" && tokens.Any(t => t.Equals("80GB", StringComparison.OrdinalIgnoreCase)))
            return "A100-80GB";
        return model;
    }

    /// <summary>
    /// The per-GPU prices of <paramref name="skus"/> in <paramref name="regions"/> (empty: every region the SKU names), and
    /// how many SKUs were left out (not GPU, commitments, other units or currencies, no model named).
    /// </summary>
    public static (IReadOnlyList<GpuPriceQuote> Quotes, int Skipped) ToGpuPrices(IEnumerable<GcpSku> skus, IReadOnlyList<string> regions)
    {
        ArgumentNullException.ThrowIfNull(skus);
        ArgumentNullException.ThrowIfNull(regions);
        var quotes = new List<GpuPriceQuote>();
        var skipped = 0;
        foreach (var sku in skus)
        {
            CapacityType capacity;
            if (sku.UsageType == "OnDemand")
                capacity = CapacityType.OnDemand;
            else if (sku.UsageType == "Preemptible")
                capacity = CapacityType.Spot;
            else
            {
                skipped++;
                continue;
            }
            var model = GpuModelOf(sku.Description);
            if (sku.ResourceGroup != "GPU" || sku.UsageUnit != "h" || model.Length == 0
                || !(sku.CurrencyCode.Length == 0 || string.Equals(sku.CurrencyCode, "USD", StringComparison.OrdinalIgnoreCase)))
            {
                skipped++;
                continue;
            }
            foreach (var region in sku.ServiceRegions)
            {
                if (regions.Count == 0 || regions.Contains(region, StringComparer.OrdinalIgnoreCase))
                    quotes.Add(new GpuPriceQuote("gcp", region, model, capacity, sku.UnitPrice, sku.EffectiveTime, sku.SkuId));
            }
        }
        return (quotes, skipped);
    }
}
