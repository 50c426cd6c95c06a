using System.Globalization;
using BenchmarkDotNet.Attributes;
using Burnrate.Protocols.RemoteWrite;
using Google.Protobuf;
using Snappier;
using V1 = Burnrate.Protocols.RemoteWrite.V1;

namespace Burnrate.Benchmarks.Protocols;

/// <summary>
/// Decoding a 10,000-GPU fleet's worth of distinct series (<see cref="Requests"/> requests of 2,000 DCGM-like series,
/// 13 labels each, sorted as Prometheus sends them), one request per operation in rotation, as a receiver sees a fleet
/// scraped again and again: without a series cache (the baseline) and through one warm cache holding every series.
/// Unlike <see cref="RemoteWriteDecodeBenchmarks"/>, the working set does not fit in the CPU caches.
/// </summary>
[MemoryDiagnoser]
public class RemoteWriteSeriesCacheBenchmarks
{
    private const long T0 = 1_795_358_659_748;
    private const int SeriesPerRequest = 2000;
    private byte[][] _requests = [];
    private RemoteWriteSeriesCache _cache = new();
    private int _next;

    [Params(56)]
    public int Requests { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _requests = new byte[Requests][];
        for (var r = 0; r < Requests; r++)
        {
            var request = new V1.WriteRequest();
            for (var i = 0; i < SeriesPerRequest; i++)
            {
                var n = r * SeriesPerRequest + i;
                var gpu = (n % 8).ToString(CultureInfo.InvariantCulture);
                var node = $"ip-100-65-{n / 2000}-{n / 8 % 250}.ec2.internal";
                (string Name, string Value)[] labels =
                [
                    ("DCGM_FI_DRIVER_VERSION", "535.183.01"), ("Hostname", node), ("UUID", $"GPU-{n:x8}-4a1e-9c3d-{n * 2654435761L & 0xFFFFFFFFFFFF:x12}"),
                    ("__name__", $"DCGM_FI_DEV_FIELD_{n % 10}"), ("container", "trainer"), ("device", "nvidia" + gpu), ("gpu", gpu),
                    ("instance", $"100.65.{n / 2000}.{n / 8 % 250}:9400"), ("job", "dcgm-exporter"), ("modelName", "NVIDIA A100-SXM4-40GB"),
                    ("namespace", "research"), ("pci_bus_id", $"00000000:{0x10 + n % 8 * 0x10:X2}:00.0"), ("pod", $"research-train-{n / 8:D5}-0"),
                ];
                var series = new V1.TimeSeries();
                foreach (var (name, value) in labels)
                    series.Labels.Add(new V1.Label { Name = name, Value = value });
                series.Samples.Add(new V1.Sample { Timestamp = T0, Value = n % 101 });
                request.Timeseries.Add(series);
            }
            _requests[r] = Snappy.CompressToArray(request.ToByteArray());
        }
        _cache = new RemoteWriteSeriesCache();
        foreach (var body in _requests)
            RemoteWriteDecoder.Decode(body, "application/x-protobuf", seriesCache: _cache);
    }

    [Benchmark(Baseline = true, Description = "1.0, no cache")]
    public int Uncached() => RemoteWriteDecoder.Decode(Next(), "application/x-protobuf").SampleCount;

    [Benchmark(Description = "1.0, warm series cache")]
    public int Cached() => RemoteWriteDecoder.Decode(Next(), "application/x-protobuf", seriesCache: _cache).SampleCount;

    private byte[] Next()
    {
        var body = _requests[_next];
        _next = (_next + 1) % _requests.Length;
        return body;
    }
}
