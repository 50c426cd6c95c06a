using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Rating;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Burnrate.Server;

/// <summary>
/// <c>GET /api/v1/fleet</c>: the GPUs running right now by cloud, GPU type, capacity type and team: how many, how many
/// allocated to a workload and how many idle, what they cost per hour and what the idle part costs. A GPU counts for
/// the team of the workload holding it (the largest share when several do) and, idle, for the team its node's labels
/// name. Needs a <see cref="CostPipeline"/> in DI (503 without one).
/// </summary>
public static class FleetEndpoints
{
    /// <summary>Maps <c>GET /api/v1/fleet</c>.</summary>
    public static IEndpointRouteBuilder MapFleetApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/fleet", GetFleet).RequireScope(ApiScopes.Read);
        return app;
    }

    private static IResult GetFleet(HttpContext context)
    {
        if (ApiJson.RefuseUnknownParameters(context.Request.Query, "Invalid fleet query") is { } unknown)
            return unknown;
        var pipeline = context.RequestServices.GetService<CostPipeline>();
        if (pipeline is null)
            return ApiJson.NoLiveRating();
        var time = context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
        var snapshot = pipeline.Snapshot(time.GetUtcNow());
        var principal = BurnratePrincipal.Of(context);
        var groups = Tally(snapshot);
        var nodes = snapshot.Nodes.Count;
        if (principal.Team is { } team)
        {
            // A team-scoped key sees the GPUs its team holds or, idle, owns; and the nodes with at least one of them.
            groups = groups.Where(g => string.Equals(g.Key.Team, team, StringComparison.Ordinal)).ToDictionary();
            var teams = TeamsOf(snapshot);
            nodes = snapshot.Nodes.Count(n => n.Gpus.Any(g => string.Equals(TeamOf(teams, n, g), team, StringComparison.Ordinal)));
        }
        return ApiJson.Document(json =>
        {
            json.WriteStartObject();
            json.WriteString("at", ApiJson.Time(snapshot.At));
            json.WriteNumber("nodes", nodes);
            WriteCounts(json, Sum(groups.Values));
            json.WriteStartArray("groups");
            foreach (var ((cloud, gpu, capacity, team), count) in groups.OrderBy(g => g.Key.Cloud, StringComparer.Ordinal).ThenBy(g => g.Key.GpuType, StringComparer.Ordinal)
                         .ThenBy(g => g.Key.Capacity, StringComparer.Ordinal).ThenBy(g => g.Key.Team, StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("cloud", cloud);
                json.WriteString("gpu_type", gpu);
                json.WriteString("capacity_type", capacity);
                json.WriteString("team", team);
                WriteCounts(json, count);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            WriteBy(json, "by_cloud", "cloud", groups, k => k.Cloud);
            WriteBy(json, "by_gpu_type", "gpu_type", groups, k => k.GpuType);
            WriteBy(json, "by_capacity_type", "capacity_type", groups, k => k.Capacity);
            WriteBy(json, "by_team", "team", groups, k => k.Team);
            json.WriteEndObject();
        });
    }

    /// <summary>GPU counts and rates per (cloud, GPU type, capacity type, team), from one consistent snapshot.</summary>
    internal static Dictionary<FleetKey, FleetCount> Tally(LiveSnapshot snapshot)
    {
        var teams = TeamsOf(snapshot);
        var groups = new Dictionary<FleetKey, FleetCount>();
        var nodeIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in snapshot.Nodes)
        {
            nodeIds.Add(node.Spec.Id);
            foreach (var gpu in node.Gpus)
            {
                var holder = Holder(gpu);
                var team = TeamOf(teams, node, gpu);
                var key = new FleetKey(node.Spec.Provider, node.Spec.GpuModel, node.Capacity.ToName(), team);
                var count = groups.GetValueOrDefault(key);
                groups[key] = count with { Gpus = count.Gpus + 1, Allocated = count.Allocated + (holder is null ? 0 : 1) };
            }
        }
        // Rates by the same key, from the lines of running nodes (storage volumes and transfers are not fleet).
        foreach (var line in snapshot.Lines)
        {
            if (!nodeIds.Contains(line.ResourceId))
                continue;
            var d = line.Dimensions;
            var key = new FleetKey(d.Provider, d.GpuModel, d.Capacity.ToName(), d.Team);
            var count = groups.GetValueOrDefault(key);
            groups[key] = count with
            {
                NanosPerHour = count.NanosPerHour + line.Rate.NanosPerHour,
                IdleNanosPerHour = count.IdleNanosPerHour + (line.WorkloadId.Length == 0 ? line.Rate.NanosPerHour : 0),
            };
        }
        return groups;
    }

    /// <summary>The workload holding the largest share of the GPU (ties: the first id), or null when idle.</summary>
    private static GpuHolder? Holder(GpuSnapshot gpu) => gpu.Holders
        .OrderByDescending(h => (decimal)h.Share.Numerator / h.Share.Denominator)
        .ThenBy(h => h.WorkloadId, StringComparer.Ordinal)
        .FirstOrDefault();

    /// <summary>The team a GPU counts for: its main holder's, or, idle, the team its node's labels name.</summary>
    private static string TeamOf(Dictionary<string, string> teams, NodeSnapshot node, GpuSnapshot gpu) =>
        Holder(gpu) is { } holder ? teams.GetValueOrDefault(holder.WorkloadId, "") : node.OwnerTeam;

    private static Dictionary<string, string> TeamsOf(LiveSnapshot snapshot) =>
        snapshot.Workloads.ToDictionary(w => w.Info.Id, w => w.Info.Team, StringComparer.Ordinal);

    private static FleetCount Sum(IEnumerable<FleetCount> counts)
    {
        var sum = default(FleetCount);
        foreach (var c in counts)
            sum = new FleetCount(sum.Gpus + c.Gpus, sum.Allocated + c.Allocated, sum.NanosPerHour + c.NanosPerHour, sum.IdleNanosPerHour + c.IdleNanosPerHour);
        return sum;
    }

    private static void WriteBy(Utf8JsonWriter json, string name, string field, Dictionary<FleetKey, FleetCount> groups, Func<FleetKey, string> key)
    {
        json.WriteStartArray(name);
        foreach (var g in groups.GroupBy(g => key(g.Key), StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            json.WriteStartObject();
            json.WriteString(field, g.Key);
            WriteCounts(json, Sum(g.Select(p => p.Value)));
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static void WriteCounts(Utf8JsonWriter json, FleetCount count)
    {
        json.WriteNumber("gpus", count.Gpus);
        json.WriteNumber("allocated_gpus", count.Allocated);
        json.WriteNumber("idle_gpus", count.Gpus - count.Allocated);
        json.WriteString("usd_per_hour", ApiJson.Usd(new HourlyRate(count.NanosPerHour)));
        json.WriteString("idle_usd_per_hour", ApiJson.Usd(new HourlyRate(count.IdleNanosPerHour)));
    }

    internal readonly record struct FleetKey(string Cloud, string GpuType, string Capacity, string Team);

    internal readonly record struct FleetCount(int Gpus, int Allocated, long NanosPerHour, long IdleNanosPerHour);
}
