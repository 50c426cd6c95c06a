using System.Collections.Concurrent;
using System.Text;
using Burnrate.Protocols.RemoteWrite.Internal;
using Burnrate.Telemetry;

namespace Burnrate.Protocols.RemoteWrite;

/// <summary>
/// The label arrays of series seen in earlier remote write 1.0 requests, shared by all requests of one receiver. A
/// sender repeats every series on every scrape, so decoding a series it sent before costs a hash of its label bytes and
/// a byte-for-char comparison instead of UTF-8 decoding, interning, sorting and a new array; and all samples of a
/// series, across requests, share one label array (which nobody may modify). Thread-safe.
/// </summary>
/// <remarks>
/// Entries are keyed by a (per-process randomized) hash of the series' label bytes and checked label by label
/// against those bytes before use, so a hash collision is only a miss. Only series whose labels arrive contiguous and
/// sorted by name (as Prometheus sends them) with ASCII names and values are kept. The cache holds at most
/// <see cref="Capacity"/> series; reaching it empties the cache, so a client sending ever-new series costs a miss per
/// series, never unbounded memory.
/// </remarks>
public sealed class RemoteWriteSeriesCache
{
    /// <summary>The default bound: one million series (about 50 MB of entries besides the label arrays themselves).</summary>
    public const int DefaultCapacity = 1_000_000;

    private readonly ConcurrentDictionary<int, Label[]> _series = new();
    private int _count;
    private long _hits;
    private long _misses;

    /// <summary>Creates an empty cache that keeps at most <paramref name="capacity"/> series.</summary>
    public RemoteWriteSeriesCache(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>The most series kept before the cache empties itself.</summary>
    public int Capacity { get; }

    /// <summary>Series kept now (approximate while requests are decoded).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Series found in the cache since it was created.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Series decoded in full since it was created (not cached, or not cacheable).</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>The cached labels of a series whose label fields are exactly <paramref name="labelFields"/>, if any.</summary>
    internal bool TryGet(ReadOnlySpan<byte> labelFields, int hash, int origin, string message, out Label[] labels)
    {
        if (_series.TryGetValue(hash, out var cached) && Matches(labelFields, origin, message, cached))
        {
            Interlocked.Increment(ref _hits);
            labels = cached;
            return true;
        }
        Interlocked.Increment(ref _misses);
        labels = [];
        return false;
    }

    /// <summary>Keeps <paramref name="labels"/> (sorted, decoded from exactly these label fields) when it can be checked later.</summary>
    internal void Add(int hash, Label[] labels)
    {
        foreach (var label in labels)
        {
            if (!Ascii.IsValid(label.Name) || !Ascii.IsValid(label.Value))
                return;
        }
        if (Interlocked.Increment(ref _count) > Capacity)
        {
            _series.Clear();
            Volatile.Write(ref _count, 1);
        }
        _series[hash] = labels;
    }

    /// <summary>A hash of a series' label fields, randomized per process (no chosen collisions).</summary>
    internal static int Hash(ReadOnlySpan<byte> labelFields)
    {
        var hash = new HashCode();
        hash.AddBytes(labelFields);
        return hash.ToHashCode();
    }

    /// <summary>
    /// Whether the label fields (protobuf <c>Label</c> messages in wire order) decode to exactly <paramref name="labels"/>,
    /// read as <c>DecodeV1Label</c> reads them (unknown fields skipped, the last name and value win).
    /// </summary>
    private static bool Matches(ReadOnlySpan<byte> labelFields, int origin, string message, Label[] labels)
    {
        var reader = new ProtoReader(labelFields, origin, message);
        var i = 0;
        while (reader.TryReadTag(out _, out var wireType))
        {
            if (i == labels.Length || wireType != WireType.Len)
                return false;
            var bytes = reader.ReadBytes(out var labelOrigin);
            var label = new ProtoReader(bytes, labelOrigin, message);
            ReadOnlySpan<byte> name = [], value = [];
            while (label.TryReadTag(out var field, out var fieldWire))
            {
                if (field is 1 or 2 && fieldWire == WireType.Len)
                {
                    var text = label.ReadBytes(out _);
                    if (field == 1)
                        name = text;
                    else
                        value = text;
                }
                else
                {
                    label.Skip(fieldWire);
                }
            }
            if (!Ascii.Equals(name, labels[i].Name) || !Ascii.Equals(value, labels[i].Value))
                return false;
            i++;
        }
        return i == labels.Length;
    }
}
