namespace Burnrate.Protocols.RemoteWrite.Internal;

/// <summary>
/// Per-request intern table: the same label name or value, repeated on every series of a request, ends up as one
/// string instance in the decoded samples. Bounded by the strings the request actually held, never by a client count.
/// </summary>
internal sealed class StringPool
{
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);

    public StringPool()
    {
        Add(Burnrate.Telemetry.MetricSample.NameLabel);
        Add("");
    }

    public string Intern(string value)
    {
        if (_strings.TryGetValue(value, out var pooled))
            return pooled;
        _strings.Add(value, value);
        return value;
    }

    private void Add(string value) => _strings[value] = value;
}
