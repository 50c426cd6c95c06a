using Burnrate.Telemetry;

namespace Burnrate.Protocols.RemoteWrite;

/// <summary>The remote write message a request carried, chosen from its Content-Type.</summary>
public enum RemoteWriteVersion
{
    /// <summary>Remote Write 1.0, <c>prometheus.WriteRequest</c>.</summary>
    V1 = 1,

    /// <summary>Remote Write 2.0 (rc.4, tolerant of rc.3), <c>io.prometheus.write.v2.Request</c>.</summary>
    V2 = 2,
}

/// <summary>
/// What one remote write request decoded to: its float samples (one <see cref="MetricSample"/> per sample, labels
/// sorted by name, samples of one series sharing one label array) and its metadata, plus the counts the HTTP layer
/// reports in 2.0's <c>X-Prometheus-Remote-Write-*-Written</c> headers.
/// </summary>
public sealed class RemoteWriteResult
{
    internal RemoteWriteResult(
        RemoteWriteVersion version,
        IReadOnlyList<MetricSample> samples,
        MetricMetadata[] metadata,
        int seriesCount,
        int histogramCount,
        int exemplarCount)
    {
        Version = version;
        Samples = samples;
        Metadata = metadata;
        SeriesCount = seriesCount;
        HistogramCount = histogramCount;
        ExemplarCount = exemplarCount;
    }

    /// <summary>The message version the request was decoded as.</summary>
    public RemoteWriteVersion Version { get; }

    /// <summary>The float samples, in request order (series by series).</summary>
    public IReadOnlyList<MetricSample> Samples { get; }

    /// <summary>
    /// Metric metadata: 1.0's <c>metadata</c> entries as sent; for 2.0, one entry per metric family whose series carried
    /// metadata (first one wins).
    /// </summary>
    public IReadOnlyList<MetricMetadata> Metadata { get; }

    /// <summary>Number of float samples (the value of <c>X-Prometheus-Remote-Write-Samples-Written</c> on success).</summary>
    public int SampleCount => Samples.Count;

    /// <summary>Number of time series in the request.</summary>
    public int SeriesCount { get; }

    /// <summary>Number of metadata entries returned in <see cref="Metadata"/>.</summary>
    public int MetadataCount => Metadata.Count;

    /// <summary>Native histograms in the request. They are not decoded, so none is written.</summary>
    public int HistogramCount { get; }

    /// <summary>Exemplars in the request. They are not decoded, so none is written.</summary>
    public int ExemplarCount { get; }
}
