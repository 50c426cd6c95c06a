using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Burnrate.Protocols.RemoteWrite.Internal;
using Burnrate.Telemetry;
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
    /// <param name="seriesCache">
    /// Label arrays of series from earlier requests (1.0 only): a receiver passes its one cache to every decode, so a
    /// series sent again is not decoded again. The result is the same with or without it.
    /// </param>
    /// <exception cref="UnsupportedRemoteWriteTypeException">The Content-Type names another message (answer 415).</exception>
    /// <exception cref="InvalidTelemetryException">Corrupt Snappy or protobuf, a bad symbol reference, or a body over the limit (answer 400).</exception>
    public static RemoteWriteResult Decode(ReadOnlySpan<byte> snappyBody, string? contentType, int maxDecompressedBytes = DefaultMaxDecompressedBytes, RemoteWriteSeriesCache? seriesCache = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDecompressedBytes);
        var version = DetectVersion(contentType);

        var length = ReadDeclaredLength(snappyBody, maxDecompressedBytes);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var message = buffer.AsSpan(0, length);
            Decompress(snappyBody, message);
            return version == RemoteWriteVersion.V1 ? DecodeV1(message, seriesCache) : DecodeV2(message);
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

    // prometheus.WriteRequest: 1 = TimeSeries, 3 = MetricMetadata (prompb/remote.proto, v2.42.0).
    private static RemoteWriteResult DecodeV1(ReadOnlySpan<byte> message, RemoteWriteSeriesCache? cache)
    {
        var reader = new ProtoReader(message, 0, V1MessageName);
        var scratch = new DecodeScratch();
        List<MetricMetadata>? metadata = null;
        var series = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == WireType.Len)
            {
                var bytes = reader.ReadBytes(out var origin);
                DecodeV1Series(reader.Nested(bytes, origin), bytes, origin, scratch, cache);
                series++;
            }
            else if (field == 3 && wireType == WireType.Len)
            {
                var bytes = reader.ReadBytes(out var origin);
                (metadata ??= []).Add(DecodeV1Metadata(reader.Nested(bytes, origin), scratch.Strings));
            }
            else
            {
                reader.Skip(wireType);
            }
        }
        return new RemoteWriteResult(RemoteWriteVersion.V1, scratch.Samples, metadata?.ToArray() ?? [], series, scratch.Histograms, scratch.Exemplars);
    }

    // TimeSeries: 1 = Label, 2 = Sample, 3 = Exemplar, 4 = Histogram. Labels may follow samples on the wire, so the
    // series is read twice: labels and counts first, then the samples with the finished label array. When the label
    // fields are one contiguous run (as Prometheus writes them), the cache may already hold their label array.
    private static void DecodeV1Series(ProtoReader reader, ReadOnlySpan<byte> bytes, int origin, DecodeScratch scratch, RemoteWriteSeriesCache? cache)
    {
        var samplePass = reader;
        var labelPass = reader;
        var sampleCount = 0;
        int labelStart = -1, labelEnd = -1;
        var contiguous = true;
        var lastWasLabel = false;
        while (true)
        {
            var at = reader.Offset;
            if (!reader.TryReadTag(out var field, out var wireType))
                break;
            if (wireType != WireType.Len || field is < 1 or > 4)
            {
                reader.Skip(wireType);
                lastWasLabel = false;
                continue;
            }
            reader.ReadBytes(out _);
            switch (field)
            {
                case 1:
                    if (labelStart < 0)
                        labelStart = at;
                    else if (!lastWasLabel)
                        contiguous = false;
                    labelEnd = reader.Offset;
                    break;
                case 2:
                    sampleCount++;
                    break;
                case 3:
                    scratch.Exemplars++;
                    break;
                default:
                    scratch.Histograms++;
                    break;
            }
            lastWasLabel = field == 1;
        }

        Label[] labelArray;
        if (cache is not null && contiguous && labelStart >= 0)
        {
            var fields = bytes[(labelStart - origin)..(labelEnd - origin)];
            var hash = RemoteWriteSeriesCache.Hash(fields);
            if (!cache.TryGet(fields, hash, out labelArray))
            {
                labelArray = DecodeV1Labels(labelPass, scratch);
                cache.Add(fields, hash, labelArray);
            }
        }
        else
        {
            labelArray = DecodeV1Labels(labelPass, scratch);
        }
        if (sampleCount == 0)
            return;
        AddSamples(samplePass, labelArray, scratch.Samples);
    }

    /// <summary>The series' labels (its field 1 messages), sorted by name.</summary>
    private static Label[] DecodeV1Labels(ProtoReader reader, DecodeScratch scratch)
    {
        var labels = scratch.Labels;
        labels.Clear();
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == WireType.Len)
            {
                var bytes = reader.ReadBytes(out var origin);
                labels.Add(DecodeV1Label(reader.Nested(bytes, origin), scratch.Strings));
            }
            else
            {
                reader.Skip(wireType);
            }
        }
        var labelArray = labels.ToArray();
        SortByName(labelArray);
        return labelArray;
    }

    private static Label DecodeV1Label(ProtoReader reader, StringPool strings)
    {
        var name = "";
        var value = "";
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field is 1 or 2 && wireType == WireType.Len)
            {
                var text = ReadString(ref reader, strings, field == 1 ? "label name" : "label value");
                if (field == 1)
                    name = text;
                else
                    value = text;
            }
            else
            {
                reader.Skip(wireType);
            }
        }
        return new Label(name, value);
    }

    // MetricMetadata: 1 = type, 2 = metric_family_name, 4 = help, 5 = unit.
    private static MetricMetadata DecodeV1Metadata(ProtoReader reader, StringPool strings)
    {
        var type = 0UL;
        string family = "", help = "", unit = "";
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == WireType.Varint)
                type = reader.ReadVarint();
            else if (field == 2 && wireType == WireType.Len)
                family = ReadString(ref reader, strings, "metric_family_name");
            else if (field == 4 && wireType == WireType.Len)
                help = ReadString(ref reader, strings, "help");
            else if (field == 5 && wireType == WireType.Len)
                unit = ReadString(ref reader, strings, "unit");
            else
                reader.Skip(wireType);
        }
        return new MetricMetadata(family, TypeName(type), help, unit);
    }

    // io.prometheus.write.v2.Request: 4 = symbols, 5 = TimeSeries. Symbols are read first wherever they sit.
    private static RemoteWriteResult DecodeV2(ReadOnlySpan<byte> message)
    {
        var scratch = new DecodeScratch();
        var symbols = new List<string>();
        var symbolPass = new ProtoReader(message, 0, V2MessageName);
        while (symbolPass.TryReadTag(out var field, out var wireType))
        {
            if (field == 4 && wireType == WireType.Len)
                symbols.Add(ReadString(ref symbolPass, scratch.Strings, "symbol"));
            else
                symbolPass.Skip(wireType);
        }

        var reader = new ProtoReader(message, 0, V2MessageName);
        List<MetricMetadata>? metadata = null;
        HashSet<string>? families = null;
        var series = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field != 5 || wireType != WireType.Len)
            {
                reader.Skip(wireType);
                continue;
            }
            var bytes = reader.ReadBytes(out var origin);
            var m = DecodeV2Series(reader.Nested(bytes, origin), series, symbols, scratch);
            if (m is { } found && (families ??= new HashSet<string>(StringComparer.Ordinal)).Add(found.MetricFamily))
                (metadata ??= []).Add(found);
            series++;
        }
        return new RemoteWriteResult(RemoteWriteVersion.V2, scratch.Samples, metadata?.ToArray() ?? [], series, scratch.Histograms, scratch.Exemplars);
    }

    // TimeSeries: 1 = labels_refs (packed or not), 2 = Sample, 3 = Histogram, 4 = Exemplar, 5 = Metadata,
    // 6 = rc.3 created_timestamp (not surfaced). Returns the series' metadata, if it carried any.
    private static MetricMetadata? DecodeV2Series(ProtoReader reader, int series, List<string> symbols, DecodeScratch scratch)
    {
        var samplePass = reader;
        var refs = scratch.Refs;
        refs.Clear();
        var sampleCount = 0;
        ulong type = 0, helpRef = 0, unitRef = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == WireType.Varint)
            {
                refs.Add(reader.ReadVarint());
                continue;
            }
            if (wireType != WireType.Len || field is < 1 or > 5)
            {
                reader.Skip(wireType);
                continue;
            }
            var bytes = reader.ReadBytes(out var origin);
            switch (field)
            {
                case 1:
                    var packed = reader.Nested(bytes, origin);
                    while (packed.Offset < origin + bytes.Length)
                        refs.Add(packed.ReadVarint());
                    break;
                case 2:
                    sampleCount++;
                    break;
                case 3:
                    scratch.Histograms++;
                    break;
                case 4:
                    scratch.Exemplars++;
                    break;
                default:
                    var meta = reader.Nested(bytes, origin);
                    while (meta.TryReadTag(out var metaField, out var metaWire))
                    {
                        if (metaWire != WireType.Varint)
                            meta.Skip(metaWire);
                        else if (metaField == 1)
                            type = meta.ReadVarint();
                        else if (metaField == 3)
                            helpRef = meta.ReadVarint();
                        else if (metaField == 4)
                            unitRef = meta.ReadVarint();
                        else
                            meta.Skip(metaWire);
                    }
                    break;
            }
        }

        if (refs.Count % 2 != 0)
            ThrowInvalid($"remote write 2.0: series {series} has an odd number of labels_refs ({refs.Count}); they must be (name, value) pairs");
        var labels = new Label[refs.Count / 2];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = new Label(
                Symbol(symbols, refs[2 * i], series, "labels_refs", 2 * i),
                Symbol(symbols, refs[(2 * i) + 1], series, "labels_refs", (2 * i) + 1));
        }
        SortByName(labels);
        if (sampleCount > 0)
            AddSamples(samplePass, labels, scratch.Samples);

        if (type == 0 && helpRef == 0 && unitRef == 0)
            return null;
        var help = Symbol(symbols, helpRef, series, "metadata.help_ref", -1);
        var unit = Symbol(symbols, unitRef, series, "metadata.unit_ref", -1);
        return new MetricMetadata(FindName(labels), TypeName(type), help, unit);
    }

    // Sample, both versions: 1 = value (double), 2 = timestamp (int64 ms); 2.0 rc.4 adds 3 = start_timestamp.
    private static void AddSamples(ProtoReader reader, Label[] labels, List<MetricSample> samples)
    {
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field != 2 || wireType != WireType.Len)
            {
                reader.Skip(wireType);
                continue;
            }
            var bytes = reader.ReadBytes(out var origin);
            var sample = reader.Nested(bytes, origin);
            var value = 0d;
            var timestamp = 0L;
            while (sample.TryReadTag(out var sampleField, out var sampleWire))
            {
                if (sampleField == 1 && sampleWire == WireType.Fixed64)
                    value = sample.ReadDouble();
                else if (sampleField == 2 && sampleWire == WireType.Varint)
                    timestamp = (long)sample.ReadVarint();
                else
                    sample.Skip(sampleWire);
            }
            samples.Add(new MetricSample(labels, timestamp, value));
        }
    }

    private static string ReadString(ref ProtoReader reader, StringPool strings, string what)
    {
        var bytes = reader.ReadBytes(out var origin);
        var text = strings.Intern(bytes);
        if (text is null)
            reader.Fail($"invalid UTF-8 in a {what}", origin);
        return text;
    }

    private static string Symbol(List<string> symbols, ulong reference, int series, string field, int index)
    {
        if (reference >= (ulong)symbols.Count)
        {
            var name = index < 0 ? field : $"{field}[{index}]";
            ThrowInvalid($"remote write 2.0: series {series} {name} = {reference} is outside the symbols table ({symbols.Count} symbols)");
        }
        return symbols[(int)reference];
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
    private static string TypeName(ulong type) => type switch
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

    /// <summary>What one decode accumulates; the label and ref lists are reused series to series.</summary>
    private sealed class DecodeScratch
    {
        public StringPool Strings { get; } = new();
        public List<MetricSample> Samples { get; } = [];
        public List<Label> Labels { get; } = [];
        public List<ulong> Refs { get; } = [];
        public int Histograms { get; set; }
        public int Exemplars { get; set; }
    }
}
