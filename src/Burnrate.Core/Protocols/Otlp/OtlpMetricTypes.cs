namespace Burnrate.Protocols.Otlp;

/// <summary>
/// The <see cref="Telemetry.MetricMetadata.Type"/> values the OTLP decoder produces. Cumulative data keeps the
/// Prometheus type names; delta data gets its own names because each sample is an increment over
/// <c>(start, time]</c>, not a running total, and the mapper must accumulate it.
/// </summary>
public static class OtlpMetricTypes
{
    /// <summary>An OTLP gauge, or a non-monotonic cumulative sum (an up/down counter's current level).</summary>
    public const string Gauge = "gauge";

    /// <summary>A monotonic cumulative sum: a Prometheus counter.</summary>
    public const string Counter = "counter";

    /// <summary>A monotonic delta sum: each sample is the increase since the previous one.</summary>
    public const string DeltaCounter = "delta_counter";

    /// <summary>A non-monotonic delta sum: each sample is a change (possibly negative) since the previous one.</summary>
    public const string DeltaUpDownCounter = "delta_updowncounter";

    /// <summary>A cumulative histogram, decoded to its <c>_count</c> and <c>_sum</c> series.</summary>
    public const string Histogram = "histogram";

    /// <summary>A delta histogram: its <c>_count</c> and <c>_sum</c> samples are increments.</summary>
    public const string DeltaHistogram = "delta_histogram";
}
