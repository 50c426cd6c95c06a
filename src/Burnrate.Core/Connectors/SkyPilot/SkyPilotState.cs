using System.Globalization;
using System.Text.Json;
using Burnrate.Pricing;

namespace Burnrate.Connectors.SkyPilot;

/// <summary>What the connector reported of one managed job.</summary>
internal sealed record SkyPilotJobState(
    bool Started,
    bool Stopped,
    bool Holding,
    CapacityType Capacity,
    DateTimeOffset? LastRecovered,
    int Recoveries,
    string Node,
    int Gpus);

/// <summary>What the connector reported of one cluster: the launch it follows, and whether that launch still runs.</summary>
internal sealed record SkyPilotClusterState(string Name, DateTimeOffset Launched, int Nodes, bool Up);

/// <summary>
/// What the SkyPilot connector has reported: managed jobs by id and clusters by name on the cloud. Saved as JSON after
/// each successful poll (written to a temporary file and renamed), so a restart does not report a running job's or
/// cluster's start again.
/// </summary>
internal sealed class SkyPilotState
{
    public Dictionary<long, SkyPilotJobState> Jobs { get; private init; } = [];

    public Dictionary<string, SkyPilotClusterState> Clusters { get; private init; } = new(StringComparer.Ordinal);

    public SkyPilotState Clone() => new() { Jobs = new(Jobs), Clusters = new(Clusters, StringComparer.Ordinal) };

    /// <summary>Saves to <paramref name="path"/>; nothing when null.</summary>
    public void Save(string? path)
    {
        if (path is null)
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        using (var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("jobs");
            foreach (var (id, j) in Jobs)
            {
                json.WriteStartObject(id.ToString(CultureInfo.InvariantCulture));
                json.WriteBoolean("started", j.Started);
                json.WriteBoolean("stopped", j.Stopped);
                json.WriteBoolean("holding", j.Holding);
                json.WriteString("capacity", j.Capacity.ToName());
                if (j.LastRecovered is { } recovered)
                    json.WriteString("last_recovered", recovered);
                json.WriteNumber("recoveries", j.Recoveries);
                json.WriteString("node", j.Node);
                json.WriteNumber("gpus", j.Gpus);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteStartObject("clusters");
            foreach (var (key, c) in Clusters)
            {
                json.WriteStartObject(key);
                json.WriteString("name", c.Name);
                json.WriteString("launched", c.Launched);
                json.WriteNumber("nodes", c.Nodes);
                json.WriteBoolean("up", c.Up);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Loads <paramref name="path"/>; a missing file (or null) is an empty state.</summary>
    /// <exception cref="IOException">The file exists but is not a state file this version wrote.</exception>
    public static SkyPilotState Load(string? path)
    {
        var state = new SkyPilotState();
        if (path is null || !File.Exists(path))
            return state;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            foreach (var p in root.GetProperty("jobs").EnumerateObject())
            {
                var j = p.Value;
                state.Jobs[long.Parse(p.Name, NumberStyles.Integer, CultureInfo.InvariantCulture)] = new SkyPilotJobState(
                    j.GetProperty("started").GetBoolean(),
                    j.GetProperty("stopped").GetBoolean(),
                    j.GetProperty("holding").GetBoolean(),
                    CapacityTypes.TryParse(j.GetProperty("capacity").GetString(), out var capacity) ? capacity : throw new FormatException("capacity"),
                    j.TryGetProperty("last_recovered", out var r) ? r.GetDateTimeOffset() : null,
                    j.GetProperty("recoveries").GetInt32(),
                    j.GetProperty("node").GetString() ?? "",
                    j.GetProperty("gpus").GetInt32());
            }
            foreach (var p in root.GetProperty("clusters").EnumerateObject())
            {
                var c = p.Value;
                state.Clusters[p.Name] = new SkyPilotClusterState(c.GetProperty("name").GetString() ?? p.Name, c.GetProperty("launched").GetDateTimeOffset(),
                    c.GetProperty("nodes").GetInt32(), c.GetProperty("up").GetBoolean());
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new IOException($"{path}: not a SkyPilot connector state file ({e.Message}); move it away to start afresh", e);
        }
        return state;
    }
}
