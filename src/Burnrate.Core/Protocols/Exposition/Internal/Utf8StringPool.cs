using System.Text;

namespace Burnrate.Protocols.Exposition.Internal;

/// <summary>
/// Interns strings by their UTF-8 bytes, so a page of 10,000 DCGM lines that repeat the same metric names, label
/// names, UUIDs and host names allocates each distinct string once, and a parser reused across scrapes of the same
/// target allocates almost none. Open addressing with a short probe; bounded: when the table fills it is cleared
/// (pods come and go, so old values must not pin the pool), and long strings are never pooled. Not thread-safe:
/// one pool per parser.
/// </summary>
internal sealed class Utf8StringPool
{
    private const int MaxPooledLength = 256; // bytes; longer values (annotations) are rare and rarely repeat
    private const int MaxProbes = 8;

    private readonly Entry[] _entries;
    private readonly int _fillLimit;
    private int _count;

    public Utf8StringPool(int capacity = 16384)
    {
        if (capacity < 16 || (capacity & (capacity - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a power of two, 16 or more");
        _entries = new Entry[capacity];
        _fillLimit = capacity / 4 * 3;
    }

    /// <summary>Number of strings held now.</summary>
    public int Count => _count;

    public string GetOrAdd(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
            return "";
        if (utf8.Length > MaxPooledLength)
            return Encoding.UTF8.GetString(utf8);

        var hasher = new HashCode();
        hasher.AddBytes(utf8);
        var hash = hasher.ToHashCode();
        var mask = _entries.Length - 1;
        for (var probe = 0; probe < MaxProbes; probe++)
        {
            ref var entry = ref _entries[(hash + probe) & mask];
            if (entry.Value is null)
            {
                if (_count >= _fillLimit)
                {
                    Array.Clear(_entries);
                    _count = 0;
                    return Add(ref _entries[hash & mask], utf8, hash);
                }
                return Add(ref entry, utf8, hash);
            }
            if (entry.Hash == hash && utf8.SequenceEqual(entry.Utf8))
                return entry.Value;
        }
        return Encoding.UTF8.GetString(utf8); // a crowded neighbourhood: correct, just not pooled
    }

    private string Add(ref Entry entry, ReadOnlySpan<byte> utf8, int hash)
    {
        var value = Encoding.UTF8.GetString(utf8);
        entry = new Entry(utf8.ToArray(), value, hash);
        _count++;
        return value;
    }

    private readonly record struct Entry(byte[] Utf8, string Value, int Hash);
}
