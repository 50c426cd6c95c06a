using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Snappier;

namespace Burnrate.LoadGen;

/// <summary>
/// One remote write 1.0 request (<c>prometheus.WriteRequest</c>, one sample per series, as Prometheus sends a
/// scrape's worth of series) encoded once, with the offsets of every sample's value and timestamp: each round patches
/// them in place and Snappy-compresses the result, so the generator spends its time sending, not building protobuf.
/// </summary>
/// <remarks>
/// Layout (remote write 1.0 proto): <c>WriteRequest { repeated TimeSeries timeseries = 1; }</c>,
/// <c>TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }</c>,
/// <c>Label { string name = 1; string value = 2; }</c>, <c>Sample { double value = 1; int64 timestamp = 2; }</c>.
/// The timestamp is always written as a 6-byte varint (Unix milliseconds between 2^35 and 2^42, years 1971–2109), so
/// every sample message is 16 bytes and patching never moves a byte.
/// </remarks>
internal sealed class RequestBatch
{
    private const long MinTimestampMs = 1L << 35;
    private const long MaxTimestampMs = (1L << 42) - 1;

    private readonly byte[] _raw;
    private readonly int[] _series;
    private readonly int[] _valueOffsets;
    private readonly int[] _timestampOffsets;

    private RequestBatch(byte[] raw, int[] series, int[] valueOffsets, int[] timestampOffsets)
    {
        _raw = raw;
        _series = series;
        _valueOffsets = valueOffsets;
        _timestampOffsets = timestampOffsets;
    }

    /// <summary>Samples (= series) in this request.</summary>
    public int Samples => _series.Length;

    /// <summary>Uncompressed protobuf bytes.</summary>
    public int RawBytes => _raw.Length;

    /// <summary>The largest compressed body this request can become.</summary>
    public int MaxCompressedBytes => Snappy.GetMaxCompressedLength(_raw.Length);

    /// <summary>Encodes the series <paramref name="indexes"/> of <paramref name="fleet"/>, one sample each.</summary>
    public static RequestBatch Encode(Fleet fleet, IReadOnlyList<int> indexes)
    {
        var writer = new ArrayBufferWriter<byte>(indexes.Count * 400);
        var valueOffsets = new int[indexes.Count];
        var timestampOffsets = new int[indexes.Count];
        var scratch = new ArrayBufferWriter<byte>(1024);
        for (var i = 0; i < indexes.Count; i++)
        {
            var series = fleet.Series[indexes[i]];
            scratch.ResetWrittenCount();
            foreach (var label in series.Labels)
            {
                var name = Encoding.UTF8.GetByteCount(label.Name);
                var value = Encoding.UTF8.GetByteCount(label.Value);
                var labelLength = 1 + VarintLength((ulong)name) + name + 1 + VarintLength((ulong)value) + value;
                WriteTag(scratch, 1, 2);
                WriteVarint(scratch, (ulong)labelLength);
                WriteString(scratch, 1, label.Name, name);
                WriteString(scratch, 2, label.Value, value);
            }
            var sampleStart = scratch.WrittenCount;
            WriteTag(scratch, 2, 2);
            WriteVarint(scratch, 16);
            WriteTag(scratch, 1, 1);
            scratch.Write(new byte[8]);
            WriteTag(scratch, 2, 0);
            scratch.Write(new byte[6]);

            WriteTag(writer, 1, 2);
            WriteVarint(writer, (ulong)scratch.WrittenCount);
            var seriesStart = writer.WrittenCount;
            writer.Write(scratch.WrittenSpan);
            valueOffsets[i] = seriesStart + sampleStart + 3;
            timestampOffsets[i] = seriesStart + sampleStart + 3 + 8 + 1;
        }
        return new RequestBatch(writer.WrittenSpan.ToArray(), [.. indexes], valueOffsets, timestampOffsets);
    }

    /// <summary>
    /// Sets every sample to its series' value in <paramref name="round"/> at <paramref name="timestampMs"/>, then
    /// Snappy-compresses the request into <paramref name="output"/> (at least <see cref="MaxCompressedBytes"/> long);
    /// returns the compressed length. Not thread-safe: a batch belongs to one sender.
    /// </summary>
    public int Render(Fleet fleet, long round, long timestampMs, Span<byte> output)
    {
        if (timestampMs is < MinTimestampMs or > MaxTimestampMs)
            throw new ArgumentOutOfRangeException(nameof(timestampMs), timestampMs, "a timestamp must be Unix milliseconds between 2^35 and 2^42");
        var raw = _raw.AsSpan();
        for (var i = 0; i < _series.Length; i++)
        {
            var index = _series[i];
            BinaryPrimitives.WriteDoubleLittleEndian(raw[_valueOffsets[i]..], fleet.Series[index].ValueAt(index, round));
            var ts = raw.Slice(_timestampOffsets[i], 6);
            for (var b = 0; b < 6; b++)
                ts[b] = (byte)((byte)((timestampMs >> (7 * b)) & 0x7F) | (b < 5 ? 0x80 : 0));
        }
        return Snappy.Compress(raw, output);
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, int field, string value, int byteCount)
    {
        WriteTag(writer, field, 2);
        WriteVarint(writer, (ulong)byteCount);
        var span = writer.GetSpan(byteCount);
        Encoding.UTF8.GetBytes(value, span);
        writer.Advance(byteCount);
    }

    private static void WriteTag(ArrayBufferWriter<byte> writer, int field, int wireType) => WriteVarint(writer, (ulong)((field << 3) | wireType));

    private static void WriteVarint(ArrayBufferWriter<byte> writer, ulong value)
    {
        var span = writer.GetSpan(10);
        var n = 0;
        while (value >= 0x80)
        {
            span[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[n++] = (byte)value;
        writer.Advance(n);
    }

    private static int VarintLength(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }
        return n;
    }
}
