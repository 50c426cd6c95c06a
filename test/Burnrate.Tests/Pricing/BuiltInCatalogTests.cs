using Burnrate.Pricing;

namespace Burnrate.Tests.Pricing;

public sealed class BuiltInCatalogTests
{
    private static readonly PriceCatalog s_catalog = BuiltInCatalog.Load();
    private static readonly PriceBook s_book = s_catalog.ToPriceBook();
    private static readonly DateTimeOffset s_now = new(2025, 6, 1, 0, 0, 0, TimeSpan.Zero);

    // The keys the simulator prices; "spot" marks those that must also have a spot price.
    public static TheoryData<string, string, string, bool> SimulatorKeys => new()
    {
        { "aws", "us-east-1", "p5.48xlarge", true },
        { "aws", "us-east-1", "p4d.24xlarge", true },
        { "aws", "us-east-1", "p4de.24xlarge", false },
        { "aws", "us-east-1", "p5e.48xlarge", false },
        { "aws", "us-east-1", "p5en.48xlarge", false },
        { "aws", "us-east-1", "g5.2xlarge", true },
        { "aws", "us-east-1", "g5.12xlarge", false },
        { "aws", "us-east-1", "g6.xlarge", true },
        { "aws", "us-east-1", "g6e.xlarge", false },
        { "aws", "us-west-2", "p4d.24xlarge", true },
        { "aws", "us-west-2", "p5.48xlarge", true },
        { "aws", "us-west-2", "g5.2xlarge", false },
        { "gcp", "us-central1", "a3-highgpu-8g", true },
        { "gcp", "us-central1", "a2-highgpu-1g", true },
        { "gcp", "us-central1", "a2-highgpu-8g", true },
        { "gcp", "us-central1", "a2-ultragpu-8g", false },
        { "gcp", "us-central1", "g2-standard-8", true },
        { "azure", "eastus", "Standard_ND96isr_H100_v5", true },
        { "azure", "eastus", "Standard_ND96asr_v4", false },
        { "azure", "eastus", "Standard_NC24ads_A100_v4", true },
        { "azure", "eastus", "Standard_NC40ads_H100_v5", false },
        { "azure", "eastus", "Standard_ND96isr_H200_v5", false },
        { "lambda", "us-east-1", "gpu_8x_h100_sxm5", false },
        { "lambda", "us-east-1", "gpu_1x_h100_pcie", false },
        { "lambda", "us-east-1", "gpu_1x_a100_sxm4", false },
        { "lambda", "us-east-1", "gpu_8x_a100_80gb_sxm4", false },
        { "nebius", "eu-north1", "gpu-h100-sxm_8gpu-128vcpu-1600gb", true },
        { "nebius", "eu-north1", "gpu-h200-sxm_8gpu-128vcpu-1600gb", true },
        { "nebius", "eu-north1", "gpu-h100-sxm_1gpu-16vcpu-200gb", false },
        { "runpod", "US", "1x_A100-80GB_SECURE", false },
        { "runpod", "US", "8x_H100-80GB_SECURE", false },
        { "runpod", "US", "1x_H100-80GB_SECURE", false },
        { "coreweave", "US-EAST-04", "gd-8xh100ib-i128", false },
        { "coreweave", "US-EAST-04", "gd-8xa100-i128", false },
    };

    [Theory]
    [MemberData(nameof(SimulatorKeys))]
    public void Every_simulator_key_has_a_region_wide_on_demand_price_and_spot_below_it_where_sold(string provider, string region, string type, bool spot)
    {
        var onDemand = s_book.Find(provider, region, "", type, CapacityType.OnDemand, s_now);
        Assert.NotNull(onDemand);
        Assert.Equal("", onDemand.Zone);
        Assert.True(onDemand.PricePerHour > 0);
        Assert.True(onDemand.GpuCount > 0);
        Assert.True(onDemand.GpuPricePerHour > 0 && onDemand.GpuPricePerHour * onDemand.GpuCount <= onDemand.PricePerHour);
        Assert.NotEqual("", onDemand.GpuModel);

        var spotPrice = s_book.Find(provider, region, "", type, CapacityType.Spot, s_now);
        if (spot)
        {
            Assert.NotNull(spotPrice);
            Assert.True(spotPrice.PricePerHour > 0 && spotPrice.PricePerHour < onDemand.PricePerHour);
        }
    }

    [Fact]
    public void Reference_prices_match_the_public_list()
    {
        Assert.Equal(55.04m, s_book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, s_now)!.PricePerHour);
        Assert.Equal(31.92m, s_book.Find("lambda", "us-east-1", "", "gpu_8x_h100_sxm5", CapacityType.OnDemand, s_now)!.PricePerHour);
        Assert.Equal(23.60m, s_book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.OnDemand, s_now)!.PricePerHour);
        Assert.Equal(10.00m, s_book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.Spot, s_now)!.PricePerHour);
    }

    [Fact]
    public void Gcp_gpus_priced_apart_are_machine_plus_accelerators()
    {
        var a2 = s_book.Find("gcp", "us-central1", "", "a2-highgpu-8g", CapacityType.OnDemand, s_now)!;

        Assert.Equal(5.91582m + 23.47126m, a2.PricePerHour);
        Assert.Equal(2.9339075m, a2.GpuPricePerHour);
        Assert.Equal("A100", a2.GpuModel);
    }

    [Fact]
    public void Prices_are_in_force_from_the_start_of_2025_and_not_before()
    {
        Assert.NotNull(s_book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, Some.Jan1));
        Assert.Null(s_book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, Some.Jan1.AddTicks(-1)));
        Assert.All(s_catalog.Prices, p => Assert.StartsWith("builtin:", p.Source, StringComparison.Ordinal));
    }

    [Fact]
    public void Rate_card_has_published_egress_and_storage_rates()
    {
        var card = s_catalog.RateCard;

        Assert.Equal(0.09m, card.EgressPerGb("aws", "us-east-1", TransferKind.Internet));
        Assert.Equal(0.02m, card.EgressPerGb("aws", "us-east-1", TransferKind.CrossRegion));
        Assert.Equal(0.01m, card.EgressPerGb("aws", "us-east-1", TransferKind.CrossZone));
        Assert.Equal(0m, card.EgressPerGb("aws", "us-east-1", TransferKind.SameZone));
        Assert.Equal(0.12m, card.EgressPerGb("aws", "ap-southeast-1", TransferKind.Internet));
        Assert.Equal(0.01m, card.EgressPerGb("aws", "ap-southeast-1", TransferKind.CrossZone));
        Assert.Equal(0.12m, card.EgressPerGb("GCP", "us-central1", TransferKind.Internet));
        Assert.Equal(0m, card.EgressPerGb("lambda", "us-east-1", TransferKind.Internet));
        Assert.Equal(0.023m, card.StoragePerGbMonth("aws", "us-east-1", "object"));
        Assert.Equal(0.17m, card.StoragePerGbMonth("gcp", "us-central1", "ssd"));
    }

    [Fact]
    public void Unknown_provider_or_storage_class_gets_the_documented_default()
    {
        var card = s_catalog.RateCard;

        Assert.Equal(0.09m, card.EgressPerGb("my-onprem", "dc1", TransferKind.Internet));
        Assert.Equal(0m, card.EgressPerGb("my-onprem", "dc1", TransferKind.SameZone));
        Assert.Equal(0.08m, card.StoragePerGbMonth("my-onprem", "dc1", "ssd"));
        Assert.Equal(0.17m, card.StoragePerGbMonth("gcp", "us-central1", "tape"));
        Assert.Equal(RateCardTable.DefaultInternetEgressPerGb, RateCardTable.Defaults.EgressPerGb("x", "y", TransferKind.Internet));
        Assert.Equal(RateCardTable.DefaultObjectPerGbMonth, RateCardTable.Defaults.StoragePerGbMonth("x", "y", "object"));
    }
}
