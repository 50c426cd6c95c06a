using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Protocols.Events;
using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Connectors.Slurm;

/// <summary>
/// Polls a Slurm cluster (<c>squeue --json</c>, <c>sacct --json</c> or <c>sacct -P</c>, <c>scontrol show nodes -o</c>)
/// on the injected clock and reports what it learns as the lifecycle events of <c>POST /api/v1/events</c>: each node
/// (<c>node_started</c>, with its internal rate as <c>price_changed</c>), each job that ran (<c>workload_started</c> at
/// its exact start, <c>gpu_allocated</c> per GPU it held, <c>workload_stopped</c> at its exact end). The events go
/// through the <see cref="IngestPipeline"/> like a request body: logged in the write-ahead log, replayed after a crash.
/// </summary>
/// <remarks>
/// sacct (the accounting database) is the record of start and end; squeue adds which GPU indexes a running job holds
/// (<c>gres_detail</c>) and jobs slurmdbd has not recorded yet. A job found only after it ended is reported whole
/// (start, allocations, stop in one batch). Which jobs were reported is kept in <see cref="SlurmOptions.StateFile"/>, so
/// a restart reports none twice. A poll that fails is recorded in <see cref="Health"/> and retried on the next tick;
/// nothing else in the server is affected.
/// </remarks>
public sealed partial class SlurmConnector : IConnector
{
    /// <summary>The orchestrator name and workload id prefix (<c>slurm:4242</c>).</summary>
    public const string Orchestrator = "slurm";

    private readonly IngestPipeline _ingest;
    private readonly SlurmOptions _options;
    private readonly ISlurmCommands _commands;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PollRecord _record = new();
    private SlurmState _state;
    private bool _sacctParsable;
    private bool _squeueUnsupported;

    /// <param name="ingest">Where the events go.</param>
    /// <param name="options">The cluster, prices, interval.</param>
    /// <param name="commands">Runs squeue, sacct and scontrol.</param>
    /// <param name="time">The clock polls are scheduled on.</param>
    /// <param name="logger">Failures and recoveries.</param>
    public SlurmConnector(IngestPipeline ingest, SlurmOptions options, ISlurmCommands commands, TimeProvider? time = null, ILogger? logger = null)
    {
        _ingest = ingest;
        _options = options;
        _commands = commands;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _sacctParsable = options.Format == SlurmFormat.Parsable;
        _state = SlurmState.Load(options.StateFile);
    }

    /// <inheritdoc/>
    public ConnectorHealth Health
    {
        get
        {
            return _record.Snapshot("slurm", "slurm", () => _state.Open.Count);
        }
    }

    /// <inheritdoc/>
    public Task RunAsync(CancellationToken cancellationToken) =>
        ConnectorLoop.RunAsync(PollOnceAsync, _options.Interval, _time, cancellationToken);

    /// <summary>Polls once and hands new events to the ingest pipeline; returns how many events that was.</summary>
    public async Task<int> PollOnceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var ticks = _time.GetTimestamp();
        var problems = new List<string>();
        var sent = 0;
        var source = "";
        try
        {
            var nodes = await ReadNodesAsync(problems, cancellationToken).ConfigureAwait(false);
            var live = await ReadSqueueAsync(problems, cancellationToken).ConfigureAwait(false);
            var accounted = await ReadSacctAsync(now, problems, cancellationToken).ConfigureAwait(false);
            source = string.Join(' ', new[] { live is null ? null : "squeue " + live.Dialect, accounted is null ? null : "sacct " + accounted.Dialect }.Where(s => s is not null));
            var jobs = Merge(accounted, live);
            if (accounted is not null || live is not null)
            {
                var (body, count, next) = Plan(jobs, nodes, now);
                if (accounted is not null)
                    next.LastPoll = now;
                if (count > 0)
                {
                    var events = EventsDecoder.Decode(body);
                    var record = new IngestRecord(IngestKind.Events, now, "connector:slurm", body);
                    if (_ingest.TryAccept(record, IngestPayload.OfEvents(IngestDecoder.OrderByTime(events))))
                    {
                        _state = next;
                        sent = count;
                    }
                    else
                    {
                        problems.Add("the ingest queue is full; the events are sent again on the next poll");
                    }
                }
                else
                {
                    _state = next;
                }
                _state.Save(_options.StateFile, now - _options.Lookback - TimeSpan.FromHours(1));
            }
        }
        catch (IOException e)
        {
            problems.Add(e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            problems.Add(e.Message);
        }
        catch (InvalidTelemetryException e)
        {
            // Our own events failed their decoder: a bug, said loudly instead of silently dropping jobs.
            problems.Add("internal: " + e.Message);
        }
        var error = problems.Count == 0 ? null : string.Join("; ", problems);
        if (_record.Record(now, _time.GetElapsedTime(ticks), error, sent, source))
        {
            if (error is null)
                LogRecovered(_logger);
            else
                LogFailed(_logger, error);
        }
        return sent;
    }

    private async Task<IReadOnlyList<SlurmNode>?> ReadNodesAsync(List<string> problems, CancellationToken cancellationToken)
    {
        var result = await RunAsync("scontrol", ["show", "nodes", "-o"], problems, cancellationToken).ConfigureAwait(false);
        return result is null ? null : SlurmTextReader.ReadNodes(result.Output);
    }

    private async Task<SlurmJobList?> ReadSqueueAsync(List<string> problems, CancellationToken cancellationToken)
    {
        if (_options.Format == SlurmFormat.Parsable || _squeueUnsupported)
            return null; // sacct alone has every start and end; squeue only adds GPU indexes
        var failures = new List<string>();
        var result = await RunAsync("squeue", ["--json"], failures, cancellationToken).ConfigureAwait(false);
        if (result is null)
        {
            if (_options.Format == SlurmFormat.Auto && failures.Exists(Unsupported))
            {
                _squeueUnsupported = true;
                LogFallback(_logger, "squeue --json", failures[0]);
            }
            else
            {
                problems.AddRange(failures);
            }
            return null;
        }
        try
        {
            return SlurmJsonReader.ReadSqueue(Encoding.UTF8.GetBytes(result.Output));
        }
        catch (SlurmFormatException e)
        {
            problems.Add(e.Message);
            return null;
        }
    }

    private async Task<SlurmJobList?> ReadSacctAsync(DateTimeOffset now, List<string> problems, CancellationToken cancellationToken)
    {
        var since = _state.Since(now - _options.Lookback, now - 4 * _options.Interval - TimeSpan.FromMinutes(5));
        var from = since.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        if (!_sacctParsable)
        {
            var failures = new List<string>();
            var json = await RunAsync("sacct", ["--json", "-a", "-S", from, "-E", "now"], failures, cancellationToken).ConfigureAwait(false);
            if (json is null)
            {
                // A database outage is an error to report; a Slurm without the JSON plugins is a reason to read -P.
                if (_options.Format != SlurmFormat.Auto || !failures.Exists(Unsupported))
                {
                    problems.AddRange(failures);
                    return null;
                }
                LogFallback(_logger, "sacct --json", failures[0]);
            }
            else
            {
                try
                {
                    return SlurmJsonReader.ReadSacct(Encoding.UTF8.GetBytes(json.Output));
                }
                catch (SlurmFormatException e) when (_options.Format == SlurmFormat.Auto && !e.Message.Contains("reported an error", StringComparison.Ordinal))
                {
                    LogFallback(_logger, "sacct --json", e.Message);
                }
                catch (SlurmFormatException e)
                {
                    problems.Add(e.Message);
                    return null;
                }
            }
            _sacctParsable = true;
        }
        var text = await RunAsync("sacct", ["-a", "-P", "--format=" + SlurmTextReader.SacctFields, "-S", from, "-E", "now"], problems, cancellationToken).ConfigureAwait(false);
        if (text is null)
            return null;
        try
        {
            return SlurmTextReader.ReadSacctParsable(text.Output);
        }
        catch (SlurmFormatException e)
        {
            problems.Add(e.Message);
            return null;
        }
    }

    /// <summary>Whether a command's failure says the JSON output does not exist in this Slurm (no openapi/data_parser plugin, unknown option).</summary>
    private static bool Unsupported(string failure) =>
        failure.Contains("plugin", StringComparison.OrdinalIgnoreCase)
        || failure.Contains("unrecognized option", StringComparison.OrdinalIgnoreCase)
        || failure.Contains("invalid option", StringComparison.OrdinalIgnoreCase)
        || failure.Contains("not supported", StringComparison.OrdinalIgnoreCase);

    /// <summary>Runs a command; a failure is added to <paramref name="problems"/> (when given) and gives null.</summary>
    private async Task<SlurmCommandResult?> RunAsync(string command, string[] arguments, List<string> problems, CancellationToken cancellationToken)
    {
        try
        {
            var result = await _commands.RunAsync(command, arguments, cancellationToken).ConfigureAwait(false);
            if (result.ExitCode == 0)
                return result;
            var error = result.Error.Trim();
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"{command} exited with {result.ExitCode}: {(error.Length > 300 ? error[..300] : error)}"));
            return null;
        }
        catch (SlurmCommandException e)
        {
            problems.Add(e.Message);
            return null;
        }
    }

    /// <summary>sacct's records, completed with squeue's GPU indexes and with running jobs slurmdbd has not recorded yet.</summary>
    internal static IReadOnlyList<SlurmJob> Merge(SlurmJobList? accounted, SlurmJobList? live)
    {
        var byId = new Dictionary<string, SlurmJob>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var job in accounted?.Jobs ?? [])
        {
            // A job id used twice (the controller's state was reset) is the latest submission's.
            if (byId.TryAdd(job.JobId, job))
                order.Add(job.JobId);
            else if (job.Submit > byId[job.JobId].Submit)
                byId[job.JobId] = job;
        }
        foreach (var job in live?.Jobs ?? [])
        {
            if (byId.TryGetValue(job.JobId, out var known))
            {
                byId[job.JobId] = known with
                {
                    GpuIndexes = job.GpuIndexes.Count > 0 ? job.GpuIndexes : known.GpuIndexes,
                    Start = known.Start ?? job.Start,
                    End = known.End ?? job.End,
                    Nodes = known.Nodes.Count > 0 ? known.Nodes : job.Nodes,
                    Gpus = known.Gpus > 0 ? known.Gpus : job.Gpus,
                    GpuType = known.GpuType.Length > 0 ? known.GpuType : job.GpuType,
                    Cluster = known.Cluster.Length > 0 ? known.Cluster : job.Cluster,
                    Cpus = known.Cpus > 0 ? known.Cpus : job.Cpus,
                };
            }
            else
            {
                byId.Add(job.JobId, job);
                order.Add(job.JobId);
            }
        }
        return [.. order.Select(id => byId[id])];
    }

    /// <summary>
    /// The events that bring the ledger up to date with <paramref name="jobs"/>, as a <c>POST /api/v1/events</c> body,
    /// their count, and the state once they are accepted.
    /// </summary>
    private (byte[] Body, int Count, SlurmState Next) Plan(IReadOnlyList<SlurmJob> jobs, IReadOnlyList<SlurmNode>? nodes, DateTimeOffset now)
    {
        var next = _state.Clone();
        var stream = new MemoryStream();
        var count = 0;
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartArray();
            var nodeInfo = new Dictionary<string, SlurmNode>(StringComparer.Ordinal);
            foreach (var n in nodes ?? [])
                nodeInfo[n.Name] = n;

            // Nodes first, each at the earliest instant a job of this batch needs it (else now).
            var needed = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            foreach (var n in nodeInfo.Keys)
                needed[n] = now;
            foreach (var job in jobs)
            {
                if (!job.Ran || next.Started.ContainsKey(job.JobId) || next.Stopped.ContainsKey(job.JobId))
                    continue;
                foreach (var n in job.Nodes)
                    needed[n] = needed.TryGetValue(n, out var t) && t < job.Start!.Value ? t : job.Start!.Value;
            }
            foreach (var (name, at) in needed.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (next.Nodes.ContainsKey(name))
                    continue;
                var gpuType = nodeInfo.TryGetValue(name, out var info) ? info.GpuType : jobs.FirstOrDefault(j => j.Nodes.Contains(name) && j.GpuType.Length > 0)?.GpuType ?? "";
                var gpus = info?.Gpus ?? 0;
                var type = _options.TypeOf(name);
                if (gpus == 0 && type?.Gpus is { } configured)
                    gpus = configured;
                if (gpus == 0)
                    gpus = jobs.Where(j => j.Nodes.Contains(name)).Select(j => j.GpusOn(name)).DefaultIfEmpty(0).Max();
                // A node down now (or powered down) is not started for nothing; a job that ran on it starts it at its start.
                if (info is not null && IsDown(info.State) && at == now)
                    continue;
                count += WriteNode(json, name, at, gpus, gpuType, type, next);
            }

            // Nodes gone from scontrol's list, or DOWN (or powered down), stop costing now; they start again when back.
            if (nodes is not null)
            {
                foreach (var name in next.Nodes.Keys.Order(StringComparer.Ordinal).ToList())
                {
                    if (nodeInfo.TryGetValue(name, out var listed) && !IsDown(listed.State))
                        continue;
                    json.WriteStartObject();
                    json.WriteString("type", "node_stopped");
                    json.WriteString("time", Rfc3339(now));
                    json.WriteString("node_id", name);
                    json.WriteEndObject();
                    count++;
                    next.Nodes.Remove(name);
                }
            }

            foreach (var job in jobs)
            {
                if (!job.Ran)
                    continue;
                var id = WorkloadId(job);
                var start = job.Start!.Value;
                if (!next.Started.ContainsKey(job.JobId) && !next.Stopped.ContainsKey(job.JobId))
                {
                    // A job that ended before the first poll's window is history the ledger already has (or never will).
                    if (job.End is { } ended && ended < now - _options.Lookback)
                        continue;
                    WriteStarted(json, job, id, start);
                    count++;
                    foreach (var node in job.Nodes)
                    {
                        if (!next.Nodes.ContainsKey(node))
                            continue;
                        foreach (var index in Indexes(job, node, next))
                        {
                            json.WriteStartObject();
                            json.WriteString("type", "gpu_allocated");
                            json.WriteString("time", Rfc3339(start));
                            json.WriteString("workload_id", id);
                            json.WriteString("node_id", node);
                            json.WriteNumber("gpu_index", index);
                            json.WriteEndObject();
                            count++;
                            next.Hold(node, index, job.JobId, start);
                        }
                        // A job holding no GPU here pays its CPUs' share of the node's non-GPU part (GPU jobs pay by GPUs, as before).
                        if (job.GpusOn(node) == 0 && job.CpusOn(node) is var cpus and > 0
                            && nodeInfo.TryGetValue(node, out var described) && described.Cpus > 0)
                        {
                            json.WriteStartObject();
                            json.WriteString("type", "cpu_allocated");
                            json.WriteString("time", Rfc3339(start));
                            json.WriteString("workload_id", id);
                            json.WriteString("node_id", node);
                            json.WriteNumber("cpus", Math.Min(cpus, described.Cpus));
                            json.WriteNumber("node_cpus", described.Cpus);
                            json.WriteEndObject();
                            count++;
                        }
                    }
                    next.Started[job.JobId] = start;
                }
                if (job.End is { } end && !next.Stopped.ContainsKey(job.JobId))
                {
                    // The allocations end with the workload: one event is the exact end of its cost.
                    json.WriteStartObject();
                    json.WriteString("type", "workload_stopped");
                    json.WriteString("time", Rfc3339(end < start ? start : end));
                    json.WriteString("workload_id", id);
                    json.WriteEndObject();
                    count++;
                    next.Started.Remove(job.JobId);
                    next.Stopped[job.JobId] = end;
                    next.Release(job.JobId, end);
                }
            }
            json.WriteEndArray();
        }
        return (stream.ToArray(), count, next);
    }

    /// <summary>
    /// Whether a node's <c>State</c> (<c>DOWN*</c>, <c>IDLE+DRAIN</c>, <c>IDLE+POWERED_DOWN</c>, ...) says it does not run:
    /// a part <c>DOWN</c>, <c>POWERED_DOWN</c> or <c>FUTURE</c> (flags such as <c>*</c> or <c>~</c> ignored). A drained node still runs.
    /// </summary>
    internal static bool IsDown(string state) =>
        state.Split('+').Select(p => p.TrimEnd('*', '~', '#', '!', '%', '$', '@', '^', '-')).Any(p => p is "DOWN" or "POWERED_DOWN" or "POWER_DOWN" or "FUTURE");

    private int WriteNode(Utf8JsonWriter json, string name, DateTimeOffset at, int gpus, string gresType, SlurmNodeType? type, SlurmState next)
    {
        var count = 0;
        var model = type is { GpuModel.Length: > 0 } ? type.GpuModel : gresType;
        string provider, region, zone, instanceType, capacity;
        if (type is { Provider: { } cloud })
        {
            (provider, region, zone, instanceType, capacity) = (cloud, type.Region, type.Zone, type.InstanceType, type.Capacity.ToName());
        }
        else
        {
            provider = _options.Provider;
            region = _options.Cluster;
            zone = "";
            instanceType = type?.Type ?? (gpus > 0
                ? string.Create(CultureInfo.InvariantCulture, $"slurm-{(model.Length > 0 ? model.ToLowerInvariant() : "gpu")}x{gpus}")
                : "slurm-cpu");
            capacity = "on_demand";
            var rate = type?.GpuHour ?? _options.GpuRate(model);
            if (rate is { } gpuHour && gpus > 0 || type is { NodeHour: > 0 })
            {
                var price = (rate ?? 0) * gpus + (type?.NodeHour ?? 0);
                var key = provider + "/" + region + "/" + instanceType;
                var text = price.ToString(CultureInfo.InvariantCulture);
                if (!next.Prices.TryGetValue(key, out var known) || known != text)
                {
                    json.WriteStartObject();
                    json.WriteString("type", "price_changed");
                    json.WriteString("time", Rfc3339(at));
                    json.WriteString("provider", provider);
                    json.WriteString("region", region);
                    json.WriteString("instance_type", instanceType);
                    json.WriteString("capacity", "on_demand");
                    json.WriteString("usd_per_hour", text);
                    // The GPUs' part, so that the rest (node_hour) is the node's CPU/memory part CPU-only jobs share.
                    if (gpus > 0 && rate is { } perGpu)
                        json.WriteString("gpu_usd_per_hour", perGpu.ToString(CultureInfo.InvariantCulture));
                    json.WriteEndObject();
                    next.Prices[key] = text;
                    count++;
                }
            }
        }
        json.WriteStartObject();
        json.WriteString("type", "node_started");
        json.WriteString("time", Rfc3339(at));
        json.WriteStartObject("node");
        json.WriteString("id", name);
        json.WriteString("provider", provider);
        json.WriteString("region", region);
        json.WriteString("zone", zone);
        json.WriteString("instance_type", instanceType);
        json.WriteString("capacity", capacity);
        json.WriteNumber("gpus", gpus);
        json.WriteString("gpu_model", model);
        json.WriteString("cluster", _options.Cluster);
        json.WriteStartObject("labels");
        json.WriteString("slurm_node", name);
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteEndObject();
        next.Nodes[name] = gpus;
        return count + 1;
    }

    private void WriteStarted(Utf8JsonWriter json, SlurmJob job, string id, DateTimeOffset start)
    {
        json.WriteStartObject();
        json.WriteString("type", "workload_started");
        json.WriteString("time", Rfc3339(start));
        json.WriteStartObject("workload");
        json.WriteString("id", id);
        json.WriteString("orchestrator", Orchestrator);
        json.WriteString("name", job.Name.Length > 0 ? job.Name : id);
        json.WriteString("user", job.User);
        if (_options.AccountAs == "team")
            json.WriteString("team", job.Account);
        else if (_options.AccountAs == "project")
            json.WriteString("project", job.Account);
        json.WriteStartObject("labels");
        json.WriteString("slurm_job_id", job.JobId);
        json.WriteString("slurm_cluster", job.Cluster.Length > 0 ? job.Cluster : _options.Cluster);
        json.WriteString("account", job.Account);
        json.WriteString("partition", job.Partition);
        json.WriteString("gpus", job.Gpus.ToString(CultureInfo.InvariantCulture));
        json.WriteString("nodes", Hostlist.Join(job.Nodes));
        if (job.ArrayJobId > 0)
        {
            json.WriteString("slurm_array_job_id", job.ArrayJobId.ToString(CultureInfo.InvariantCulture));
            json.WriteString("slurm_array_task_id", job.ArrayTaskId?.ToString(CultureInfo.InvariantCulture) ?? "");
        }
        if (job.Steps.Count > 0)
            json.WriteString("slurm_steps", string.Join(',', job.Steps));
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>The GPU indexes <paramref name="job"/> holds on <paramref name="node"/>: squeue's, else the lowest free at its start.</summary>
    private static List<int> Indexes(SlurmJob job, string node, SlurmState state)
    {
        var gpus = state.Nodes.GetValueOrDefault(node);
        if (job.GpuIndexes.TryGetValue(node, out var known))
            return [.. known.Where(i => i < gpus)];
        var wanted = Math.Min(job.GpusOn(node), gpus);
        var result = new List<int>(wanted);
        for (var i = 0; i < gpus && result.Count < wanted; i++)
        {
            if (!state.IsHeld(node, i, job.Start!.Value))
                result.Add(i);
        }
        return result;
    }

    /// <summary>The workload id of a job: <c>slurm:4242</c>, <c>slurm:7_2</c> for an array task.</summary>
    public static string WorkloadId(SlurmJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return Orchestrator + ":" + job.JobId;
    }

    private static string Rfc3339(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Warning, Message = "slurm connector: poll failed: {Error} (retrying every interval; the rest of burnrate runs on)")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "slurm connector: polls succeed again")]
    private static partial void LogRecovered(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "slurm connector: {Command} is not available here ({Reason}); going on without it (sacct -P for sacct)")]
    private static partial void LogFallback(ILogger logger, string command, string reason);
}
