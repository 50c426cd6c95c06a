using Burnrate.Pricing;

namespace Burnrate.Tests.Pricing;

public sealed class CatalogFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-catalog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Own_catalog_file_loads_with_zone_prices_dates_and_gpus_priced_apart()
    {
        var path = Write("mine.yaml", """
            provider: onprem-a
            effective_from: 2025-03-01T00:00:00Z
            instances:
              - type: dgx-h100
                gpu: H100
                gpus: 8
                vcpus: 224
                memory_gib: 2048
                prices:
                  - region: dc1
                    on_demand: 24.00
                  - region: dc1
                    zone: hall-b
                    effective_from: 2025-04-01T00:00:00+02:00
                    reserved: 18.5
              - type: gpu-box
                provider: onprem-b
                gpu: L4
                gpus: 2
                prices:
                  - region: dc2
                    machine_on_demand: 0.5
                    gpu_on_demand: 0.25
            rate_card:
              onprem-a:
                egress: { internet: 0.05 }
            """);

        var catalog = CatalogFile.Load(path);
        var book = catalog.ToPriceBook();

        Assert.Equal(3, catalog.Prices.Count);
        var dgx = book.Find("onprem-a", "dc1", "hall-a", "dgx-h100", CapacityType.OnDemand, new DateTimeOffset(2025, 3, 1, 0, 0, 0, TimeSpan.Zero))!;
        Assert.Equal(24.00m, dgx.PricePerHour);
        Assert.Equal(PriceSplit.GpuPricePerHour(24m, 8, 224, 2048m), dgx.GpuPricePerHour);
        Assert.Equal("catalog:mine.yaml:10", dgx.Source);
        Assert.Null(book.Find("onprem-a", "dc1", "hall-b", "dgx-h100", CapacityType.Reserved, new DateTimeOffset(2025, 3, 31, 21, 59, 0, TimeSpan.Zero)));
        Assert.Equal(18.5m, book.Find("onprem-a", "dc1", "hall-b", "dgx-h100", CapacityType.Reserved, new DateTimeOffset(2025, 3, 31, 22, 0, 0, TimeSpan.Zero))!.PricePerHour);
        var box = book.Find("onprem-b", "dc2", "", "gpu-box", CapacityType.OnDemand, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))!;
        Assert.Equal(1.0m, box.PricePerHour);
        Assert.Equal(0.25m, box.GpuPricePerHour);
        Assert.Equal(0.05m, catalog.RateCard.EgressPerGb("onprem-a", "dc1", TransferKind.Internet));
        Assert.Equal(0.02m, catalog.RateCard.EgressPerGb("onprem-a", "dc1", TransferKind.CrossRegion));
    }

    [Theory]
    [InlineData("on_demand: abc", 9, "'on_demand' must be a number")]
    [InlineData("on_demand: -3", 9, "'on_demand' must be a number")]
    [InlineData("spto: 3", 9, "unknown key 'spto'")]
    [InlineData("machine_on_demand: 3", 8, "needs both 'machine_on_demand' and 'gpu_on_demand'")]
    [InlineData("note: nothing", 8, "gives no price")]
    [InlineData("on_demand: 3\n        effective_from: 2025-01-01", 10, "ISO 8601 instant with its offset")]
    public void Bad_price_names_the_file_the_line_and_what_is_wrong(string priceLine, int line, string problem)
    {
        var path = Write("bad.yaml", $"""
            provider: aws
            effective_from: 2025-01-01T00:00:00Z
            instances:
              - type: p5.48xlarge
                gpu: H100
                gpus: 8
                prices:
                  - region: us-east-1
                    {priceLine}
            """);

        var e = Assert.Throws<CatalogFormatException>(() => CatalogFile.Load(path));

        Assert.Equal(path, e.File);
        Assert.Equal(line, e.Line);
        Assert.Contains(problem, e.Problem, StringComparison.Ordinal);
        Assert.StartsWith($"{path}:{line}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Price_without_any_effective_date_is_an_error()
    {
        var e = Assert.Throws<CatalogFormatException>(() => CatalogFile.Parse("""
            provider: aws
            instances:
              - type: g5.2xlarge
                prices:
                  - region: us-east-1
                    on_demand: 1.212
            """, "nodate.yaml"));

        Assert.Equal(5, e.Line);
        Assert.Contains("no effective_from", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_yaml_is_reported_with_its_line()
    {
        var e = Assert.Throws<CatalogFormatException>(() => CatalogFile.Parse("provider: aws\ninstances: [\n  - type: x\n", "broken.yaml"));

        Assert.Equal("broken.yaml", e.File);
        Assert.True(e.Line >= 2);
        Assert.Contains("not valid YAML", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_transfer_kind_in_a_rate_card_is_an_error()
    {
        var e = Assert.Throws<CatalogFormatException>(() => CatalogFile.Parse("""
            rate_card:
              aws:
                egress: { internets: 0.09 }
            """, "rates.yaml"));

        Assert.Equal(3, e.Line);
        Assert.Contains("unknown transfer kind 'internets'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Own_catalog_overrides_the_built_in_price_from_its_date()
    {
        var path = Write("discount.yaml", """
            provider: aws
            effective_from: 2025-07-01T00:00:00Z
            instances:
              - type: p5.48xlarge
                gpu: H100
                gpus: 8
                vcpus: 192
                memory_gib: 2048
                prices:
                  - region: us-east-1
                    on_demand: 35.2256
            """);
        var book = BuiltInCatalog.Load().ToPriceBook();
        book.AddRange(CatalogFile.Load(path).Prices);

        Assert.Equal(55.04m, book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, new DateTimeOffset(2025, 6, 30, 0, 0, 0, TimeSpan.Zero))!.PricePerHour);
        Assert.Equal(35.2256m, book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, new DateTimeOffset(2025, 7, 1, 0, 0, 0, TimeSpan.Zero))!.PricePerHour);
        Assert.Equal(new DateTimeOffset(2025, 7, 1, 0, 0, 0, TimeSpan.Zero),
            book.NextChange("aws", "us-east-1", "use1-az1", "p5.48xlarge", CapacityType.OnDemand, Some.Jan1, Some.Jan1.AddYears(1)));
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
