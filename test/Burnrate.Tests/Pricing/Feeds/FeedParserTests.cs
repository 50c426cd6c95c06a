using System.Text;
using Burnrate.Pricing;
using Burnrate.Pricing.Feeds;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Pricing.Feeds;

/// <summary>The Azure and GCP response formats, read exactly (the AWS format is read through AWSSDK: AwsSpotFeedTests).</summary>
public sealed class FeedParserTests
{
    [Fact]
    public void The_captured_Azure_spot_response_gives_Linux_on_demand_and_the_Spot_meter_not_Windows_or_Low_Priority()
    {
        var page = AzureRetailPrices.ParsePage(Encoding.UTF8.GetBytes(SpotTestData.Read("azure/standard_d2s_v3_eastus.json")));
        Assert.Equal(6, page.Items.Count);
        Assert.Null(page.NextPageLink);

        var (quotes, plans, skipped) = AzureRetailPrices.ToPrices(page.Items);

        Assert.Empty(plans); // the GA response carries no savingsPlan arrays
        Assert.Equal(2, quotes.Count);
        var onDemand = Assert.Single(quotes, q => q.Capacity == CapacityType.OnDemand);
        Assert.Equal(("azure", "eastus", "", "Standard_D2s_v3", 0.096m), (onDemand.Provider, onDemand.Region, onDemand.Zone, onDemand.InstanceType, onDemand.PricePerHour));
        Assert.Equal(new DateTimeOffset(2017, 12, 15, 0, 0, 0, TimeSpan.Zero), onDemand.EffectiveFrom);
        var spot = Assert.Single(quotes, q => q.Capacity == CapacityType.Spot);
        // Spot, not the Low Priority meter (0.019) of the same size, and not the Windows Spot meter (0.036848).
        Assert.Equal(0.018816m, spot.PricePerHour);
        Assert.Equal(new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero), spot.EffectiveFrom);
        Assert.Equal("898b8731-56dd-5181-bb31-90ac59267863", spot.Detail);
        Assert.Equal(4, skipped); // 3 Windows meters + the Linux Low Priority meter
    }

    [Fact]
    public void A_Low_Priority_meter_is_the_spot_price_where_a_size_has_no_Spot_meter()
    {
        var items = AzureRetailPrices.ParsePage(Encoding.UTF8.GetBytes(SpotTestData.Read("azure/standard_d2s_v3_eastus.json"))).Items
            .Where(i => !i.SkuName.EndsWith(" Spot", StringComparison.Ordinal));

        var (quotes, _, _) = AzureRetailPrices.ToPrices(items);

        Assert.Equal(0.019m, Assert.Single(quotes, q => q.Capacity == CapacityType.Spot).PricePerHour);
    }

    [Fact]
    public void The_preview_api_version_response_gives_savings_plan_rates_and_leaves_out_dev_test_prices()
    {
        var page = AzureRetailPrices.ParsePage(Encoding.UTF8.GetBytes(SpotTestData.Read("azure/eastus_standard_d2s_v3_nofilter_preview.json")));
        Assert.Equal(9, page.Items.Count);

        var (quotes, plans, _) = AzureRetailPrices.ToPrices(page.Items);

        Assert.Equal([(CapacityType.OnDemand, 0.096m), (CapacityType.Spot, 0.018816m)],
            quotes.OrderBy(q => q.Capacity).Select(q => (q.Capacity, q.PricePerHour)));
        Assert.Equal([("1 Year", 0.06624m), ("3 Years", 0.04512m)], plans.OrderBy(p => p.Term, StringComparer.Ordinal).Select(p => (p.Term, p.PricePerHour)));
        Assert.All(plans, p => Assert.Equal(("azure", "eastus", "Standard_D2s_v3"), (p.Provider, p.Region, p.InstanceType)));
    }

    [Fact]
    public void An_empty_Azure_result_is_no_prices_not_an_error()
    {
        var page = AzureRetailPrices.ParsePage(Encoding.UTF8.GetBytes(SpotTestData.Read("azure/eastus_standard_d2s_v3_pricetype_reservation.json")));

        Assert.Empty(page.Items);
        Assert.Empty(AzureRetailPrices.ToPrices(page.Items).Quotes);
    }

    [Theory]
    [InlineData("<html>busy</html>", "not JSON")]
    [InlineData("{\"Count\":0}", "no Items array")]
    [InlineData("{\"Items\":[{\"retailPrice\":\"cheap\",\"effectiveStartDate\":\"2024-01-01T00:00:00Z\"}]}", "Items[0] retailPrice is not a number")]
    [InlineData("{\"Items\":[{\"retailPrice\":1.5,\"effectiveStartDate\":\"soon\"}]}", "Items[0] effectiveStartDate 'soon' is not a date")]
    public void A_bad_Azure_body_is_an_error_saying_what_is_wrong(string body, string expected)
    {
        var e = Assert.Throws<PriceFeedException>(() => AzureRetailPrices.ParsePage(Encoding.UTF8.GetBytes(body)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Azure_prices_are_read_from_the_number_text_exactly()
    {
        const string body = """{"Items":[{"currencyCode":"USD","retailPrice":0.123456789012345678,"armRegionName":"eastus","armSkuName":"Standard_X","skuName":"X","serviceName":"Virtual Machines","unitOfMeasure":"1 Hour","type":"Consumption","productName":"P","effectiveStartDate":"2024-01-01T00:00:00Z"}],"NextPageLink":null}""";

        var item = Assert.Single(AzureRetailPrices.ParsePage(Encoding.UTF8.GetBytes(body)).Items);

        Assert.Equal(0.123456789012345678m, item.RetailPrice);
    }

    // The SKU below has the shape the GCP Cloud Billing Catalog API documents (services.skus.list), as in OpenCost's
    // fixture quoted in the orchestrators reference §6.4: $2.933908 per A100-hour.
    private const string GcpA100 = """
        {"skus":[{"name":"services/6F81-5844-456A/skus/039F-D0DA-4055","skuId":"039F-D0DA-4055",
         "description":"Nvidia Tesla A100 GPU running in Americas",
         "category":{"serviceDisplayName":"Compute Engine","resourceFamily":"Compute","resourceGroup":"GPU","usageType":"OnDemand"},
         "serviceRegions":["us-central1","us-east1","us-west1"],
         "pricingInfo":[{"effectiveTime":"2023-03-24T10:52:50.681Z","currencyConversionRate":1,
           "pricingExpression":{"usageUnit":"h","usageUnitDescription":"hour","baseUnit":"s","displayQuantity":1,
             "tieredRates":[{"startUsageAmount":0,"unitPrice":{"currencyCode":"USD","units":"2","nanos":933908000}}]}}],
         "serviceProviderName":"Google"}],"nextPageToken":""}
        """;

    [Fact]
    public void A_GCP_GPU_SKU_is_units_plus_nanos_as_an_exact_decimal_per_GPU_hour_in_each_of_its_regions()
    {
        var page = GcpBillingCatalog.ParsePage(Encoding.UTF8.GetBytes(GcpA100));
        var sku = Assert.Single(page.Skus);
        Assert.Null(page.NextPageToken);
        Assert.Equal(2.933908m, sku.UnitPrice);

        var (quotes, skipped) = GcpBillingCatalog.ToGpuPrices(page.Skus, []);

        Assert.Equal(0, skipped);
        Assert.Equal(["us-central1", "us-east1", "us-west1"], quotes.Select(q => q.Region));
        Assert.All(quotes, q => Assert.Equal(("gcp", "A100", CapacityType.OnDemand, 2.933908m), (q.Provider, q.GpuModel, q.Capacity, q.PricePerGpuHour)));
        Assert.Equal(new DateTimeOffset(2023, 3, 24, 10, 52, 50, 681, TimeSpan.Zero), quotes[0].EffectiveFrom);
    }

    [Theory]
    [InlineData(2L, 933908000, "2.933908")]
    [InlineData(0L, 1, "0.000000001")]            // one nano-dollar: a double would not keep 2 + 1e-9 exact
    [InlineData(2L, 1, "2.000000001")]
    [InlineData(9007199254740993L, 999999999, "9007199254740993.999999999")] // past 2^53: a double would round
    [InlineData(-1L, -750000000, "-1.75")]
    public void Units_and_nanos_make_an_exact_decimal(long units, int nanos, string expected) =>
        Assert.Equal(decimal.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), GcpBillingCatalog.ToDecimal(units, nanos));

    [Theory]
    [InlineData(1L, -1)]
    [InlineData(-1L, 1)]
    [InlineData(0L, 1_000_000_000)]
    public void Units_and_nanos_of_different_signs_or_nanos_past_a_unit_are_refused(long units, int nanos) =>
        Assert.Throws<PriceFeedException>(() => GcpBillingCatalog.ToDecimal(units, nanos));

    [Theory]
    [InlineData("Nvidia Tesla A100 GPU running in Americas", "A100")]
    [InlineData("Nvidia Tesla A100 80GB GPU running in Americas", "A100-80GB")]
    [InlineData("Nvidia H100 80GB GPU running in Americas", "H100")]
    [InlineData("Nvidia H100 80GB Mega GPU running in Americas", "H100-MEGA")]
    [InlineData("Spot Preemptible Nvidia L4 GPU running in Americas", "L4")]
    [InlineData("Nvidia Tesla T4 GPU running in EMEA", "T4")]
    [InlineData("A2 Instance Core running in Americas", "")]
    public void The_GPU_model_is_read_from_the_SKU_description(string description, string model) =>
        Assert.Equal(model, GcpBillingCatalog.GpuModelOf(description));

    [Fact]
    public void Preemptible_GPU_SKUs_are_spot_and_commitments_CPU_and_RAM_SKUs_are_left_out()
    {
        var spot = GcpA100.Replace("\"usageType\":\"OnDemand\"", "\"usageType\":\"Preemptible\"", StringComparison.Ordinal)
            .Replace("Nvidia Tesla A100", "Spot Preemptible Nvidia Tesla A100", StringComparison.Ordinal);
        var commit = GcpA100.Replace("\"usageType\":\"OnDemand\"", "\"usageType\":\"Commit1Yr\"", StringComparison.Ordinal);
        var cpu = GcpA100.Replace("\"resourceGroup\":\"GPU\"", "\"resourceGroup\":\"CPU\"", StringComparison.Ordinal);
        var skus = new[] { spot, commit, cpu }.SelectMany(b => GcpBillingCatalog.ParsePage(Encoding.UTF8.GetBytes(b)).Skus).ToList();

        var (quotes, skipped) = GcpBillingCatalog.ToGpuPrices(skus, ["us-east1"]);

        var quote = Assert.Single(quotes);
        Assert.Equal(("us-east1", CapacityType.Spot, "A100"), (quote.Region, quote.Capacity, quote.GpuModel));
        Assert.Equal(2, skipped);
    }

    [Theory]
    [InlineData("not json", "not JSON")]
    [InlineData("{\"skus\":[{\"pricingInfo\":[{\"effectiveTime\":\"2023-03-24T10:52:50Z\",\"pricingExpression\":{\"usageUnit\":\"h\",\"tieredRates\":[{\"unitPrice\":{\"units\":\"two\",\"nanos\":0}}]}}]}]}", "skus[0] unitPrice.units")]
    [InlineData("{\"skus\":[{\"pricingInfo\":[{\"effectiveTime\":\"2023-03-24T10:52:50Z\",\"pricingExpression\":{\"usageUnit\":\"h\",\"tieredRates\":[{\"unitPrice\":{\"units\":\"1\",\"nanos\":-5}}]}}]}]}", "not a valid Money")]
    [InlineData("[]", "not a JSON object")]
    public void A_bad_GCP_body_is_an_error_saying_what_is_wrong(string body, string expected)
    {
        var e = Assert.Throws<PriceFeedException>(() => GcpBillingCatalog.ParsePage(Encoding.UTF8.GetBytes(body)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
