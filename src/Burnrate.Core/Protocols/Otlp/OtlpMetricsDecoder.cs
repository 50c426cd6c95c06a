using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using Burnrate.Protocols.Otlp.Internal;
using Burnrate.Protocols.Otlp.Proto;
using Burnrate.Telemetry;
using Google.Protobuf;

namespace Burnrate.Protocols.Otlp;

/// <summary>
/// Decodes an OTLP/HTTP metrics export body (<c>ExportMetricsServiceRequest</c>, binary protobuf or OTLP JSON) into
/// <see cref="MetricSample"/>s the Prometheus way: the sanitized metric name as <c>__name__</c>, resource and
/// data-point attributes as labels, gauges and sums as one sample per point, histograms as <c>_count</c> and
/// <c>_sum</c>. Exponential histograms, summaries and unusable points are rejected as a partial success, not an
/// error. See docs/protocols.md, "OTLP metrics decoding".
/// </summary>
public static class OtlpMetricsDecoder
{
    /// <summary>The Prometheus staleness marker that OTLP's NO_RECORDED_VALUE flag becomes.</summary>
    internal const ulong StaleNaNBits = 0x7ff0000000000002;

    internal const string RequestMessageName = "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest";

    private const uint NoRecordedValueFlag = 1; // DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    private const int MaxReasonsInMessage = 8;

    // OTLP/HTTP §JSON: receivers MUST ignore unknown fields. The parser also takes enum names, numbers for int64 and
    // snake_case keys, which OTLP does not send but costs nothing to accept.
    private static readonly JsonParser s_jsonParser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly Comparison<Label> s_byName = static (a, b) => string.CompareOrdinal(a.Name, b.Name);

    /// <summary>Decodes a binary protobuf body (<c>Content-Type: application/x-protobuf</c>), already decompressed.</summary>
    /// <exception cref="InvalidTelemetryException">The body is not a valid <c>ExportMetricsServiceRequest</c> (answer 400).</exception>
    public static OtlpResult DecodeProtobuf(ReadOnlySpan<byte> body)
    {
        ExportMetricsServiceRequest request;
        try
        {
            request = ExportMetricsServiceRequest.Parser.ParseFrom(body);
        }
        catch (InvalidProtocolBufferException ex)
        {
            ThrowInvalid($"protobuf: cannot decode {RequestMessageName} ({body.Length} bytes): {ex.Message}", ex);
            return null;
        }
        return Decode(request);
    }

    /// <summary>Decodes an OTLP JSON body (<c>Content-Type: application/json</c>), already decompressed.</summary>
    /// <exception cref="InvalidTelemetryException">The body is not UTF-8, not JSON, or not an OTLP JSON request (answer 400).</exception>
    public static OtlpResult DecodeJson(ReadOnlySpan<byte> utf8Json)
    {
        string text;
        try
        {
            text = s_strictUtf8.GetString(utf8Json);
        }
        catch (DecoderFallbackException ex)
        {
            ThrowInvalid($"json: invalid UTF-8 at byte {ex.Index} of {utf8Json.Length}", ex);
            return null;
        }

        ExportMetricsServiceRequest request;
        try
        {
            request = s_jsonParser.Parse<ExportMetricsServiceRequest>(text);
        }
        catch (Exception ex) when (ex is InvalidJsonException or InvalidProtocolBufferException or FormatException or OverflowException)
        {
            // The parser's own messages name no position or field; the locator parses the refused body again to say where.
            ThrowInvalid(OtlpJsonErrorLocator.Describe(utf8Json, s_jsonParser, RequestMessageName, ex.Message), ex);
            return null;
        }
        return Decode(request);
    }

    private static OtlpResult Decode(ExportMetricsServiceRequest request)
    {
        var scratch = new DecodeScratch();
        foreach (var resourceMetrics in request.ResourceMetrics)
        {
            var resourceLabels = scratch.ResourceLabels;
            resourceLabels.Clear();
            if (resourceMetrics.Resource is { } resource)
                AddAttributes(resource.Attributes, resourceLabels, scratch);

            foreach (var scopeMetrics in resourceMetrics.ScopeMetrics)
            {
                foreach (var metric in scopeMetrics.Metrics)
                    DecodeMetric(metric, scratch);
            }
        }
        return new OtlpResult(scratch.Samples, scratch.Metadata, scratch.Accepted, scratch.Rejected, scratch.BuildMessage());
    }

    private static void DecodeMetric(Metric metric, DecodeScratch scratch)
    {
        var pointCount = CountPoints(metric);
        if (pointCount == 0)
            return;
        if (metric.Name.Length == 0)
        {
            scratch.Reject("a metric has no name", pointCount);
            return;
        }

        var name = scratch.MetricName(metric.Name);
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                AddMetadata(scratch, name, OtlpMetricTypes.Gauge, metric);
                foreach (var point in metric.Gauge.DataPoints)
                    DecodeNumberPoint(point, metric.Name, name, scratch);
                break;

            case Metric.DataOneofCase.Sum:
                var sum = metric.Sum;
                var type = (sum.AggregationTemporality, sum.IsMonotonic) switch
                {
                    (AggregationTemporality.Cumulative, true) => OtlpMetricTypes.Counter,
                    (AggregationTemporality.Cumulative, false) => OtlpMetricTypes.Gauge,
                    (AggregationTemporality.Delta, true) => OtlpMetricTypes.DeltaCounter,
                    (AggregationTemporality.Delta, false) => OtlpMetricTypes.DeltaUpDownCounter,
                    _ => null,
                };
                if (type is null)
                {
                    scratch.Reject($"sum \"{metric.Name}\" has aggregation temporality {(int)sum.AggregationTemporality}, not delta (1) or cumulative (2)", pointCount);
                    return;
                }
                AddMetadata(scratch, name, type, metric);
                foreach (var point in sum.DataPoints)
                    DecodeNumberPoint(point, metric.Name, name, scratch);
                break;

            case Metric.DataOneofCase.Histogram:
                var histogram = metric.Histogram;
                var histogramType = histogram.AggregationTemporality switch
                {
                    AggregationTemporality.Cumulative => OtlpMetricTypes.Histogram,
                    AggregationTemporality.Delta => OtlpMetricTypes.DeltaHistogram,
                    _ => null,
                };
                if (histogramType is null)
                {
                    scratch.Reject($"histogram \"{metric.Name}\" has aggregation temporality {(int)histogram.AggregationTemporality}, not delta (1) or cumulative (2)", pointCount);
                    return;
                }
                AddMetadata(scratch, name, histogramType, metric);
                var countName = scratch.MetricName(metric.Name, "_count");
                var sumName = scratch.MetricName(metric.Name, "_sum");
                foreach (var point in histogram.DataPoints)
                    DecodeHistogramPoint(point, metric.Name, countName, sumName, scratch);
                break;

            case Metric.DataOneofCase.ExponentialHistogram:
                scratch.Reject($"exponential histogram \"{metric.Name}\" is not supported", pointCount);
                break;

            default:
                scratch.Reject($"summary \"{metric.Name}\" is not supported", pointCount);
                break;
        }
    }

    private static int CountPoints(Metric metric) => metric.DataCase switch
    {
        Metric.DataOneofCase.Gauge => metric.Gauge.DataPoints.Count,
        Metric.DataOneofCase.Sum => metric.Sum.DataPoints.Count,
        Metric.DataOneofCase.Histogram => metric.Histogram.DataPoints.Count,
        Metric.DataOneofCase.ExponentialHistogram => metric.ExponentialHistogram.DataPoints.Count,
        Metric.DataOneofCase.Summary => metric.Summary.DataPoints.Count,
        _ => 0,
    };

    private static void DecodeNumberPoint(NumberDataPoint point, string metricName, string name, DecodeScratch scratch)
    {
        double value;
        if ((point.Flags & NoRecordedValueFlag) != 0)
        {
            value = BitConverter.UInt64BitsToDouble(StaleNaNBits);
        }
        else
        {
            switch (point.ValueCase)
            {
                case NumberDataPoint.ValueOneofCase.AsDouble:
                    value = point.AsDouble;
                    break;
                case NumberDataPoint.ValueOneofCase.AsInt:
                    value = point.AsInt;
                    break;
                default:
                    scratch.Reject($"a data point of \"{metricName}\" has no value (as_double or as_int)", 1);
                    return;
            }
        }
        if (!TryTimestamp(point.TimeUnixNano, metricName, scratch, out var timestampMs))
            return;

        var labels = BuildLabels(point.Attributes, name, scratch);
        scratch.Samples.Add(new MetricSample(labels, timestampMs, value));
        scratch.Accepted++;
    }

    private static void DecodeHistogramPoint(HistogramDataPoint point, string metricName, string countName, string sumName, DecodeScratch scratch)
    {
        if (!TryTimestamp(point.TimeUnixNano, metricName, scratch, out var timestampMs))
            return;

        var stale = (point.Flags & NoRecordedValueFlag) != 0;
        var staleNaN = BitConverter.UInt64BitsToDouble(StaleNaNBits);
        var countLabels = BuildLabels(point.Attributes, countName, scratch);
        scratch.Samples.Add(new MetricSample(countLabels, timestampMs, stale ? staleNaN : point.Count));

        // sum is optional (absent when measurements can be negative); no _sum series then, as in Prometheus.
        if (stale || point.HasSum)
        {
            var sumLabels = (Label[])countLabels.Clone();
            var nameIndex = Array.FindIndex(sumLabels, static l => l.Name == MetricSample.NameLabel);
            sumLabels[nameIndex] = new Label(MetricSample.NameLabel, sumName);
            scratch.Samples.Add(new MetricSample(sumLabels, timestampMs, stale ? staleNaN : point.Sum));
        }
        scratch.Accepted++;
    }

    // time_unix_nano is required; 0 would put the sample at 1970 and rate nothing.
    private static bool TryTimestamp(ulong timeUnixNano, string metricName, DecodeScratch scratch, out long timestampMs)
    {
        timestampMs = (long)(timeUnixNano / 1_000_000);
        if (timeUnixNano != 0)
            return true;
        scratch.Reject($"a data point of \"{metricName}\" has no time_unix_nano", 1);
        return false;
    }

    private static void AddMetadata(DecodeScratch scratch, string family, string type, Metric metric)
    {
        if (scratch.Families.Add(family))
            scratch.Metadata.Add(new MetricMetadata(family, type, metric.Description, metric.Unit));
    }

    // Resource labels first, then the point's attributes over them (a clash goes to the data point); the metric name
    // goes in last so that no attribute can replace it. Labels with an empty value are dropped: Prometheus treats an
    // empty label as an absent one.
    private static Label[] BuildLabels(IList<KeyValue> attributes, string name, DecodeScratch scratch)
    {
        var labels = scratch.PointLabels;
        labels.Clear();
        foreach (var (key, value) in scratch.ResourceLabels)
            labels[key] = value;
        AddAttributes(attributes, labels, scratch);
        labels[MetricSample.NameLabel] = name;

        var result = new Label[labels.Count];
        var i = 0;
        foreach (var (key, value) in labels)
            result[i++] = new Label(key, value);
        Array.Sort(result, s_byName);
        return result;
    }

    // Within one attribute list the last of two keys that sanitize alike wins.
    private static void AddAttributes(IList<KeyValue> attributes, Dictionary<string, string> labels, DecodeScratch scratch)
    {
        foreach (var attribute in attributes)
        {
            var key = scratch.LabelName(attribute.Key);
            if (key.Length == 0)
                continue;
            var value = scratch.Intern(FormatValue(attribute.Value));
            if (value.Length == 0)
                labels.Remove(key);
            else
                labels[key] = value;
        }
    }

    // Scalars as text (invariant culture, doubles round-trip); bytes as base64; arrays and key-value lists as JSON,
    // as the Prometheus OTLP translator renders them.
    private static string FormatValue(AnyValue? value)
    {
        if (value is null)
            return "";
        switch (value.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                return value.StringValue;
            case AnyValue.ValueOneofCase.BoolValue:
                return value.BoolValue ? "true" : "false";
            case AnyValue.ValueOneofCase.IntValue:
                return value.IntValue.ToString(CultureInfo.InvariantCulture);
            case AnyValue.ValueOneofCase.DoubleValue:
                return value.DoubleValue.ToString("R", CultureInfo.InvariantCulture);
            case AnyValue.ValueOneofCase.BytesValue:
                return value.BytesValue.ToBase64();
            case AnyValue.ValueOneofCase.ArrayValue:
            case AnyValue.ValueOneofCase.KvlistValue:
                var json = new StringBuilder();
                WriteJson(value, json);
                return json.ToString();
            default:
                return "";
        }
    }

    private static void WriteJson(AnyValue? value, StringBuilder json)
    {
        switch (value?.ValueCase)
        {
            case AnyValue.ValueOneofCase.ArrayValue:
                json.Append('[');
                for (var i = 0; i < value.ArrayValue.Values.Count; i++)
                {
                    if (i > 0)
                        json.Append(',');
                    WriteJson(value.ArrayValue.Values[i], json);
                }
                json.Append(']');
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                json.Append('{');
                for (var i = 0; i < value.KvlistValue.Values.Count; i++)
                {
                    if (i > 0)
                        json.Append(',');
                    var entry = value.KvlistValue.Values[i];
                    WriteJsonString(entry.Key, json);
                    json.Append(':');
                    WriteJson(entry.Value, json);
                }
                json.Append('}');
                break;
            case AnyValue.ValueOneofCase.StringValue:
            case AnyValue.ValueOneofCase.BytesValue:
                WriteJsonString(FormatValue(value), json);
                break;
            case AnyValue.ValueOneofCase.BoolValue:
            case AnyValue.ValueOneofCase.IntValue:
            case AnyValue.ValueOneofCase.DoubleValue:
                json.Append(FormatValue(value));
                break;
            default:
                json.Append("null");
                break;
        }
    }

    private static void WriteJsonString(string text, StringBuilder json)
    {
        json.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"':
                    json.Append("\\\"");
                    break;
                case '\\':
                    json.Append("\\\\");
                    break;
                case < ' ':
                    json.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    break;
                default:
                    json.Append(c);
                    break;
            }
        }
        json.Append('"');
    }

    /// <summary>
    /// A Prometheus metric name (<c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>) for an OTLP one: every other character becomes
    /// <c>_</c> and a leading digit gets a <c>_</c> in front. <c>k8s.pod.cpu.time</c> becomes <c>k8s_pod_cpu_time</c>.
    /// </summary>
    public static string SanitizeMetricName(string name) => Sanitize(name, allowColon: true);

    /// <summary>
    /// A Prometheus label name (<c>[a-zA-Z_][a-zA-Z0-9_]*</c>) for an OTLP attribute key, by the same rule as
    /// <see cref="SanitizeMetricName"/> without the colon. <c>k8s.pod.name</c> becomes <c>k8s_pod_name</c>.
    /// </summary>
    public static string SanitizeLabelName(string name) => Sanitize(name, allowColon: false);

    private static string Sanitize(string name, bool allowColon)
    {
        var clean = true;
        for (var i = 0; i < name.Length; i++)
        {
            if (!IsValid(name[i], allowColon))
            {
                clean = false;
                break;
            }
        }
        var leadingDigit = name.Length > 0 && char.IsAsciiDigit(name[0]);
        if (clean && !leadingDigit)
            return name;

        return string.Create(name.Length + (leadingDigit ? 1 : 0), (name, allowColon, leadingDigit), static (span, state) =>
        {
            var offset = 0;
            if (state.leadingDigit)
                span[offset++] = '_';
            foreach (var c in state.name)
                span[offset++] = IsValid(c, state.allowColon) ? c : '_';
        });
    }

    private static bool IsValid(char c, bool allowColon) => char.IsAsciiLetterOrDigit(c) || c == '_' || (allowColon && c == ':');

    [DoesNotReturn]
    private static void ThrowInvalid(string message, Exception inner) => throw new InvalidTelemetryException(message, inner);

    /// <summary>What one decode accumulates: output, counts, rejection reasons and the per-request string caches.</summary>
    private sealed class DecodeScratch
    {
        private readonly Dictionary<string, string> _metricNames = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _labelNames = new(StringComparer.Ordinal);
        private readonly HashSet<string> _values = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> _reasons = new(StringComparer.Ordinal);

        public List<MetricSample> Samples { get; } = [];
        public List<MetricMetadata> Metadata { get; } = [];
        public HashSet<string> Families { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> ResourceLabels { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> PointLabels { get; } = new(StringComparer.Ordinal);
        public long Accepted { get; set; }
        public long Rejected { get; private set; }

        public string MetricName(string name, string suffix = "")
        {
            var key = name + suffix;
            if (!_metricNames.TryGetValue(key, out var sanitized))
                _metricNames[key] = sanitized = SanitizeMetricName(key);
            return sanitized;
        }

        public string LabelName(string key)
        {
            if (!_labelNames.TryGetValue(key, out var sanitized))
                _labelNames[key] = sanitized = SanitizeLabelName(key);
            return sanitized;
        }

        public string Intern(string value)
        {
            if (_values.TryGetValue(value, out var existing))
                return existing;
            _values.Add(value);
            return value;
        }

        public void Reject(string reason, long points)
        {
            Rejected += points;
            _reasons[reason] = _reasons.GetValueOrDefault(reason) + points;
        }

        // "rejected 3 data points: exponential histogram "x" is not supported (2); … (1)"; at most
        // MaxReasonsInMessage reasons, in the order first met.
        public string? BuildMessage()
        {
            if (Rejected == 0)
                return null;
            var message = new StringBuilder();
            message.Append(CultureInfo.InvariantCulture, $"rejected {Rejected} data point{(Rejected == 1 ? "" : "s")}: ");
            var shown = 0;
            foreach (var (reason, count) in _reasons)
            {
                if (shown == MaxReasonsInMessage)
                {
                    message.Append(CultureInfo.InvariantCulture, $"; and {_reasons.Count - shown} more reasons");
                    break;
                }
                if (shown > 0)
                    message.Append("; ");
                message.Append(CultureInfo.InvariantCulture, $"{reason} ({count})");
                shown++;
            }
            return message.ToString();
        }
    }
}
