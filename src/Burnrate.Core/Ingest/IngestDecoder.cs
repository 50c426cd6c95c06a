using System.Globalization;
using Burnrate.Protocols.Events;
using Burnrate.Protocols.Exposition;
using Burnrate.Protocols.Otlp;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;

namespace Burnrate.Ingest;

/// <summary>What one accepted input decoded to: metric samples for the telemetry mapper, or exact fleet events.</summary>
public readonly record struct IngestPayload(IReadOnlyList<MetricSample> Samples, IReadOnlyList<FleetEvent> Events)
{
    /// <summary>Samples plus events: the unit the ingest queue is bounded in.</summary>
    public int Count => Samples.Count + Events.Count;

    public static IngestPayload OfSamples(IReadOnlyList<MetricSample> samples) => new(samples, []);

    public static IngestPayload OfEvents(IReadOnlyList<FleetEvent> events) => new([], events);
}

/// <summary>
/// Decodes an <see cref="IngestRecord"/> into its payload: the receivers use the same decoders on the way in, and the
/// write-ahead log replay uses this to turn what it kept back into exactly what was acknowledged.
/// </summary>
public static class IngestDecoder
{
    /// <summary>The label the scraper sets to the target's job.</summary>
    public const string JobLabel = "job";

    /// <summary>The label the scraper sets to the target's <c>host:port</c>.</summary>
    public const string InstanceLabel = "instance";

    /// <summary>Decodes <paramref name="record"/>; remote write series labels come from <paramref name="seriesCache"/> when it has them.</summary>
    /// <exception cref="InvalidTelemetryException">The body does not decode (a receiver answers 400).</exception>
    /// <exception cref="UnsupportedRemoteWriteTypeException">A remote write Content-Type names another message (415).</exception>
    public static IngestPayload Decode(IngestRecord record, RemoteWriteSeriesCache? seriesCache = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        var body = record.Body.Span;
        switch (record.Kind)
        {
            case IngestKind.RemoteWrite:
                return IngestPayload.OfSamples(RemoteWriteDecoder.Decode(body, record.Source, seriesCache: seriesCache).Samples);
            case IngestKind.OtlpProtobuf:
                return IngestPayload.OfSamples(OtlpMetricsDecoder.DecodeProtobuf(body).Samples);
            case IngestKind.OtlpJson:
                return IngestPayload.OfSamples(OtlpMetricsDecoder.DecodeJson(body).Samples);
            case IngestKind.Exposition:
                var newline = record.Source.IndexOf('\n', StringComparison.Ordinal);
                var job = newline < 0 ? record.Source : record.Source[..newline];
                var instance = newline < 0 ? "" : record.Source[(newline + 1)..];
                var page = new ExpositionParser().Parse(body, record.ReceivedAt.ToUnixTimeMilliseconds());
                return IngestPayload.OfSamples(WithTargetLabels(page.Samples, job, instance));
            case IngestKind.Events:
                return IngestPayload.OfEvents(OrderByTime(EventsDecoder.Decode(body)));
            case IngestKind.RatingMark:
                return IngestPayload.OfEvents([]);
            default:
                throw new InvalidTelemetryException(string.Create(CultureInfo.InvariantCulture, $"unknown ingest record kind {(byte)record.Kind}"));
        }
    }

    /// <summary>
    /// The samples of one scrape with the target's <c>job</c> and <c>instance</c> labels, as Prometheus attaches them
    /// (with <c>honor_labels: false</c>): a label of the page with the same name is kept as <c>exported_job</c> or
    /// <c>exported_instance</c>. Samples of one series keep sharing one label array.
    /// </summary>
    public static IReadOnlyList<MetricSample> WithTargetLabels(IReadOnlyList<MetricSample> samples, string job, string instance)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var result = new MetricSample[samples.Count];
        Label[]? lastIn = null;
        Label[]? lastOut = null;
        for (var i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            if (!ReferenceEquals(s.Labels, lastIn))
            {
                lastIn = s.Labels;
                lastOut = AddTargetLabels(s.Labels, job, instance);
            }
            result[i] = new MetricSample(lastOut!, s.TimestampMs, s.Value);
        }
        return result;
    }

    /// <summary>Events in time order, same-instant events in the order sent (workload_started before its gpu_allocated).</summary>
    public static IReadOnlyList<FleetEvent> OrderByTime(IReadOnlyList<FleetEvent> events) => [.. events.OrderBy(e => e.Time)];

    private static Label[] AddTargetLabels(Label[] labels, string job, string instance)
    {
        var list = new List<Label>(labels.Length + 2);
        foreach (var label in labels)
        {
            list.Add(label.Name switch
            {
                JobLabel => new Label("exported_job", label.Value),
                InstanceLabel => new Label("exported_instance", label.Value),
                _ => label,
            });
        }
        list.Add(new Label(JobLabel, job));
        if (instance.Length > 0)
            list.Add(new Label(InstanceLabel, instance));
        list.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        return [.. list];
    }
}
