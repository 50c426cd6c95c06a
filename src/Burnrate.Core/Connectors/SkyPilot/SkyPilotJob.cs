using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Pricing;

namespace Burnrate.Connectors.SkyPilot;

/// <summary>
/// A SkyPilot managed job as the API server's <c>/jobs/queue</c> describes it (<c>ManagedJobRecord</c>), with what
/// Burnrate needs: where it runs now, on which capacity, and when it started, recovered and ended.
/// </summary>
/// <param name="JobId">The managed job id.</param>
/// <param name="Name">The job (task) name.</param>
/// <param name="Status">Upper case, without an enum prefix: <c>RUNNING</c>, <c>RECOVERING</c>, <c>SUCCEEDED</c>, ...</param>
/// <param name="User">The user name.</param>
/// <param name="Cloud">The cloud now (lower case), or empty.</param>
/// <param name="Region">The region now.</param>
/// <param name="Zone">The zone now, or empty.</param>
/// <param name="InstanceType">The instance type now, from the resources string; empty when it does not say.</param>
/// <param name="Capacity">Spot when the resources string says so, else on-demand.</param>
/// <param name="Nodes">Nodes of the job's cluster.</param>
/// <param name="Gpus">GPUs per node.</param>
/// <param name="GpuModel">The accelerator (<c>A100</c>).</param>
/// <param name="Cluster">The cluster's name on the cloud (the <c>skypilot-cluster-name</c> tag), or the job-derived name.</param>
/// <param name="Start">When it first started running.</param>
/// <param name="End">When it ended; null while not ended.</param>
/// <param name="LastRecovered">When it last came back after a recovery.</param>
/// <param name="RecoveryCount">Recoveries so far.</param>
public sealed record SkyPilotJob(
    long JobId,
    string Name,
    string Status,
    string User,
    string Cloud,
    string Region,
    string Zone,
    string InstanceType,
    CapacityType Capacity,
    int Nodes,
    int Gpus,
    string GpuModel,
    string Cluster,
    DateTimeOffset? Start,
    DateTimeOffset? End,
    DateTimeOffset? LastRecovered,
    int RecoveryCount)
{
    /// <summary>Statuses after which nothing runs any more.</summary>
    public bool IsTerminal => Status is "SUCCEEDED" or "CANCELLED" || Status.StartsWith("FAILED", StringComparison.Ordinal);
}

/// <summary>Reads the return value of <c>/jobs/queue</c> (and <c>/jobs/queue/v2</c>): a list of managed job records.</summary>
public static partial class SkyPilotJobsReader
{
    /// <summary>Reads <paramref name="value"/>: an array of records, or an object with <c>jobs</c>.</summary>
    /// <exception cref="FormatException">Not a list of job records.</exception>
    public static IReadOnlyList<SkyPilotJob> Read(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("jobs", out var inner))
            value = inner;
        if (value.ValueKind != JsonValueKind.Array)
            throw new FormatException($"jobs queue: expected a list of jobs, got {value.ValueKind}");
        var jobs = new List<SkyPilotJob>();
        var i = 0;
        foreach (var r in value.EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.Object || Number(r, "job_id") is not { } id)
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"jobs queue: job {i} has no job_id"));
            var status = Str(r, "status");
            var dot = status.LastIndexOf('.');
            status = (dot >= 0 ? status[(dot + 1)..] : status).ToUpperInvariant();
            var resources = Str(r, "cluster_resources_full") is { Length: > 0 } full ? full : Str(r, "cluster_resources") is { Length: > 0 } c ? c : Str(r, "resources");
            var (model, gpus) = Accelerators(r);
            var nodes = NodesOf(resources);
            jobs.Add(new SkyPilotJob(
                (long)id,
                Str(r, "job_name") is { Length: > 0 } n ? n : Str(r, "task_name"),
                status,
                Str(r, "user_name"),
                Str(r, "cloud").ToLowerInvariant(),
                Str(r, "region"),
                Str(r, "zone"),
                InstanceTypeOf(resources),
                IsSpot(resources) ? CapacityType.Spot : CapacityType.OnDemand,
                nodes,
                gpus,
                model,
                Str(r, "cluster_name_on_cloud") is { Length: > 0 } onCloud ? onCloud : Str(r, "current_cluster_name") is { Length: > 0 } current ? current : string.Create(CultureInfo.InvariantCulture, $"sky-managed-{id}"),
                Time(r, "start_at"),
                Time(r, "end_at"),
                Time(r, "last_recovered_at"),
                (int)(Number(r, "recovery_count") ?? 0)));
            i++;
        }
        return jobs;
    }

    /// <summary>Spot when the resources string marks it: <c>1x[Spot](gpus=A100:8, ...)</c>, <c>[Spot]</c>, <c>spot</c>.</summary>
    internal static bool IsSpot(string resources) => SpotPattern().IsMatch(resources);

    /// <summary>
    /// The instance type in a resources string such as <c>1x(gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)</c> or
    /// <c>1x AWS(p4d.24xlarge, {'A100': 8})</c>: the first item in the parentheses that is not <c>key=value</c> and looks
    /// like an instance type.
    /// </summary>
    internal static string InstanceTypeOf(string resources)
    {
        var open = resources.IndexOf('(', StringComparison.Ordinal);
        var close = resources.LastIndexOf(')');
        if (open < 0 || close <= open)
            return "";
        foreach (var raw in resources[(open + 1)..close].Split(','))
        {
            var item = raw.Trim();
            if (item.Contains('=', StringComparison.Ordinal) || item.Contains('{', StringComparison.Ordinal) || item.Contains(':', StringComparison.Ordinal))
                continue;
            if (InstanceTypePattern().IsMatch(item))
                return item;
        }
        return "";
    }

    private static int NodesOf(string resources)
    {
        var x = resources.IndexOf('x', StringComparison.Ordinal);
        return x > 0 && int.TryParse(resources.AsSpan(0, x).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 1;
    }

    /// <summary><c>accelerators</c>: <c>{"A100": 8}</c> or <c>"A100:8"</c>.</summary>
    internal static (string Model, int Count) Accelerators(JsonElement r)
    {
        if (!r.TryGetProperty("accelerators", out var a))
            return ("", 0);
        if (a.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in a.EnumerateObject())
                return (p.Name, p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetDouble(out var d) ? (int)Math.Ceiling(d) : 0);
        }
        if (a.ValueKind == JsonValueKind.String && a.GetString()!.Split(':') is [var model, var count] && int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            return (model, n);
        return ("", 0);
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    private static double? Number(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) ? d : null;

    /// <summary>Epoch seconds (fractional); missing, null, 0 or negative is unknown.</summary>
    private static DateTimeOffset? Time(JsonElement e, string name) =>
        Number(e, name) is { } s and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(s * 1000)) : null;

    [GeneratedRegex(@"\[\s*spot\s*\]|\bspot\b|use_spot\s*=\s*true", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SpotPattern();

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_]*([.\-_][A-Za-z0-9_]+)+$", RegexOptions.CultureInvariant)]
    private static partial Regex InstanceTypePattern();
}
