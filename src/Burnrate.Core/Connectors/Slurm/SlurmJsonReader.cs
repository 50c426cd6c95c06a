using System.Globalization;
using System.Text.Json;

namespace Burnrate.Connectors.Slurm;

/// <summary>
/// Reads <c>squeue --json</c> and <c>sacct --json</c> in every dialect Slurm has shipped: the 22.05 openapi plugins
/// (<c>openapi/v0.0.38</c>, <c>openapi/dbv0.0.38</c>: plain numbers, <c>job_state</c> a string, <c>meta.Slurm</c>) and the
/// data parsers of 23.02 and later (<c>data_parser/v0.0.39</c> to <c>v0.0.4x</c>: numbers wrapped as
/// <c>{set, infinite, number}</c>, states as flag arrays, <c>meta.slurm</c>). The dialect is read from the <c>meta</c>
/// block and reported; the fields Burnrate reads are looked up tolerantly, so both give the same <see cref="SlurmJob"/>s.
/// </summary>
public static class SlurmJsonReader
{
    /// <summary>Reads <c>squeue --json</c>: jobs slurmctld still holds (pending, running, and recently ended).</summary>
    /// <exception cref="SlurmFormatException">Not JSON, no <c>jobs</c> array, or Slurm reported errors.</exception>
    public static SlurmJobList ReadSqueue(ReadOnlySpan<byte> json) => Read(json, "squeue", ReadSqueueJob);

    /// <summary>Reads <c>sacct --json</c>: accounting records of allocations, with their steps.</summary>
    /// <exception cref="SlurmFormatException">Not JSON, no <c>jobs</c> array, or Slurm reported errors.</exception>
    public static SlurmJobList ReadSacct(ReadOnlySpan<byte> json) => Read(json, "sacct", ReadSacctJob);

    private static SlurmJobList Read(ReadOnlySpan<byte> json, string command, Func<JsonElement, SlurmJob> readJob)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64, AllowTrailingCommas = true });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new SlurmFormatException($"{command} --json: not JSON: {e.Message}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SlurmFormatException($"{command} --json: expected an object with meta and jobs");
            var (dialect, version) = Meta(root);
            if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array && errors.GetArrayLength() > 0)
            {
                var first = errors[0];
                var text = first.ValueKind == JsonValueKind.Object
                    ? Str(first, "description") is { Length: > 0 } d ? d : Str(first, "error")
                    : first.ToString();
                throw new SlurmFormatException($"{command} --json reported an error: {text}");
            }
            if (!root.TryGetProperty("jobs", out var jobs) || jobs.ValueKind != JsonValueKind.Array)
                throw new SlurmFormatException($"{command} --json ({dialect}): no 'jobs' array");
            var list = new List<SlurmJob>(Math.Min(jobs.GetArrayLength(), 100_000));
            var index = 0;
            foreach (var job in jobs.EnumerateArray())
            {
                try
                {
                    list.Add(readJob(job));
                }
                catch (Exception e) when (e is InvalidOperationException or FormatException or SlurmFormatException)
                {
                    throw new SlurmFormatException($"{command} --json ({dialect}): jobs[{index}]: {e.Message}", e);
                }
                index++;
            }
            return new SlurmJobList(list, dialect, version);
        }
    }

    /// <summary>The plugin or data parser (<c>openapi/dbv0.0.38</c>, <c>data_parser/v0.0.40</c>) and Slurm's release.</summary>
    private static (string Dialect, string Version) Meta(JsonElement root)
    {
        if (!root.TryGetProperty("meta", out var meta) || meta.ValueKind != JsonValueKind.Object)
            return ("unknown", "");
        var dialect = "unknown";
        if (meta.TryGetProperty("plugin", out var plugin) && plugin.ValueKind == JsonValueKind.Object)
        {
            // 23.02+: plugin.data_parser names the dialect; plugin.type is empty or the openapi plugin.
            if (Str(plugin, "data_parser") is { Length: > 0 } parser)
                dialect = parser;
            else if (Str(plugin, "type") is { Length: > 0 } type)
                dialect = type;
        }
        var version = "";
        foreach (var name in (string[])["Slurm", "slurm"])
        {
            if (meta.TryGetProperty(name, out var slurm) && slurm.ValueKind == JsonValueKind.Object)
            {
                version = Str(slurm, "release");
                if (version.Length == 0 && slurm.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.Object)
                    version = string.Join('.', Str(v, "major"), Str(v, "minor"), Str(v, "micro"));
            }
        }
        return (dialect, version);
    }

    private static SlurmJob ReadSqueueJob(JsonElement job)
    {
        var rawId = Long(job, "job_id") ?? throw new SlurmFormatException("job_id is missing");
        var state = State(job, "job_state");
        var nodes = Hostlist.Expand(Str(job, "nodes"));
        var start = Time(job, "start_time");
        var end = Time(job, "end_time");
        var (arrayJob, arrayTask) = (Long(job, "array_job_id") ?? 0, Long(job, "array_task_id"));
        var (gpus, gpuType) = TresString(Str(job, "tres_alloc_str"));
        var indexes = new Dictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);
        if (job.TryGetProperty("gres_detail", out var detail) && detail.ValueKind == JsonValueKind.Array)
        {
            // One entry per allocated node, in the order of the job's node list: "gpu:a100:2(IDX:0-1)".
            var i = 0;
            foreach (var entry in detail.EnumerateArray())
            {
                if (i < nodes.Count && entry.ValueKind == JsonValueKind.String && GresIndexes(entry.GetString()!) is { } idx)
                {
                    indexes[nodes[i]] = idx.Indexes;
                    if (gpuType.Length == 0)
                        gpuType = idx.Type;
                }
                i++;
            }
        }
        var ran = start is not null && state != "PENDING" && nodes.Count > 0;
        var active = state is "RUNNING" or "COMPLETING" or "SUSPENDED" or "CONFIGURING" or "STOPPED" or "RESIZING" or "SIGNALING" or "STAGE_OUT";
        return new SlurmJob(
            JobIdOf(rawId, arrayJob, arrayTask),
            rawId,
            arrayJob,
            arrayJob > 0 ? arrayTask : null,
            Str(job, "name"),
            Str(job, "user_name"),
            Str(job, "account"),
            Str(job, "partition"),
            Str(job, "cluster"),
            state,
            Time(job, "submit_time"),
            ran || state != "PENDING" ? start : null,
            // squeue's end_time of a running job is when its time limit runs out, not an end.
            active || state == "PENDING" ? null : end,
            nodes,
            gpus,
            indexes,
            gpuType,
            [],
            TresCpus(Str(job, "tres_alloc_str")));
    }

    private static SlurmJob ReadSacctJob(JsonElement job)
    {
        var rawId = Long(job, "job_id") ?? throw new SlurmFormatException("job_id is missing");
        JsonElement time = default;
        var hasTime = job.TryGetProperty("time", out time) && time.ValueKind == JsonValueKind.Object;
        var state = job.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Object ? State(s, "current") : State(job, "state");
        long arrayJob = 0;
        long? arrayTask = null;
        if (job.TryGetProperty("array", out var array) && array.ValueKind == JsonValueKind.Object)
        {
            arrayJob = Long(array, "job_id") ?? 0;
            arrayTask = Long(array, "task_id");
        }
        var gpus = 0;
        var cpus = 0;
        var gpuType = "";
        if (job.TryGetProperty("tres", out var tres) && tres.ValueKind == JsonValueKind.Object
            && tres.TryGetProperty("allocated", out var allocated) && allocated.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in allocated.EnumerateArray())
            {
                // {"type": "gres", "name": "gpu", "count": 2}; a typed one is named "gpu:a100". {"type": "cpu", "count": 16}.
                if (Str(t, "type") == "cpu")
                    cpus = (int)(Long(t, "count") ?? 0);
                if (Str(t, "type") != "gres")
                    continue;
                var name = Str(t, "name");
                if (name == "gpu")
                    gpus = (int)(Long(t, "count") ?? 0);
                else if (name.StartsWith("gpu:", StringComparison.Ordinal) && gpuType.Length == 0)
                {
                    gpuType = name[4..];
                    if (gpus == 0)
                        gpus = (int)(Long(t, "count") ?? 0);
                }
            }
        }
        var steps = new List<string>();
        if (job.TryGetProperty("steps", out var stepList) && stepList.ValueKind == JsonValueKind.Array)
        {
            foreach (var step in stepList.EnumerateArray())
            {
                if (!step.TryGetProperty("step", out var id) || id.ValueKind != JsonValueKind.Object || !id.TryGetProperty("id", out var value))
                    continue;
                // 22.05: a number or "batch"; 23.11+: "4242.batch" or "4242.0".
                var text = value.ValueKind == JsonValueKind.Number ? value.GetRawText() : value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
                var dot = text.LastIndexOf('.');
                steps.Add(dot >= 0 ? text[(dot + 1)..] : text);
            }
        }
        var nodes = Hostlist.Expand(NodesOf(job));
        var start = hasTime ? Time(time, "start") : null;
        var end = hasTime ? Time(time, "end") : null;
        var pending = state == "PENDING";
        return new SlurmJob(
            JobIdOf(rawId, arrayJob, arrayTask),
            rawId,
            arrayJob,
            arrayJob > 0 ? arrayTask : null,
            Str(job, "name"),
            Str(job, "user"),
            Str(job, "account"),
            Str(job, "partition"),
            Str(job, "cluster"),
            state,
            hasTime ? Time(time, "submission") : null,
            pending ? null : start,
            pending || state is "RUNNING" or "COMPLETING" or "SUSPENDED" or "REQUEUED" ? null : end,
            nodes,
            gpus,
            new Dictionary<string, IReadOnlyList<int>>(),
            gpuType,
            steps,
            cpus);
    }

    /// <summary><c>nodes</c>: a host list string; later dialects may make it an object with a <c>range</c> or a <c>list</c>.</summary>
    private static string NodesOf(JsonElement job)
    {
        if (!job.TryGetProperty("nodes", out var nodes))
            return "";
        return nodes.ValueKind switch
        {
            JsonValueKind.String => nodes.GetString()!,
            JsonValueKind.Object when Str(nodes, "range") is { Length: > 0 } range => range,
            JsonValueKind.Object when nodes.TryGetProperty("list", out var list) && list.ValueKind == JsonValueKind.Array
                => string.Join(',', list.EnumerateArray().Where(n => n.ValueKind == JsonValueKind.String).Select(n => n.GetString())),
            _ => "",
        };
    }

    internal static string JobIdOf(long rawId, long arrayJob, long? arrayTask) =>
        arrayJob > 0 && arrayTask is { } task
            ? string.Create(CultureInfo.InvariantCulture, $"{arrayJob}_{task}")
            : rawId.ToString(CultureInfo.InvariantCulture);

    /// <summary>CPUs in an allocated-TRES string (<c>cpu=16</c>); 0 when absent.</summary>
    public static int TresCpus(string tres)
    {
        foreach (var item in tres.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (item.StartsWith("cpu=", StringComparison.Ordinal) && int.TryParse(item.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var cpus))
                return cpus;
        }
        return 0;
    }

    /// <summary>GPUs and GPU type in an allocated-TRES string: <c>billing=16,cpu=16,gres/gpu=8,gres/gpu:a100=8,mem=256G,node=1</c>.</summary>
    public static (int Gpus, string Type) TresString(string tres)
    {
        var gpus = 0;
        var type = "";
        foreach (var item in tres.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
                continue;
            var key = item[..eq];
            var ok = int.TryParse(item.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var count);
            if (key == "gres/gpu" && ok)
                gpus = count;
            else if (key.StartsWith("gres/gpu:", StringComparison.Ordinal) && ok)
            {
                if (type.Length == 0)
                    type = key[9..];
                if (gpus == 0)
                    gpus = count;
            }
        }
        return (gpus, type);
    }

    /// <summary>The indexes of one <c>gres_detail</c> entry: <c>gpu:fake:1(IDX:0)</c>, <c>gpu:a100:4(IDX:0-1,4,6)</c>, <c>gpu(IDX:2)</c>.</summary>
    internal static (string Type, IReadOnlyList<int> Indexes)? GresIndexes(string detail)
    {
        if (!detail.StartsWith("gpu", StringComparison.Ordinal))
            return null;
        var open = detail.IndexOf("(IDX:", StringComparison.Ordinal);
        if (open < 0)
            return null;
        var close = detail.IndexOf(')', open);
        if (close < 0)
            return null;
        var head = detail[..open].Split(':');
        var type = head.Length >= 3 ? head[1] : "";
        if (type == "(null)")
            type = "";
        var indexes = new List<int>();
        foreach (var range in detail[(open + 5)..close].Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (range == "N/A")
                continue;
            var dash = range.IndexOf('-', StringComparison.Ordinal);
            if (!int.TryParse(dash < 0 ? range : range[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var a)
                || !int.TryParse(dash < 0 ? range : range[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var b)
                || b < a || b - a > 1024)
                return null;
            for (var i = a; i <= b; i++)
                indexes.Add(i);
        }
        return (type, indexes);
    }

    private static string Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v)
            ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString()!,
                JsonValueKind.Number => v.GetRawText(),
                _ => "",
            }
            : "";

    /// <summary>A number: plain (22.05), or <c>{"set": true, "infinite": false, "number": N}</c> (23.02+); null when unset.</summary>
    private static long? Long(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v))
            return null;
        if (v.ValueKind == JsonValueKind.Object)
        {
            if (v.TryGetProperty("set", out var set) && set.ValueKind == JsonValueKind.False)
                return null;
            if (v.TryGetProperty("infinite", out var inf) && inf.ValueKind == JsonValueKind.True)
                return null;
            if (!v.TryGetProperty("number", out v))
                return null;
        }
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : null;
    }

    /// <summary>An epoch-seconds time; 0 and unset are unknown.</summary>
    private static DateTimeOffset? Time(JsonElement e, string name) =>
        Long(e, name) is { } seconds and > 0 ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;

    /// <summary>A state: a string (22.05), or a flag array whose first item is the base state (23.11+).</summary>
    private static string State(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v))
            return "";
        var text = v.ValueKind switch
        {
            JsonValueKind.String => v.GetString()!,
            JsonValueKind.Array when v.GetArrayLength() > 0 && v[0].ValueKind == JsonValueKind.String => v[0].GetString()!,
            _ => "",
        };
        var space = text.IndexOf(' ', StringComparison.Ordinal);
        return (space < 0 ? text : text[..space]).ToUpperInvariant();
    }
}
