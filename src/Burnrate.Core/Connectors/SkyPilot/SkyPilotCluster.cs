using System.Globalization;
using System.Text.Json;
using Burnrate.Pricing;

namespace Burnrate.Connectors.SkyPilot;

/// <summary>
/// A SkyPilot cluster as the API server's <c>/status</c> describes it (<c>StatusResponse</c>, orchestrators.md §1.6), with
/// what Burnrate needs: its capacity, where it runs, since when, and how it stops.
/// </summary>
/// <param name="Name">The name the user sees (<c>sky launch -c NAME</c>).</param>
/// <param name="NameOnCloud">The name on the cloud (the <c>skypilot-cluster-name</c> tag and <c>skypilot-cluster</c> pod label); <see cref="Name"/> when the server does not say.</param>
/// <param name="Status">Upper case, without an enum prefix: <c>INIT</c>, <c>UP</c>, <c>STOPPED</c>.</param>
/// <param name="User">The owner's user name.</param>
/// <param name="Cloud">The cloud (lower case), or empty.</param>
/// <param name="Region">The region, or empty.</param>
/// <param name="InstanceType">The instance type from the full resources string; empty when it does not say.</param>
/// <param name="Capacity">Spot when the resources string says so (<c>[Spot]</c>), else on-demand.</param>
/// <param name="Nodes">Nodes in the cluster.</param>
/// <param name="Gpus">GPUs per node.</param>
/// <param name="GpuModel">The accelerator (<c>A100</c>).</param>
/// <param name="LaunchedAt">When it was (last) launched or started; null when the server does not say.</param>
/// <param name="StatusUpdatedAt">When its status last changed; null when the server does not say.</param>
/// <param name="AutostopMinutes">Idle minutes before autostop; null or negative when off.</param>
/// <param name="ToDown">Whether autostop tears it down rather than stopping it.</param>
public sealed record SkyPilotCluster(
    string Name,
    string NameOnCloud,
    string Status,
    string User,
    string Cloud,
    string Region,
    string InstanceType,
    CapacityType Capacity,
    int Nodes,
    int Gpus,
    string GpuModel,
    DateTimeOffset? LaunchedAt,
    DateTimeOffset? StatusUpdatedAt,
    int? AutostopMinutes,
    bool ToDown)
{
    /// <summary>Whether its instances run (and bill): <c>UP</c>, or <c>INIT</c> once launched (provisioning or unhealthy).</summary>
    public bool IsRunning => LaunchedAt is not null && Status is "UP" or "INIT";
}

/// <summary>One lifecycle event of a cluster from <c>/cluster_events</c> (newer API servers).</summary>
/// <param name="At">When the transition happened.</param>
/// <param name="From">The status before, upper case; empty when unknown.</param>
/// <param name="To">The status after, upper case; empty when unknown (a teardown has none).</param>
/// <param name="Reason">SkyPilot's reason text (<c>Cluster was autostopped.</c>).</param>
public sealed record SkyPilotClusterEvent(DateTimeOffset At, string From, string To, string Reason);

/// <summary>Reads the return values of <c>/status</c> and <c>/cluster_events</c>.</summary>
public static class SkyPilotClustersReader
{
    /// <summary>Reads <paramref name="value"/>: a list of cluster records.</summary>
    /// <exception cref="FormatException">Not a list of cluster records.</exception>
    public static IReadOnlyList<SkyPilotCluster> Read(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
            throw new FormatException($"status: expected a list of clusters, got {value.ValueKind}");
        var clusters = new List<SkyPilotCluster>();
        var i = 0;
        foreach (var r in value.EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.Object || Str(r, "name") is not { Length: > 0 } name)
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"status: cluster {i} has no name"));
            var resources = Str(r, "resources_str_full") is { Length: > 0 } full ? full : Str(r, "resources_str");
            var (model, gpus) = SkyPilotJobsReader.Accelerators(r);
            var cloud = Str(r, "cloud");
            if (cloud.Length == 0 && resources.IndexOf('(', StringComparison.Ordinal) is > 0 and var open && resources[..open].Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var named])
                cloud = named; // "1x AWS(p4d.24xlarge, ...)"
            clusters.Add(new SkyPilotCluster(
                name,
                Str(r, "cluster_name_on_cloud") is { Length: > 0 } onCloud ? onCloud : name,
                Upper(Str(r, "status")),
                Str(r, "user_name"),
                cloud.ToLowerInvariant(),
                Str(r, "region"),
                SkyPilotJobsReader.InstanceTypeOf(resources),
                SkyPilotJobsReader.IsSpot(resources) ? CapacityType.Spot : CapacityType.OnDemand,
                Number(r, "nodes") is { } n and >= 1 ? (int)n : 1,
                gpus,
                model,
                Time(r, "launched_at"),
                Time(r, "status_updated_at"),
                Number(r, "autostop") is { } a and >= 0 ? (int)a : null,
                r.TryGetProperty("to_down", out var down) && down.ValueKind == JsonValueKind.True));
            i++;
        }
        return clusters;
    }

    /// <summary>
    /// Reads the return value of <c>/cluster_events</c>: a list of events with <c>transitioned_at</c> (epoch seconds),
    /// <c>starting_status</c>, <c>ending_status</c> and <c>reason</c>; entries without a time (servers that answer with
    /// reason strings only) are skipped. Sorted by time.
    /// </summary>
    /// <exception cref="FormatException">Not a list.</exception>
    public static IReadOnlyList<SkyPilotClusterEvent> ReadEvents(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("events", out var inner))
            value = inner;
        if (value.ValueKind != JsonValueKind.Array)
            throw new FormatException($"cluster_events: expected a list of events, got {value.ValueKind}");
        var events = new List<SkyPilotClusterEvent>();
        foreach (var e in value.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object || Time(e, "transitioned_at") is not { } at)
                continue;
            events.Add(new SkyPilotClusterEvent(at, Upper(Str(e, "starting_status")), Upper(Str(e, "ending_status")), Str(e, "reason")));
        }
        events.Sort((a, b) => a.At.CompareTo(b.At));
        return events;
    }

    private static string Upper(string status)
    {
        var dot = status.LastIndexOf('.');
        return (dot >= 0 ? status[(dot + 1)..] : status).ToUpperInvariant();
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    private static double? Number(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) ? d : null;

    /// <summary>Epoch seconds (fractional); missing, null, 0 or negative is unknown.</summary>
    private static DateTimeOffset? Time(JsonElement e, string name) =>
        Number(e, name) is { } s and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(s * 1000)) : null;
}
