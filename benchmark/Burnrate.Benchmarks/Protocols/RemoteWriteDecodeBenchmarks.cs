using BenchmarkDotNet.Attributes;
using Burnrate.Protocols.RemoteWrite;
using Google.Protobuf;
using Snappier;
using V1 = Burnrate.Protocols.RemoteWrite.V1;
using V2 = Burnrate.Protocols.RemoteWrite.V2;

namespace Burnrate.Benchmarks.Protocols;

/// <summary>
/// Decoding one remote write request of <see cref="Series"/> series × 1 sample (a DCGM-like fleet scrape: 8 GPUs per
/// node, 8 labels per series), the same data as a 1.0 <c>WriteRequest</c> (the baseline) and a 2.0 <c>Request</c>,
/// Snappy-compressed as Prometheus sends them.
/// </summary>
[MemoryDiagnoser]
public class RemoteWriteDecodeBenchmarks
{
    private const long T0 = 1_795_358_659_748;
    private byte[] _v1 = [];
    private byte[] _v2 = [];
    private readonly RemoteWriteSeriesCache _cache = new();

    [Params(2000)]
    public int Series { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var v1 = new V1.WriteRequest();
        var v2 = new V2.Request();
        var refs = new Dictionary<string, uint>(StringComparer.Ordinal);
        uint Ref(string s)
        {
            if (!refs.TryGetValue(s, out var r))
            {
                r = (uint)v2.Symbols.Count;
                refs.Add(s, r);
                v2.Symbols.Add(s);
            }
            return r;
        }
        Ref("");

        for (var i = 0; i < Series; i++)
        {
            (string Name, string Value)[] labels =
            [
                ("Hostname", $"node-{i / 8:D4}"), ("UUID", $"GPU-{i:D8}-d9cf-fef3-62e9-d92044ab6e52"), ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
                ("container", "trainer"), ("gpu", (i % 8).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("modelName", "NVIDIA H100 80GB HBM3"), ("namespace", "ml"), ("pod", $"train-{i / 8}"),
            ];
            var s1 = new V1.TimeSeries();
            var s2 = new V2.TimeSeries();
            foreach (var (name, value) in labels)
            {
                s1.Labels.Add(new V1.Label { Name = name, Value = value });
                s2.LabelsRefs.Add(Ref(name));
                s2.LabelsRefs.Add(Ref(value));
            }
            s1.Samples.Add(new V1.Sample { Timestamp = T0, Value = i % 101 });
            s2.Samples.Add(new V2.Sample { Timestamp = T0, Value = i % 101 });
            v1.Timeseries.Add(s1);
            v2.Timeseries.Add(s2);
        }
        _v1 = Snappy.CompressToArray(v1.ToByteArray());
        _v2 = Snappy.CompressToArray(v2.ToByteArray());
        RemoteWriteDecoder.Decode(_v1, "application/x-protobuf", seriesCache: _cache);
    }

    [Benchmark(Baseline = true, Description = "1.0 WriteRequest")]
    public int DecodeV1() => RemoteWriteDecoder.Decode(_v1, "application/x-protobuf").SampleCount;

    /// <summary>The same request again through a receiver's series cache, warm: what a scrape repeated costs.</summary>
    [Benchmark(Description = "1.0 WriteRequest, series cache warm")]
    public int DecodeV1Cached() => RemoteWriteDecoder.Decode(_v1, "application/x-protobuf", seriesCache: _cache).SampleCount;

    [Benchmark(Description = "2.0 Request")]
    public int DecodeV2() => RemoteWriteDecoder.Decode(_v2, "application/x-protobuf;proto=io.prometheus.write.v2.Request").SampleCount;
}
