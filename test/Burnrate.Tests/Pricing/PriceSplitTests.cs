using Burnrate.Pricing;

namespace Burnrate.Tests.Pricing;

public sealed class PriceSplitTests
{
    [Fact]
    public void Gpu_part_is_the_price_less_the_reference_cpu_and_memory_shared_by_the_gpus()
    {
        // p5.48xlarge: 192 vCPU x 0.031611 + 2048 GiB x 0.004237 = 6.069312 + 8.677376 = 14.746688 $/h (< 50% of 55.04).
        Assert.Equal(14.746688m, PriceSplit.ComputePricePerHour(55.04m, 8, 192, 2048m));
        Assert.Equal((55.04m - 14.746688m) / 8, PriceSplit.GpuPricePerHour(55.04m, 8, 192, 2048m));
        Assert.Equal(5.036664m, PriceSplit.GpuPricePerHour(55.04m, 8, 192, 2048m));
    }

    [Fact]
    public void Compute_part_is_capped_at_half_the_price()
    {
        // Nebius 8xH100 at spot $10.00: the reference would be 128 x 0.031611 + 1600 x 0.004237 = 10.825 > 50%.
        Assert.Equal(5m, PriceSplit.ComputePricePerHour(10m, 8, 128, 1600m));
        Assert.Equal(0.625m, PriceSplit.GpuPricePerHour(10m, 8, 128, 1600m));
    }

    [Fact]
    public void An_instance_without_gpus_has_a_gpu_part_of_zero()
    {
        Assert.Equal(0m, PriceSplit.GpuPricePerHour(0.2m, 0, 4, 16m));
        Assert.Equal(0.2m, PriceSplit.ComputePricePerHour(0.2m, 0, 4, 16m));
    }

    [Fact]
    public void Gpus_priced_apart_add_to_the_machine_and_keep_their_own_price()
    {
        var (price, gpu) = PriceSplit.PricedApart(5.91582m, 2.9339075m, 8);

        Assert.Equal(29.38708m, price);
        Assert.Equal(2.9339075m, gpu);
    }

    [Fact]
    public void Split_parts_add_back_to_the_price_within_a_nano_dollar_per_gpu()
    {
        foreach (var (price, gpus, vcpus, mem) in new[] { (31.92m, 8, 208, 1800m), (3.29m, 1, 26, 200m), (1.212m, 1, 8, 32m), (7m, 3, 10, 10m) })
        {
            var compute = PriceSplit.ComputePricePerHour(price, gpus, vcpus, mem);
            var gpu = PriceSplit.GpuPricePerHour(price, gpus, vcpus, mem);
            Assert.InRange(compute + (gpu * gpus) - price, -0.000000001m * gpus, 0.000000001m * gpus);
            Assert.True(gpu * gpus >= price / 2);
        }
    }
}
