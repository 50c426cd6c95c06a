using System.Text.Json;

namespace Burnrate.Connectors.Slurm;

/// <summary>
/// What the Slurm connector has reported: jobs started and not yet stopped, jobs stopped (kept for a while, so a late
/// sacct record is not reported again), nodes and prices. Saved as JSON after each accepted batch (written to a
/// temporary file and renamed), so a restart continues where the last run stopped.
/// </summary>
internal sealed class SlurmState
{
    public Dictionary<string, DateTimeOffset> Started { get; private set; } = new(StringComparer.Ordinal);
    public Dictionary<string, DateTimeOffset> Stopped { get; private set; } = new(StringComparer.Ordinal);
    public Dictionary<string, int> Nodes { get; private set; } = new(StringComparer.Ordinal);
    public Dictionary<string, string> Prices { get; private set; } = new(StringComparer.Ordinal);
    public DateTimeOffset? LastPoll { get; set; }

    /// <summary>GPU holdings in memory only, to pick free indexes for jobs squeue did not show: (node, index) → holders.</summary>
    private readonly Dictionary<(string Node, int Index), List<Holding>> _held = [];

    private sealed record Holding(string JobId, DateTimeOffset Start, DateTimeOffset? End);

    public IReadOnlyDictionary<string, DateTimeOffset> Open => Started;

    /// <summary>The start of sacct's window: the lookback on a first poll, else since shortly before the last poll.</summary>
    public DateTimeOffset Since(DateTimeOffset earliest, DateTimeOffset recent)
    {
        if (LastPoll is not { } last)
            return earliest;
        var from = last - TimeSpan.FromMinutes(5) < recent ? last - TimeSpan.FromMinutes(5) : recent;
        return from < earliest ? earliest : from;
    }

    public void Hold(string node, int index, string jobId, DateTimeOffset start)
    {
        if (!_held.TryGetValue((node, index), out var list))
            _held[(node, index)] = list = [];
        list.Add(new Holding(jobId, start, null));
    }

    public void Release(string jobId, DateTimeOffset end)
    {
        foreach (var list in _held.Values)
        {
            for (var i = 0; i < list.Count; i++)
            {
                if (list[i].JobId == jobId && list[i].End is null)
                    list[i] = list[i] with { End = end };
            }
        }
    }

    public bool IsHeld(string node, int index, DateTimeOffset at) =>
        _held.TryGetValue((node, index), out var list) && list.Exists(h => h.Start <= at && (h.End is not { } end || end > at));

    public SlurmState Clone()
    {
        var copy = new SlurmState
        {
            Started = new(Started, StringComparer.Ordinal),
            Stopped = new(Stopped, StringComparer.Ordinal),
            Nodes = new(Nodes, StringComparer.Ordinal),
            Prices = new(Prices, StringComparer.Ordinal),
            LastPoll = LastPoll,
        };
        foreach (var (key, list) in _held)
            copy._held[key] = [.. list];
        return copy;
    }

    /// <summary>Saves to <paramref name="path"/> (nothing when null), forgetting jobs stopped before <paramref name="forgetBefore"/>.</summary>
    public void Save(string? path, DateTimeOffset forgetBefore)
    {
        foreach (var old in Stopped.Where(p => p.Value < forgetBefore).Select(p => p.Key).ToList())
            Stopped.Remove(old);
        foreach (var list in _held.Values)
            list.RemoveAll(h => h.End is { } end && end < forgetBefore);
        if (path is null)
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        using (var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            if (LastPoll is { } last)
                json.WriteString("last_poll", last);
            WriteTimes(json, "started", Started);
            WriteTimes(json, "stopped", Stopped);
            json.WriteStartObject("nodes");
            foreach (var (k, v) in Nodes)
                json.WriteNumber(k, v);
            json.WriteEndObject();
            json.WriteStartObject("prices");
            foreach (var (k, v) in Prices)
                json.WriteString(k, v);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        File.Move(temporary, path, overwrite: true);
    }

    private static void WriteTimes(Utf8JsonWriter json, string name, Dictionary<string, DateTimeOffset> times)
    {
        json.WriteStartObject(name);
        foreach (var (k, v) in times)
            json.WriteString(k, v);
        json.WriteEndObject();
    }

    /// <summary>Loads <paramref name="path"/>; a missing file (or null) is an empty state.</summary>
    /// <exception cref="IOException">The file exists but is not a state file this version wrote.</exception>
    public static SlurmState Load(string? path)
    {
        var state = new SlurmState();
        if (path is null || !File.Exists(path))
            return state;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            if (root.TryGetProperty("last_poll", out var last))
                state.LastPoll = last.GetDateTimeOffset();
            foreach (var p in root.GetProperty("started").EnumerateObject())
                state.Started[p.Name] = p.Value.GetDateTimeOffset();
            foreach (var p in root.GetProperty("stopped").EnumerateObject())
                state.Stopped[p.Name] = p.Value.GetDateTimeOffset();
            foreach (var p in root.GetProperty("nodes").EnumerateObject())
                state.Nodes[p.Name] = p.Value.GetInt32();
            foreach (var p in root.GetProperty("prices").EnumerateObject())
                state.Prices[p.Name] = p.Value.GetString() ?? "";
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new IOException($"{path}: not a Slurm connector state file ({e.Message}); move it away to start afresh", e);
        }
        // Running jobs hold their GPUs from their start (indexes unknown after a restart: the engine has them).
        return state;
    }
}
