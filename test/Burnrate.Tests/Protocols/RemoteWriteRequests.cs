using Burnrate.Protocols.RemoteWrite;
using Google.Protobuf;
using V1 = Burnrate.Protocols.RemoteWrite.V1;
using V2 = Burnrate.Protocols.RemoteWrite.V2;

namespace Burnrate.Tests.Protocols;

/// <summary>One series of test data: label pairs as the sender lists them, samples, and optional gauge metadata.</summary>
internal sealed record SomeSeries((string Name, string Value)[] Labels, (long TimestampMs, double Value)[] Samples, string? Help = null);

/// <summary>Builds the same data as a Remote Write 1.0 and a 2.0 message, Snappy-compressed as on the wire.</summary>
internal static class RemoteWriteRequests
{
    public const string V1ContentType = "application/x-protobuf";
    public const string V2ContentType = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

    /// <summary>DCGM's "not available" (README sample for DCGM_FI_DEV_MEMORY_TEMP); the mapper drops it, not the decoder.</summary>
    public const double DcgmNotAvailable = 9223372036854775794d;

    public const long T0 = 1_795_358_659_748; // ms

    /// <summary>GPU utilization of 2 GPUs on one node plus a kube_pod_info series, 3 samples each.</summary>
    public static SomeSeries[] GpuFleet() =>
    [
        Dcgm("0", "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52", [(T0, 87), (T0 + 15_000, 91), (T0 + 30_000, DcgmNotAvailable)]),
        Dcgm("1", "GPU-1b2c3d4e-0000-1111-2222-333344445555", [(T0, 0), (T0 + 15_000, 12.5), (T0 + 30_000, 100)]),
        new(
            [("__name__", "kube_pod_info"), ("created_by_kind", "Job"), ("host_ip", "10.0.0.7"), ("namespace", "ml"),
             ("node", "node-a"), ("pod", "train-0"), ("uid", "6f1c3a7e-9a0b-4c8e-b1a2-0d9e8f7a6b5c")],
            [(T0, 1), (T0 + 15_000, 1), (T0 + 30_000, 1)],
            "Information about pod."),
    ];

    public static SomeSeries Dcgm(string gpu, string uuid, (long, double)[] samples) => new(
        [("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("Hostname", "node-a"), ("UUID", uuid), ("container", "trainer"),
         ("gpu", gpu), ("modelName", "NVIDIA H100 80GB HBM3"), ("namespace", "ml"), ("pod", "train-0")],
        samples,
        "GPU utilization (in %).");

    public static V1.WriteRequest V1Message(IEnumerable<SomeSeries> data)
    {
        var request = new V1.WriteRequest();
        foreach (var series in data)
        {
            var ts = new V1.TimeSeries();
            foreach (var (name, value) in series.Labels)
                ts.Labels.Add(new V1.Label { Name = name, Value = value });
            foreach (var (timestamp, value) in series.Samples)
                ts.Samples.Add(new V1.Sample { Timestamp = timestamp, Value = value });
            request.Timeseries.Add(ts);
        }
        return request;
    }

    public static V2.Request V2Message(IEnumerable<SomeSeries> data)
    {
        var request = new V2.Request();
        var refs = new Dictionary<string, uint>(StringComparer.Ordinal);
        uint Ref(string s)
        {
            if (!refs.TryGetValue(s, out var r))
            {
                r = (uint)request.Symbols.Count;
                refs.Add(s, r);
                request.Symbols.Add(s);
            }
            return r;
        }
        Ref(""); // symbols[0] MUST be ""

        foreach (var series in data)
        {
            var ts = new V2.TimeSeries();
            foreach (var (name, value) in series.Labels.OrderBy(l => l.Name, StringComparer.Ordinal))
            {
                ts.LabelsRefs.Add(Ref(name));
                ts.LabelsRefs.Add(Ref(value));
            }
            foreach (var (timestamp, value) in series.Samples)
                ts.Samples.Add(new V2.Sample { Timestamp = timestamp, Value = value });
            if (series.Help is not null)
                ts.Metadata = new V2.Metadata { Type = V2.Metadata.Types.MetricType.Gauge, HelpRef = Ref(series.Help) };
            request.Timeseries.Add(ts);
        }
        return request;
    }

    public static byte[] Snappy(IMessage message) => Snappier.Snappy.CompressToArray(message.ToByteArray());

    public static byte[] Snappy(byte[] raw) => Snappier.Snappy.CompressToArray(raw);

    /// <summary>A sample as text with its value's exact bits, for comparing decodes.</summary>
    public static string Describe(Burnrate.Telemetry.MetricSample sample) =>
        "{" + string.Join(",", sample.Labels.Select(l => $"{l.Name}=\"{l.Value}\"")) + "} "
        + sample.TimestampMs + " " + BitConverter.DoubleToInt64Bits(sample.Value).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    public static RemoteWriteResult DecodeV1(IEnumerable<SomeSeries> data) =>
        RemoteWriteDecoder.Decode(Snappy(V1Message(data)), V1ContentType);

    public static RemoteWriteResult DecodeV2(IEnumerable<SomeSeries> data) =>
        RemoteWriteDecoder.Decode(Snappy(V2Message(data)), V2ContentType);
}
