namespace Burnrate.Telemetry;

/// <summary>One label of a series. Names and values are interned by decoders that see the same strings often.</summary>
public readonly record struct Label(string Name, string Value);

/// <summary>
/// One decoded metric sample, the common output of every receiver (Prometheus remote write 1.0/2.0, OTLP, the text
/// exposition scraper) before the mapping to fleet events: the series labels sorted by name (the metric name is the
/// <c>__name__</c> label, as in Prometheus), a timestamp in Unix milliseconds and a value.
/// </summary>
public readonly record struct MetricSample(Label[] Labels, long TimestampMs, double Value)
{
    /// <summary>The label that holds the metric name.</summary>
    public const string NameLabel = "__name__";

    /// <summary>The metric name, or empty.</summary>
    public string Name => Get(NameLabel) ?? "";

    /// <summary>The value of label <paramref name="name"/>, or null.</summary>
    public string? Get(string name)
    {
        foreach (var label in Labels)
        {
            if (string.Equals(label.Name, name, StringComparison.Ordinal))
                return label.Value;
        }
        return null;
    }
}

/// <summary>Metric metadata (type, help, unit) as remote write and the exposition format carry it.</summary>
public readonly record struct MetricMetadata(string MetricFamily, string Type, string Help, string Unit);

/// <summary>
/// Input a decoder rejects: the message says what was wrong and where (byte offset, field, line), for a 400 answer.
/// </summary>
public sealed class InvalidTelemetryException : Exception
{
    public InvalidTelemetryException(string message) : base(message) { }
    public InvalidTelemetryException(string message, Exception inner) : base(message, inner) { }
    public InvalidTelemetryException() { }
}
