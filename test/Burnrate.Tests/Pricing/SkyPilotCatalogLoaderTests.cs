using Burnrate.Pricing;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Pricing;

public sealed class SkyPilotCatalogLoaderTests
{
    private static readonly DateTimeOffset s_snapshot = new(2025, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly SkyPilotCatalogLoader _loader = new();

    [Fact]
    public void Every_shared_catalog_file_loads_with_prices_and_sourced_entries()
    {
        var dir = PricingTestPaths.SkyPilotCatalogDir();
        var files = Directory.GetFiles(dir, "vms*.csv", SearchOption.AllDirectories);
        Assert.Equal(7, files.Length);
        foreach (var file in files)
        {
            var catalog = _loader.Load(file, effectiveFrom: s_snapshot);
            var relative = Path.GetRelativePath(dir, file).Replace('\\', '/');
            Assert.All(catalog.Prices, p =>
            {
                Assert.StartsWith($"skypilot:{relative}:", p.Source, StringComparison.Ordinal);
                Assert.True(p.PricePerHour >= 0 && p.GpuPricePerHour >= 0);
                Assert.DoesNotContain('\r', p.InstanceType + p.Region + p.Zone + p.GpuModel);
            });
            Assert.All(catalog.Issues, i => Assert.Equal(relative, i.File));
        }
    }

    [Fact]
    public void Aws_row_gives_its_zone_on_demand_and_spot_prices()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/aws/vms.p-family-subset.csv"), effectiveFrom: s_snapshot);
        var book = catalog.ToPriceBook();

        var onDemand = book.Find("aws", "us-east-1", "use1-az2", "p5.48xlarge", CapacityType.OnDemand, s_snapshot)!;
        var spot = book.Find("aws", "us-east-1", "use1-az2", "p5.48xlarge", CapacityType.Spot, s_snapshot)!;
        Assert.Equal(55.04m, onDemand.PricePerHour);
        Assert.Equal(8, onDemand.GpuCount);
        Assert.Equal("H100", onDemand.GpuModel);
        Assert.Equal("skypilot:v9/aws/vms.p-family-subset.csv:61", onDemand.Source);
        Assert.Equal(PriceSplit.GpuPricePerHour(55.04m, 8, 192, 2048m), onDemand.GpuPricePerHour);
        Assert.Equal(18.734m, spot.PricePerHour);
        // SkyPilot has zone prices only: no region-wide entry to fall back on.
        Assert.Null(book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, s_snapshot));
    }

    [Fact]
    public void Aws_rows_without_price_are_skipped_and_recorded()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/aws/vms.p-family-subset.csv"), effectiveFrom: s_snapshot);

        Assert.Equal([97, 98, 99, 100, 101, 102, 103, 104, 105], Lines(catalog, CatalogIssueKind.MissingPrice));
        Assert.DoesNotContain(catalog.Prices, p => p.InstanceType == "p5e.48xlarge");
    }

    [Fact]
    public void Aws_spot_above_on_demand_is_capped_and_recorded()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/aws/vms.p-family-subset.csv"), effectiveFrom: s_snapshot);

        Assert.Equal([14, 33, 34], Lines(catalog, CatalogIssueKind.SpotAboveOnDemand));
        var capped = catalog.ToPriceBook().Find("aws", "eu-central-1", "euc1-az2", "p4d.24xlarge", CapacityType.Spot, s_snapshot)!;
        Assert.Equal(27.43298m, capped.PricePerHour);
        Assert.All(catalog.Prices.Where(p => p.Capacity == CapacityType.Spot), spot =>
            Assert.True(spot.PricePerHour <= catalog.Prices.Single(p => p.Capacity == CapacityType.OnDemand && p.Source == spot.Source).PricePerHour));
    }

    [Fact]
    public void Aws_rows_without_spot_price_make_no_spot_entry()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/aws/vms.p-family-subset.csv"), effectiveFrom: s_snapshot);

        Assert.Contains(84, Lines(catalog, CatalogIssueKind.MissingSpotPrice));
        var book = catalog.ToPriceBook();
        Assert.NotNull(book.Find("aws", "us-east-1", "use1-az1", "p5.4xlarge", CapacityType.OnDemand, s_snapshot));
        Assert.Null(book.Find("aws", "us-east-1", "use1-az1", "p5.4xlarge", CapacityType.Spot, s_snapshot));
    }

    [Fact]
    public void Azure_wrong_accelerator_count_is_fixed_from_the_known_size_and_recorded()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v6/azure/vms.tail-N-series-subset.csv"), effectiveFrom: s_snapshot);

        Assert.Equal([124, 125, 126], Lines(catalog, CatalogIssueKind.AcceleratorCountFixed));
        Assert.Contains("AcceleratorCount 12", catalog.Issues.First(i => i.Kind == CatalogIssueKind.AcceleratorCountFixed).Message, StringComparison.Ordinal);
        var nd = catalog.ToPriceBook().Find("azure", "eastus", "", "Standard_ND96isr_H100_v5", CapacityType.OnDemand, s_snapshot)!;
        Assert.Equal(8, nd.GpuCount);
        Assert.Equal(98.32m, nd.PricePerHour);
        Assert.Equal(PriceSplit.GpuPricePerHour(98.32m, 8, 96, 1900m), nd.GpuPricePerHour);
    }

    [Fact]
    public void Azure_rows_without_price_are_skipped_and_recorded()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v6/azure/vms.tail-N-series-subset.csv"), effectiveFrom: s_snapshot);

        Assert.Equal([13, 52, 96, 117, 128, 151, 165, 191, 207], Lines(catalog, CatalogIssueKind.MissingPrice));
        var a100 = catalog.ToPriceBook().Find("azure", "eastus", "", "Standard_NC24ads_A100_v4", CapacityType.Spot, s_snapshot)!;
        Assert.Equal(0.444433m, a100.PricePerHour);
        Assert.Equal("A100-80GB", a100.GpuModel);
    }

    [Fact]
    public void Lambda_crlf_file_reads_cleanly_and_the_crlf_is_recorded()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/lambda/vms.csv"), effectiveFrom: s_snapshot);

        Assert.Equal([1], Lines(catalog, CatalogIssueKind.CrlfLineEnds));
        var h100 = catalog.ToPriceBook().Find("lambda", "us-east-1", "", "gpu_8x_h100_sxm5", CapacityType.OnDemand, s_snapshot)!;
        Assert.Equal(31.92m, h100.PricePerHour);
        Assert.Equal(8, h100.GpuCount);
        Assert.DoesNotContain(catalog.Prices, p => p.Capacity == CapacityType.Spot);
        Assert.Equal(425, Lines(catalog, CatalogIssueKind.MissingSpotPrice).Length);
        Assert.Equal(425, catalog.Prices.Count);
    }

    [Fact]
    public void Nebius_crlf_file_gives_on_demand_and_preemptible_prices()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/nebius/vms.csv"), effectiveFrom: s_snapshot);
        var book = catalog.ToPriceBook();

        Assert.Equal([1], Lines(catalog, CatalogIssueKind.CrlfLineEnds));
        Assert.Equal(23.60m, book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.OnDemand, s_snapshot)!.PricePerHour);
        Assert.Equal(10.00m, book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.Spot, s_snapshot)!.PricePerHour);
        Assert.Equal(0m, book.Find("nebius", "eu-north1", "", "cpu-d3_4vcpu-16gb", CapacityType.OnDemand, s_snapshot)!.GpuPricePerHour);
    }

    [Fact]
    public void Runpod_quoted_gpu_info_with_commas_is_one_field()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v8/runpod/vms.head-subset.csv"), effectiveFrom: s_snapshot);

        Assert.DoesNotContain(catalog.Issues, i => i.Kind == CatalogIssueKind.MalformedRow);
        Assert.Equal(48 * 2, catalog.Prices.Count);
        var ca = catalog.ToPriceBook().Find("runpod", "US", "US-CA-1", "1x_A100-80GB_SECURE", CapacityType.OnDemand, s_snapshot)!;
        Assert.Equal(1.39m, ca.PricePerHour);
        Assert.Equal(1, ca.GpuCount);
        Assert.Equal("skypilot:v8/runpod/vms.head-subset.csv:25", ca.Source);
    }

    [Fact]
    public void Gcp_host_and_accelerator_rows_join_into_machine_plus_gpus()
    {
        var catalog = LoadGcp();
        var book = catalog.ToPriceBook();

        var a2 = book.Find("gcp", "us-central1", "us-central1-a", "a2-highgpu-8g", CapacityType.OnDemand, s_snapshot)!;
        Assert.Equal(5.91582m + 23.47126m, a2.PricePerHour);
        Assert.Equal(23.47126m / 8, a2.GpuPricePerHour);
        Assert.Equal(8, a2.GpuCount);
        Assert.Equal("A100", a2.GpuModel);
        Assert.Equal("skypilot:v9/gcp/vms.head-gpu-host-rows.csv:70+v9/gcp/vms.gpu-accelerator-rows-subset.csv:32", a2.Source);
        Assert.Equal(3.10496m + 12.3192m, book.Find("gcp", "us-central1", "us-central1-a", "a2-highgpu-8g", CapacityType.Spot, s_snapshot)!.PricePerHour);
        Assert.Contains(catalog.Issues, i => i is { Kind: CatalogIssueKind.GpuPricedApart, Line: 70, File: "v9/gcp/vms.head-gpu-host-rows.csv" });
    }

    [Fact]
    public void Gcp_accelerator_spot_above_on_demand_is_capped_before_the_join()
    {
        var catalog = LoadGcp();

        Assert.Contains(catalog.Issues, i => i is { Kind: CatalogIssueKind.SpotAboveOnDemand, Line: 205, File: "v9/gcp/vms.gpu-accelerator-rows-subset.csv" });
        var a3 = catalog.ToPriceBook().Find("gcp", "us-central1", "us-central1-a", "a3-highgpu-8g", CapacityType.Spot, s_snapshot)!;
        Assert.Equal(5.15632m + 33.60609m, a3.PricePerHour);
        Assert.Equal(33.60609m / 8, a3.GpuPricePerHour);
    }

    [Fact]
    public void Gcp_host_without_its_accelerator_row_is_skipped_and_recorded()
    {
        var catalog = LoadGcp();

        // The accelerator subset has no A100 x1 row, so a2-highgpu-1g cannot be priced whole.
        Assert.Contains(catalog.Issues, i => i is { Kind: CatalogIssueKind.GpuHostWithoutAccelerator, Line: 13 });
        Assert.DoesNotContain(catalog.Prices, p => p.InstanceType == "a2-highgpu-1g");
    }

    [Fact]
    public void Gcp_host_file_alone_makes_no_prices_that_leave_out_the_gpus()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/gcp/vms.head-gpu-host-rows.csv"), effectiveFrom: s_snapshot);

        Assert.Empty(catalog.Prices);
        Assert.Equal(305, Lines(catalog, CatalogIssueKind.GpuHostWithoutAccelerator).Length);
    }

    [Fact]
    public void Gcp_accelerator_file_alone_records_each_unused_row()
    {
        var catalog = _loader.Load(PricingTestPaths.SkyPilotFile("v9/gcp/vms.gpu-accelerator-rows-subset.csv"), effectiveFrom: s_snapshot);

        Assert.Empty(catalog.Prices);
        Assert.Equal(295, Lines(catalog, CatalogIssueKind.UnusedAcceleratorRow).Length);
    }

    [Fact]
    public void Count_sources_name_and_gpu_info_are_read()
    {
        Assert.Equal(8, SkyPilotCatalogLoader.GpuCountFromName("gpu_8x_h100_sxm5"));
        Assert.Equal(8, SkyPilotCatalogLoader.GpuCountFromName("8x_H100-80GB_SECURE"));
        Assert.Equal(8, SkyPilotCatalogLoader.GpuCountFromName("gpu-h100-sxm_8gpu-128vcpu-1600gb"));
        Assert.Equal(8, SkyPilotCatalogLoader.GpuCountFromName("a2-highgpu-8g"));
        Assert.Equal(8, SkyPilotCatalogLoader.GpuCountFromName("a3-ultragpu-8g-nolssd"));
        Assert.Equal(8, SkyPilotCatalogLoader.GpuCountFromName("Standard_ND96isr_H100_v5"));
        Assert.Null(SkyPilotCatalogLoader.GpuCountFromName("g2-standard-8"));
        Assert.Null(SkyPilotCatalogLoader.GpuCountFromName("p5.48xlarge"));
        Assert.Equal(4, SkyPilotCatalogLoader.GpuCountFromInfo("{'Gpus': [{'Name': 'A10G', 'Count': 4.0}], 'TotalGpuMemoryInMiB': 98304}"));
        Assert.Null(SkyPilotCatalogLoader.GpuCountFromInfo("H100"));
    }

    [Fact]
    public void Count_disagreeing_with_gpu_info_is_fixed_from_gpu_info()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("burnrate-sky-").FullName, "vms.csv");
        File.WriteAllText(path, "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region\n"
            + "g5.12xlarge,A10G,1.0,48.0,192.0,\"{'Gpus': [{'Name': 'A10G', 'Count': 4}]}\",5.672,,us-east-1\n");

        var catalog = _loader.Load(path, provider: "aws", effectiveFrom: s_snapshot);

        Assert.Equal([2], Lines(catalog, CatalogIssueKind.AcceleratorCountFixed));
        Assert.Equal(4, Assert.Single(catalog.Prices).GpuCount);
    }

    [Fact]
    public void Provider_comes_from_the_folder_of_the_file()
    {
        Assert.Equal("aws", SkyPilotCatalogLoader.InferProvider("/home/u/.sky/catalogs/v9/aws/vms.csv"));
        Assert.Equal("v9/gcp/vms.csv", SkyPilotCatalogLoader.DisplayName("/home/u/.sky/catalogs/v9/gcp/vms.csv"));
    }

    private SkyPilotCatalog LoadGcp() => _loader.Load(
        [
            PricingTestPaths.SkyPilotFile("v9/gcp/vms.head-gpu-host-rows.csv"),
            PricingTestPaths.SkyPilotFile("v9/gcp/vms.gpu-accelerator-rows-subset.csv"),
        ],
        effectiveFrom: s_snapshot);

    private static int[] Lines(SkyPilotCatalog catalog, CatalogIssueKind kind) =>
        catalog.Issues.Where(i => i.Kind == kind).Select(i => i.Line).ToArray();
}

public sealed class SkyPilotCatalogLoaderLoggingTests
{
    [Fact]
    public void Loading_logs_a_summary_of_what_was_done_per_file()
    {
        var logger = new ListLogger();
        new SkyPilotCatalogLoader(logger).Load(PricingTestPaths.SkyPilotFile("v6/azure/vms.tail-N-series-subset.csv"));

        var summary = Assert.Single(logger.Messages);
        Assert.Contains("v6/azure/vms.tail-N-series-subset.csv", summary, StringComparison.Ordinal);
        Assert.Contains("MissingPrice x9", summary, StringComparison.Ordinal);
        Assert.Contains("AcceleratorCountFixed x3", summary, StringComparison.Ordinal);
    }

    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
                Messages.Add(formatter(state, exception));
        }
    }
}
