using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Burnrate.Protocols.RemoteWrite.Internal;
using Burnrate.Telemetry;
using Google.Protobuf;
using Snappier;

namespace Burnrate.Protocols.RemoteWrite;

/// <summary>
/// Decodes a Prometheus remote write request body (Snappy block format around a protobuf message) into
/// <see cref="MetricSample"/>s and <see cref="MetricMetadata"/>. Both Remote Write 1.0 (<c>prometheus.WriteRequest</c>)
/// and 2.0-rc.4 (<c>io.prometheus.write.v2.Request</c>) decode to the same samples for the same data; the version comes
/// from the Content-Type, as the 2.0 spec requires. Native histograms and exemplars are counted, not decoded.
/// See docs/protocols.md, "Remote write decoding".
/// </summary>
public static class RemoteWriteDecoder
{
    /// <summary>The largest uncompressed body accepted by default: 64 MiB.</summary>
    public const int DefaultMaxDecompressedBytes = 64 * 1024 * 1024;

    internal const string V1MessageName = "prometheus.WriteRequest";
    internal const string V2MessageName = "io.prometheus.write.v2.Request";
    private const string ProtobufMediaType = "application/x-protobuf";

    private static readonly Comparison<Label> s_byName = static (a, b) => string.CompareOrdinal(a.Name, b.Name);

    /// <summary>
    /// Decodes one request body.
    /// </summary>
    /// <param name="snappyBody">The HTTP body, Snappy block-compressed (<c>Content-Encoding: snappy</c>).</param>
    /// <param name="contentType">
    /// The request's Content-Type: <c>application/x-protobuf</c> or with <c>;proto=prometheus.WriteRequest</c> for 1.0,
    /// <c>application/x-protobuf;proto=io.prometheus.write.v2.Request</c> for 2.0. Absent (null or empty) means 1.0,
    /// as in Prometheus's own receiver.
    /// </param>
    /// <param name="maxDecompressedBytes">Requests that declare a larger uncompressed length are rejected unread.</param>
    /// <exception cref="UnsupportedRemoteWriteTypeException">The Content-Type names another message (answer 415).</exception>
    /// <exception cref="InvalidTelemetryException">Corrupt Snappy or protobuf, a bad symbol reference, or a body over the limit (answer 400).</exception>
    public static RemoteWriteResult Decode(ReadOnlySpan<byte> snappyBody, string? contentType, int maxDecompressedBytes = DefaultMaxDecompressedBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDecompressedBytes);
        var version = DetectVersion(contentType);

        var length = ReadDeclaredLength(snappyBody, maxDecompressedBytes);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var message = buffer.AsSpan(0, length);
            Decompress(snappyBody, message);
            return version == RemoteWriteVersion.V1 ? DecodeV1(message) : DecodeV2(message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The remote write version a Content-Type selects (2.0 spec, "Content-Type"): the media type must be
    /// <c>application/x-protobuf</c>; its <c>proto</c> parameter, when present, names the message.
    /// </summary>
    /// <exception cref="UnsupportedRemoteWriteTypeException">Any other media type or message.</exception>
    public static RemoteWriteVersion DetectVersion(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
            return RemoteWriteVersion.V1;

        var parts = contentType.Split(';');
        if (!string.Equals(parts[0].Trim(), ProtobufMediaType, StringComparison.OrdinalIgnoreCase))
            ThrowUnsupported(contentType, $"media type \"{parts[0].Trim()}\" is not {ProtobufMediaType}");

        var version = RemoteWriteVersion.V1;
        for (var i = 1; i < parts.Length; i++)
        {
            var parameter = parts[i].AsSpan().Trim();
            var equals = parameter.IndexOf('=');
            if (equals < 0 || !parameter[..equals].Trim().Equals("proto", StringComparison.OrdinalIgnoreCase))
                continue;
            var proto = parameter[(equals + 1)..].Trim().Trim('"');
            if (proto.SequenceEqual(V1MessageName))
                version = RemoteWriteVersion.V1;
            else if (proto.SequenceEqual(V2MessageName))
                version = RemoteWriteVersion.V2;
            else
                ThrowUnsupported(contentType, $"proto=\"{proto}\" is not {V1MessageName} or {V2MessageName}");
        }
        return version;
    }

    // Snappy block format: a little-endian base-128 varint (at most 5 bytes, 32 bits) with the uncompressed length,
    // then the elements. The length is checked against the limit before anything is allocated (Prometheus 3.8.1 fix).
    private static int ReadDeclaredLength(ReadOnlySpan<byte> body, int maxDecompressedBytes)
    {
        ulong length = 0;
        for (var i = 0; i < 5; i++)
        {
            if (i >= body.Length)
                ThrowInvalid($"snappy: corrupt input: the length header ends at byte {i} (body is {body.Length} bytes)");
            var b = body[i];
            length |= (ulong)(b & 0x7F) << (7 * i);
            if (b < 0x80)
            {
                if (length > (ulong)maxDecompressedBytes)
                    ThrowInvalid($"snappy: declared uncompressed length {length} bytes exceeds the limit of {maxDecompressedBytes} bytes");
                return (int)length;
            }
        }
        ThrowInvalid("snappy: corrupt input: the length header runs past byte 4");
        return 0;
    }

    private static void Decompress(ReadOnlySpan<byte> body, Span<byte> message)
    {
        int written;
        try
        {
            written = Snappy.Decompress(body, message);
        }
        catch (InvalidDataException ex)
        {
            ThrowInvalid($"snappy: corrupt input ({body.Length} compressed bytes, {message.Length} declared): {ex.Message}", ex);
            return;
        }
        catch (ArgumentException ex)
        {
            ThrowInvalid($"snappy: corrupt input ({body.Length} compressed bytes, {message.Length} declared): {ex.Message}", ex);
            return;
        }
        if (written != message.Length)
            ThrowInvalid($"snappy: corrupt input: decompressed to {written} bytes at byte {body.Length}, the header declared {message.Length}");
    }

    private static RemoteWriteResult DecodeV1(ReadOnlySpan<byte> message)
    {
        V1.WriteRequest request;
        try
        {
            request = V1.WriteRequest.Parser.ParseFrom(message);
        }
        catch (InvalidProtocolBufferException ex)
        {
            ThrowInvalid($"protobuf: cannot decode {V1MessageName} ({message.Length} bytes): {ex.Message}", ex);
            return null;
        }

        var strings = new StringPool();
        var total = 0;
        var histograms = 0;
        var exemplars = 0;
        foreach (var series in request.Timeseries)
        {
            total += series.Samples.Count;
            histograms += series.Histograms.Count;
            exemplars += series.Exemplars.Count;
        }

        var samples = total == 0 ? [] : new MetricSample[total];
        var next = 0;
        foreach (var series in request.Timeseries)
        {
            if (series.Samples.Count == 0)
                continue;
            var labels = new Label[series.Labels.Count];
            for (var i = 0; i < labels.Length; i++)
            {
                var label = series.Labels[i];
                labels[i] = new Label(strings.Intern(label.Name), strings.Intern(label.Value));
            }
            SortByName(labels);
            foreach (var sample in series.Samples)
                samples[next++] = new MetricSample(labels, sample.Timestamp, sample.Value);
        }

        var metadata = request.Metadata.Count == 0 ? [] : new MetricMetadata[request.Metadata.Count];
        for (var i = 0; i < metadata.Length; i++)
        {
            var m = request.Metadata[i];
            metadata[i] = new MetricMetadata(strings.Intern(m.MetricFamilyName), TypeName((int)m.Type), m.Help, m.Unit);
        }

        return new RemoteWriteResult(RemoteWriteVersion.V1, samples, metadata, request.Timeseries.Count, histograms, exemplars);
    }

    private static RemoteWriteResult DecodeV2(ReadOnlySpan<byte> message)
    {
        V2.Request request;
        try
        {
            request = V2.Request.Parser.ParseFrom(message);
        }
        catch (InvalidProtocolBufferException ex)
        {
            ThrowInvalid($"protobuf: cannot decode {V2MessageName} ({message.Length} bytes): {ex.Message}", ex);
            return null;
        }

        // The symbols table is the request's own intern table; the pool only merges accidental duplicates.
        var strings = new StringPool();
        var symbols = new string[request.Symbols.Count];
        for (var i = 0; i < symbols.Length; i++)
            symbols[i] = strings.Intern(request.Symbols[i]);

        var total = 0;
        var histograms = 0;
        var exemplars = 0;
        foreach (var series in request.Timeseries)
        {
            total += series.Samples.Count;
            histograms += series.Histograms.Count;
            exemplars += series.Exemplars.Count;
        }

        var samples = total == 0 ? [] : new MetricSample[total];
        var next = 0;
        List<MetricMetadata>? metadata = null;
        HashSet<string>? families = null;
        for (var s = 0; s < request.Timeseries.Count; s++)
        {
            var series = request.Timeseries[s];
            var refs = series.LabelsRefs;
            if (refs.Count % 2 != 0)
                ThrowInvalid($"remote write 2.0: series {s} has an odd number of labels_refs ({refs.Count}); they must be (name, value) pairs");

            var labels = new Label[refs.Count / 2];
            for (var i = 0; i < labels.Length; i++)
            {
                labels[i] = new Label(
                    Symbol(symbols, refs[2 * i], s, $"labels_refs[{2 * i}]"),
                    Symbol(symbols, refs[(2 * i) + 1], s, $"labels_refs[{(2 * i) + 1}]"));
            }
            SortByName(labels);
            foreach (var sample in series.Samples)
                samples[next++] = new MetricSample(labels, sample.Timestamp, sample.Value);

            var m = series.Metadata;
            if (m is null || (m.Type == V2.Metadata.Types.MetricType.Unspecified && m.HelpRef == 0 && m.UnitRef == 0))
                continue;
            var help = Symbol(symbols, m.HelpRef, s, "metadata.help_ref");
            var unit = Symbol(symbols, m.UnitRef, s, "metadata.unit_ref");
            var family = FindName(labels);
            families ??= new HashSet<string>(StringComparer.Ordinal);
            if (families.Add(family))
                (metadata ??= []).Add(new MetricMetadata(family, TypeName((int)m.Type), help, unit));
        }

        return new RemoteWriteResult(RemoteWriteVersion.V2, samples, metadata?.ToArray() ?? [], request.Timeseries.Count, histograms, exemplars);
    }

    private static string Symbol(string[] symbols, uint reference, int series, string field)
    {
        if (reference >= (uint)symbols.Length)
            ThrowInvalid($"remote write 2.0: series {series} {field} = {reference} is outside the symbols table ({symbols.Length} symbols)");
        return symbols[reference];
    }

    private static string FindName(Label[] labels)
    {
        foreach (var label in labels)
        {
            if (ReferenceEquals(label.Name, MetricSample.NameLabel) || label.Name == MetricSample.NameLabel)
                return label.Value;
        }
        return "";
    }

    // Senders MUST sort labels by name; check before sorting so the common case costs one pass.
    private static void SortByName(Label[] labels)
    {
        for (var i = 1; i < labels.Length; i++)
        {
            if (string.CompareOrdinal(labels[i - 1].Name, labels[i].Name) > 0)
            {
                Array.Sort(labels, s_byName);
                return;
            }
        }
    }

    // Both versions number the types alike (1 counter … 7 stateset); names as in the text exposition format.
    private static string TypeName(int type) => type switch
    {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    };

    [DoesNotReturn]
    private static void ThrowInvalid(string message) => throw new InvalidTelemetryException(message);

    [DoesNotReturn]
    private static void ThrowInvalid(string message, Exception inner) => throw new InvalidTelemetryException(message, inner);

    [DoesNotReturn]
    private static void ThrowUnsupported(string contentType, string reason) =>
        throw new UnsupportedRemoteWriteTypeException($"unsupported remote write Content-Type \"{contentType}\": {reason}")
        {
            ContentType = contentType,
        };
}
