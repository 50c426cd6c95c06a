using System.Buffers;
using System.Text.Unicode;

namespace Burnrate.Protocols.RemoteWrite.Internal;

/// <summary>
/// Per-request intern table: the same label name or value, repeated on every series of a request, becomes one string
/// instance, and a string already seen costs a UTF-8 → UTF-16 transcode into a scratch buffer, no allocation. Bounded
/// by the strings the request actually held, never by a count the client sent.
/// </summary>
internal sealed class StringPool
{
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public StringPool()
    {
        _lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();
        _strings.Add(Burnrate.Telemetry.MetricSample.NameLabel, Burnrate.Telemetry.MetricSample.NameLabel);
        _strings.Add("", "");
    }

    /// <summary>The pooled string for UTF-8 <paramref name="utf8"/>, or null when it is not valid UTF-8.</summary>
    public string? Intern(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
            return "";
        char[]? rented = null;
        var chars = utf8.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(utf8.Length));
        try
        {
            if (Utf8.ToUtf16(utf8, chars, out _, out var written, replaceInvalidSequences: false) != OperationStatus.Done)
                return null;
            var text = chars[..written];
            if (_lookup.TryGetValue(text, out var pooled))
                return pooled;
            var value = new string(text);
            _strings.Add(value, value);
            return value;
        }
        finally
        {
            if (rented is not null)
                ArrayPool<char>.Shared.Return(rented);
        }
    }
}
