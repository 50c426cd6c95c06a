using System.Globalization;

namespace Burnrate.Connectors.Slurm;

/// <summary>
/// Reads Slurm's text outputs: <c>sacct -P</c> (the fallback when <c>sacct --json</c> is not available) and
/// <c>scontrol show nodes -o</c> (the GPUs of each node).
/// </summary>
public static class SlurmTextReader
{
    /// <summary>The <c>--format</c> fields the connector asks <c>sacct -P</c> for, in this order.</summary>
    public const string SacctFields = "JobID,JobIDRaw,JobName,User,Account,Partition,Cluster,AllocTRES,Submit,Start,End,NodeList,State";

    /// <summary>
    /// Reads <c>sacct -P</c> output with a header line (any field order; <see cref="SacctFields"/> are read). Times
    /// are read as UTC: the connector runs sacct with <c>TZ=UTC</c>. Step rows (<c>4242.batch</c>, <c>4242.0</c>) are
    /// folded into their job's <see cref="SlurmJob.Steps"/>.
    /// </summary>
    /// <exception cref="SlurmFormatException">No header, or a row with a wrong field count; the message names the line.</exception>
    public static SlurmJobList ReadSacctParsable(string text)
    {
        var lines = text.Split('\n');
        var header = -1;
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimEnd('\r').Length > 0)
            {
                header = i;
                break;
            }
        }
        if (header < 0)
            return new SlurmJobList([], "sacct -P", "");
        var names = lines[header].TrimEnd('\r').Split('|');
        int Col(string name) => Array.IndexOf(names, name);
        var jobIdCol = Col("JobID");
        if (jobIdCol < 0)
            throw new SlurmFormatException($"sacct -P line {header + 1}: no JobID column in the header '{lines[header]}'");
        var jobs = new List<SlurmJob>();
        var byId = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = header + 1; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Length == 0)
                continue;
            var f = line.Split('|');
            if (f.Length != names.Length)
                throw new SlurmFormatException(string.Create(CultureInfo.InvariantCulture, $"sacct -P line {i + 1}: {f.Length} fields, the header has {names.Length}"));
            string Get(string name) => Col(name) is var c and >= 0 ? f[c] : "";
            var jobId = f[jobIdCol];
            var dot = jobId.IndexOf('.', StringComparison.Ordinal);
            if (dot >= 0)
            {
                if (byId.TryGetValue(jobId[..dot], out var parent))
                    jobs[parent] = jobs[parent] with { Steps = [.. jobs[parent].Steps, jobId[(dot + 1)..]] };
                continue;
            }
            long arrayJob = 0;
            long? arrayTask = null;
            var underscore = jobId.IndexOf('_', StringComparison.Ordinal);
            if (underscore > 0)
            {
                arrayJob = ParseLong(jobId[..underscore], i, "JobID");
                // A pending array prints "7_[0-2]": not one task, nothing ran.
                if (long.TryParse(jobId.AsSpan(underscore + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var task))
                    arrayTask = task;
            }
            var raw = Get("JobIDRaw") is { Length: > 0 } r ? ParseLong(r.Split('.')[0], i, "JobIDRaw") : underscore > 0 ? arrayJob : ParseLong(jobId, i, "JobID");
            var state = Get("State");
            var space = state.IndexOf(' ', StringComparison.Ordinal);
            state = (space < 0 ? state : state[..space]).ToUpperInvariant();
            var (gpus, type) = SlurmJsonReader.TresString(Get("AllocTRES"));
            var start = ParseTime(Get("Start"), i, "Start");
            var end = ParseTime(Get("End"), i, "End");
            var active = state is "RUNNING" or "COMPLETING" or "SUSPENDED" or "REQUEUED";
            byId[jobId] = jobs.Count;
            jobs.Add(new SlurmJob(
                jobId, raw, arrayJob, arrayTask, Get("JobName"), Get("User"), Get("Account"), Get("Partition"), Get("Cluster"), state,
                ParseTime(Get("Submit"), i, "Submit"), state == "PENDING" ? null : start, active || state == "PENDING" ? null : end,
                Hostlist.Expand(Get("NodeList")), gpus, new Dictionary<string, IReadOnlyList<int>>(), type, [], SlurmJsonReader.TresCpus(Get("AllocTRES"))));
        }
        return new SlurmJobList(jobs, "sacct -P", "");
    }

    /// <summary>
    /// Reads <c>scontrol show nodes -o</c>: per node, its GPU count and type from <c>Gres=gpu:a100:8</c> (or
    /// <c>CfgTRES=...gres/gpu=8</c>).
    /// </summary>
    public static IReadOnlyList<SlurmNode> ReadNodes(string text)
    {
        var nodes = new List<SlurmNode>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (!line.StartsWith("NodeName=", StringComparison.Ordinal))
                continue;
            string Field(string key)
            {
                var at = line.IndexOf(" " + key + "=", StringComparison.Ordinal);
                var from = line.StartsWith(key + "=", StringComparison.Ordinal) ? key.Length + 1 : at < 0 ? -1 : at + key.Length + 2;
                if (from < 0)
                    return "";
                var to = line.IndexOf(' ', from);
                return to < 0 ? line[from..] : line[from..to];
            }
            var gpus = 0;
            var type = "";
            foreach (var gres in Field("Gres").Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                // gpu:a100:8, gpu:8, gpu:a100:8(S:0-1)
                var parts = gres.Split('(')[0].Split(':');
                if (parts[0] != "gpu")
                    continue;
                if (int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
                    gpus += count;
                if (parts.Length >= 3 && type.Length == 0 && parts[1] != "(null)")
                    type = parts[1];
            }
            if (gpus == 0)
                gpus = SlurmJsonReader.TresString(Field("CfgTRES")).Gpus;
            var cpus = int.TryParse(Field("CPUTot"), NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : 0;
            nodes.Add(new SlurmNode(Field("NodeName"), gpus, type, Field("State"), cpus));
        }
        return nodes;
    }

    private static long ParseLong(string text, int line, string field) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new SlurmFormatException(string.Create(CultureInfo.InvariantCulture, $"sacct -P line {line + 1}: {field} '{text}' is not a job id"));

    private static DateTimeOffset? ParseTime(string text, int line, string field)
    {
        if (text.Length == 0 || text is "Unknown" or "None" or "N/A")
            return null;
        if (DateTime.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            return new DateTimeOffset(t, TimeSpan.Zero);
        throw new SlurmFormatException(string.Create(CultureInfo.InvariantCulture, $"sacct -P line {line + 1}: {field} '{text}' is not a time like 2025-06-15T12:00:00"));
    }
}

/// <summary>A node as <c>scontrol show nodes</c> describes it.</summary>
/// <param name="Name">NodeName.</param>
/// <param name="Gpus">GPUs configured (GRES <c>gpu</c>).</param>
/// <param name="GpuType">GPU type of the GRES (<c>a100</c>), or empty.</param>
/// <param name="State">State (<c>IDLE</c>, <c>MIXED</c>, <c>DOWN+DRAIN</c>, ...).</param>
/// <param name="Cpus">CPUs (<c>CPUTot</c>), 0 when not given.</param>
public sealed record SlurmNode(string Name, int Gpus, string GpuType, string State, int Cpus = 0);
