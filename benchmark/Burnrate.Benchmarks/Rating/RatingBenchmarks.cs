using BenchmarkDotNet.Attributes;
using Burnrate.Attribution;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Telemetry;

namespace Burnrate.Benchmarks.Rating;

/// <summary>
/// Rating throughput: one call rates one minute of a fleet of <see cref="Nodes"/> 8-GPU nodes (so 8 × Nodes
/// GPU-minutes and Nodes resource-minutes). Shapes: every GPU held whole by one job (the baseline), every GPU cut
/// into MIG slices held by several workloads, and a fleet whose spot price changes inside every minute.
/// </summary>
[MemoryDiagnoser]
public class RatingBenchmarks
{
    private static readonly DateTimeOffset s_start = new(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);
    private RatingEngine _engine = null!;
    private PriceBook _book = null!;
    private DateTimeOffset _minute;

    [Params(250)]
    public int Nodes { get; set; }

    [Params("whole", "mig", "spot-change")]
    public string Shape { get; set; } = "whole";

    [GlobalSetup]
    public void Setup()
    {
        var catalog = BuiltInCatalog.Load();
        _book = catalog.ToPriceBook();
        _engine = new RatingEngine(_book, catalog.RateCard);
        var capacity = Shape == "spot-change" ? CapacityType.Spot : CapacityType.OnDemand;
        for (var n = 0; n < Nodes; n++)
        {
            var node = new NodeSpec($"i-{n:D5}", "aws", "us-east-1", "us-east-1a", "p4d.24xlarge", capacity, 8, "A100", "bench",
                Labels: new Dictionary<string, string> { ["team"] = "platform" });
            _engine.Apply(new NodeStarted(s_start, node));
            for (var g = 0; g < 8; g++)
            {
                if (Shape == "mig")
                {
                    // 3g + 2g + 1g + 1g: four holders per GPU, all seven slices used.
                    string[] profiles = ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"];
                    for (var p = 0; p < profiles.Length; p++)
                        Allocate($"k8s:ns/pod-{n}-{g}-{p}", node.Id, g, GpuShare.Mig(profiles[p]));
                }
                else
                {
                    Allocate($"slurm:{n * 8 + g}", node.Id, g, GpuShare.Whole);
                }
            }
        }
        _minute = s_start;
    }

    private void Allocate(string workload, string node, int gpu, GpuShare share)
    {
        _engine.Apply(new WorkloadStarted(s_start, new WorkloadInfo(workload, "bench", workload, "u", "t", "p")));
        _engine.Apply(new GpuAllocated(s_start, workload, node, gpu, share));
    }

    [Benchmark]
    public int RateOneMinute()
    {
        if (Shape == "spot-change")
            _book.Add(new InstancePrice("aws", "us-east-1", "", "p4d.24xlarge", CapacityType.Spot, 10m + (_minute.Minute % 7), 1m, 8, "A100", 96, 1152, _minute.AddSeconds(29), "bench"));
        var lines = _engine.RateMinute(_minute).Lines.Count;
        _minute = _minute.AddMinutes(1);
        return lines;
    }
}
