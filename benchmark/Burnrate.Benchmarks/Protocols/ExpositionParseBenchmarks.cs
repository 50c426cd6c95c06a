using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Burnrate.Protocols.Exposition;

namespace Burnrate.Benchmarks.Protocols;

/// <summary>
/// Parsing one DCGM-like <c>/metrics</c> page of 10,000 lines: 1,000 families, each a HELP and a TYPE line and one
/// sample per GPU of an 8-GPU node with dcgm-exporter's label set (about 10 labels, pod attribution on). The baseline
/// reuses one parser, as a scraper does per target (the intern pool is warm); the other builds a parser per page.
/// </summary>
[MemoryDiagnoser]
public class ExpositionParseBenchmarks
{
    private const long ScrapeMs = 1_763_823_660_000;
    private byte[] _page = [];
    private ExpositionParser _parser = null!;

    [GlobalSetup]
    public void Setup()
    {
        var page = new StringBuilder();
        for (var family = 0; family < 1000; family++)
        {
            var name = $"DCGM_FI_DEV_FIELD_{family}";
            page.Append("# HELP ").Append(name).Append(" Field ").Append(family).Append(" (in units).\n");
            page.Append("# TYPE ").Append(name).Append(family % 5 == 0 ? " counter\n" : " gauge\n");
            for (var gpu = 0; gpu < 8; gpu++)
            {
                var pod = gpu < 6 ? $"train-job-{gpu / 2}" : "";
                page.Append(CultureInfo.InvariantCulture,
                    $"{name}{{gpu=\"{gpu}\",UUID=\"GPU-a4f34abc-7715-3560-dcea-7238b9611a4{gpu}\",pci_bus_id=\"00000000:{gpu + 16:X2}:00.0\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"gpu-node-a1\",DCGM_FI_DRIVER_VERSION=\"550.90.07\",container=\"{(pod.Length > 0 ? "trainer" : "")}\",namespace=\"{(pod.Length > 0 ? "ml" : "")}\",pod=\"{pod}\"}} {(family * 8 + gpu) * 1.25:F6}\n");
            }
        }
        _page = Encoding.UTF8.GetBytes(page.ToString());
        _parser = new ExpositionParser();
        _parser.Parse(_page, ScrapeMs);
    }

    [Benchmark(Baseline = true)]
    public int ReusedParser() => _parser.Parse(_page, ScrapeMs).Samples.Count;

    [Benchmark]
    public int FreshParser() => new ExpositionParser().Parse(_page, ScrapeMs).Samples.Count;
}
