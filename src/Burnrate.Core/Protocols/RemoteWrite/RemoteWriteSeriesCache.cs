using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Burnrate.Telemetry;

namespace Burnrate.Protocols.RemoteWrite;

/// <summary>
/// The label arrays of series seen in earlier remote write 1.0 requests, shared by all requests of one receiver. A
/// sender repeats every series on every scrape, so decoding a series it sent before costs a hash and a comparison of
/// its label bytes instead of UTF-8 decoding, interning, sorting and a new array; and all samples of a series, across
/// requests, share one label array (which nobody may modify). Thread-safe.
/// </summary>
/// <remarks>
/// An entry is the series' label fields exactly as they came on the wire (the run of <c>Label</c> messages, which
/// decodes to one sorted label array whatever the order) with that array, keyed by a per-process randomized hash of
/// the bytes; a lookup compares the bytes, so a hash collision is only a miss. Series whose label fields are not one
/// contiguous run, or are longer than <see cref="MaxSeriesBytes"/>, are decoded every time. The entries' bytes are
/// bounded by <see cref="MaxBytes"/>; reaching it empties the cache, so a client sending ever-new series costs a miss
/// per series, never unbounded memory.
/// </remarks>
public sealed class RemoteWriteSeriesCache
{
    /// <summary>The default bound on what entries hold: 256 MiB, some 700,000 DCGM series (80,000 GPUs).</summary>
    public const long DefaultMaxBytes = 256L << 20;

    /// <summary>Label fields longer than this (4 KiB) are not kept.</summary>
    public const int MaxSeriesBytes = 4096;

    /// <summary>What an entry costs besides its label bytes: the entry, its byte array and the dictionary node.</summary>
    private const int EntryOverheadBytes = 96;

    private readonly ConcurrentDictionary<int, Entry> _series = new();
    private long _bytes;
    private int _count;
    private long _hits;
    private long _misses;

    /// <summary>Creates an empty cache whose entries hold at most <paramref name="maxBytes"/>.</summary>
    public RemoteWriteSeriesCache(long maxBytes = DefaultMaxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        MaxBytes = maxBytes;
    }

    /// <summary>The most bytes the entries hold (label bytes plus a fixed overhead each) before the cache empties itself.</summary>
    public long MaxBytes { get; }

    /// <summary>Bytes the entries hold now (approximate while requests are decoded).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Series kept now (approximate while requests are decoded).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Series found in the cache since it was created.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Series looked up and not found since it was created.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>The cached labels of a series whose label fields are exactly <paramref name="labelFields"/>, if any.</summary>
    internal bool TryGet(ReadOnlySpan<byte> labelFields, int hash, out Label[] labels)
    {
        if (_series.TryGetValue(hash, out var cached) && labelFields.SequenceEqual(cached.Fields))
        {
            Interlocked.Increment(ref _hits);
            labels = cached.Labels;
            return true;
        }
        Interlocked.Increment(ref _misses);
        labels = [];
        return false;
    }

    /// <summary>Keeps <paramref name="labels"/>, decoded from exactly <paramref name="labelFields"/>.</summary>
    internal void Add(ReadOnlySpan<byte> labelFields, int hash, Label[] labels)
    {
        if (labelFields.Length > MaxSeriesBytes)
            return;
        var cost = labelFields.Length + EntryOverheadBytes;
        if (Interlocked.Add(ref _bytes, cost) > MaxBytes)
        {
            _series.Clear();
            Volatile.Write(ref _count, 0);
            Interlocked.Exchange(ref _bytes, cost);
        }
        Interlocked.Increment(ref _count);
        _series[hash] = new Entry(labelFields.ToArray(), labels);
    }

    /// <summary>
    /// A hash of a series' label fields, randomized per process (no chosen collisions): the runtime's string hash
    /// (Marvin) over the bytes read as chars. <c>HashCode.AddBytes</c> costs several times more.
    /// </summary>
    internal static int Hash(ReadOnlySpan<byte> labelFields)
    {
        var hash = string.GetHashCode(MemoryMarshal.Cast<byte, char>(labelFields));
        return (labelFields.Length & 1) == 0 ? hash : HashCode.Combine(hash, labelFields[^1]);
    }

    /// <summary>The label fields as they came on the wire, and the labels they decode to.</summary>
    private sealed record Entry(byte[] Fields, Label[] Labels);
}
