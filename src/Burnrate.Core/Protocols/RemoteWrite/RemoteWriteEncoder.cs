using Burnrate.Telemetry;
using Google.Protobuf;
using V1 = Burnrate.Protocols.RemoteWrite.V1;

namespace Burnrate.Protocols.RemoteWrite;

/// <summary>
/// Builds Prometheus Remote Write 1.0 request bodies (<c>prometheus.WriteRequest</c>, Snappy block-compressed) for
/// Burnrate's own senders: the node agent, the load generator and tests. Send with Content-Type
/// <see cref="ContentType"/>, <c>Content-Encoding: snappy</c> and <c>X-Prometheus-Remote-Write-Version: 0.1.0</c>.
/// </summary>
public static class RemoteWriteEncoder
{
    /// <summary>The Content-Type of a 1.0 request.</summary>
    public const string ContentType = "application/x-protobuf";

    /// <summary>The version header value of a 1.0 request.</summary>
    public const string VersionHeader = "0.1.0";

    /// <summary>
    /// Encodes <paramref name="samples"/> as one request: consecutive samples with the same label array (by reference or
    /// by value) form one series, as the decoder returns them. Labels are written in the order given; the spec wants
    /// them sorted by name, which <see cref="MetricSample"/> labels from our decoders already are.
    /// </summary>
    public static byte[] EncodeV1(IReadOnlyList<MetricSample> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var request = new V1.WriteRequest();
        V1.TimeSeries? series = null;
        Label[]? labels = null;
        foreach (var sample in samples)
        {
            if (series is null || !(ReferenceEquals(labels, sample.Labels) || labels.AsSpan().SequenceEqual(sample.Labels)))
            {
                series = new V1.TimeSeries();
                foreach (var label in sample.Labels)
                    series.Labels.Add(new V1.Label { Name = label.Name, Value = label.Value });
                request.Timeseries.Add(series);
                labels = sample.Labels;
            }
            series.Samples.Add(new V1.Sample { Timestamp = sample.TimestampMs, Value = sample.Value });
        }
        return Snappier.Snappy.CompressToArray(request.ToByteArray());
    }

    /// <summary>Labels for a series: <c>__name__</c> = <paramref name="name"/> plus <paramref name="labels"/>, sorted by name.</summary>
    public static Label[] Series(string name, params (string Name, string Value)[] labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var result = new Label[labels.Length + 1];
        result[0] = new Label(MetricSample.NameLabel, name);
        for (var i = 0; i < labels.Length; i++)
            result[i + 1] = new Label(labels[i].Name, labels[i].Value);
        Array.Sort(result, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        return result;
    }
}
