using System.Globalization;
using System.Text.Json;
using Burnrate.Pricing;
using Burnrate.Telemetry;

namespace Burnrate.Protocols.Events;

/// <summary>A Metaflow task attempt named by its AWS Batch job name (orchestrators.md §2.3).</summary>
/// <param name="User">The user who ran it (may contain <c>-</c>).</param>
/// <param name="Flow">The flow's name.</param>
/// <param name="RunId">The run id: numeric, or <c>sfn-{execution}</c> under Step Functions.</param>
/// <param name="Step">The step's name.</param>
/// <param name="TaskId">The task id.</param>
/// <param name="Retry">The attempt (Metaflow's retry count, from 0).</param>
public sealed record MetaflowBatchJob(string User, string Flow, string RunId, string Step, string TaskId, int Retry)
{
    /// <summary>
    /// Parses <c>{user}-{flow}-{run}-{step}-{task}-{retry}</c> from the right: retry and task are numeric, the step and
    /// the flow have no <c>-</c> (Python identifiers), the run id is one numeric item or <c>sfn-</c> and the execution
    /// (which may hold <c>-</c>), and the user is what is left. Null when the name is not of that shape.
    /// </summary>
    public static MetaflowBatchJob? Parse(string jobName)
    {
        ArgumentNullException.ThrowIfNull(jobName);
        var parts = jobName.Split('-');
        if (parts.Length < 6 || !IsNumber(parts[^1]) || !IsNumber(parts[^2]) || parts[^3].Length == 0)
            return null;
        var rest = parts[..^3];
        // Step Functions: the first "sfn" after at least a user and a flow starts the run id.
        var sfn = Array.FindIndex(rest, 2, p => p == "sfn");
        int flow;
        if (sfn >= 2 && sfn < rest.Length - 1)
            flow = sfn - 1;
        else if (IsNumber(rest[^1]))
            flow = rest.Length - 2;
        else
            return null;
        if (flow < 1 || rest[flow].Length == 0 || rest[..flow].Any(p => p.Length == 0))
            return null;
        return new MetaflowBatchJob(string.Join('-', rest[..flow]), rest[flow], string.Join('-', rest[(flow + 1)..]), parts[^3], parts[^2],
            int.Parse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture));
    }

    private static bool IsNumber(string s) => s.Length is > 0 and < 10 && s.All(char.IsAsciiDigit);
}

/// <summary>
/// Translates Amazon EventBridge <c>Batch Job State Change</c> events (what an EventBridge rule on <c>aws.batch</c> sends
/// to an API destination) into Burnrate's lifecycle events, for <c>POST /api/v1/events/aws-batch</c> (docs/api.md).
/// The event does not say which instance ran the job, so the caller names the instance type and capacity of the job
/// queue's compute environment; each job becomes a node of its own, priced at its share of that instance (its GPUs out
/// of the instance's, or its vCPUs for a job without GPUs), and a Metaflow job name becomes the step's workload with
/// Metaflow's labels, as on Kubernetes.
/// </summary>
public static class AwsBatchEvents
{
    /// <summary>
    /// Translates <paramref name="body"/> (one EventBridge event or an array of them) into a <c>POST /api/v1/events</c>
    /// body; <paramref name="count"/> is the number of events written (jobs not yet running write none).
    /// </summary>
    /// <exception cref="InvalidTelemetryException">An event is not a Batch job state change, misses a field, or the instance has no price.</exception>
    /// <param name="body">The EventBridge event(s).</param>
    /// <param name="instanceType">The job queue's instance type.</param>
    /// <param name="capacity">The job queue's capacity.</param>
    /// <param name="prices">Where the instance's price is found.</param>
    /// <param name="count">The number of events written.</param>
    /// <param name="steps">
    /// The Batch jobs running per step workload, kept across requests: a step stops when its last running job does;
    /// null: steps are never stopped.
    /// </param>
    public static byte[] Translate(ReadOnlySpan<byte> body, string instanceType, CapacityType capacity, IPriceBook prices, out int count, AwsBatchSteps? steps = null)
    {
        ArgumentNullException.ThrowIfNull(prices);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.ToArray());
        }
        catch (JsonException e)
        {
            throw new InvalidTelemetryException("body is not JSON: " + e.Message);
        }
        using (document)
        {
            var root = document.RootElement;
            var items = root.ValueKind == JsonValueKind.Array ? root.EnumerateArray().ToList() : [root];
            var stream = new MemoryStream();
            count = 0;
            using (var json = new Utf8JsonWriter(stream))
            {
                json.WriteStartArray();
                for (var i = 0; i < items.Count; i++)
                    count += Write(json, items[i], i, instanceType, capacity, prices, steps);
                json.WriteEndArray();
            }
            return stream.ToArray();
        }
    }

    private static int Write(Utf8JsonWriter json, JsonElement e, int index, string instanceType, CapacityType capacity, IPriceBook prices, AwsBatchSteps? steps)
    {
        InvalidTelemetryException Invalid(string what) => new(string.Create(CultureInfo.InvariantCulture, $"event {index}: {what}"));
        if (e.ValueKind != JsonValueKind.Object)
            throw Invalid("must be a JSON object");
        if (Str(e, "detail-type") != "Batch Job State Change")
            throw Invalid($"field 'detail-type' must be 'Batch Job State Change', got '{Str(e, "detail-type")}'");
        if (!e.TryGetProperty("detail", out var d) || d.ValueKind != JsonValueKind.Object)
            throw Invalid("field 'detail' is required");
        var region = Str(e, "region");
        var jobId = Str(d, "jobId");
        var jobName = Str(d, "jobName");
        if (region.Length == 0 || jobId.Length == 0 || jobName.Length == 0)
            throw Invalid("fields 'region', 'detail.jobId' and 'detail.jobName' are required");
        var status = Str(d, "status");
        var started = Millis(d, "startedAt");
        var stopped = Millis(d, "stoppedAt");
        // SUBMITTED, PENDING, RUNNABLE, STARTING, and a job that failed before it ran: nothing ran, nothing costs.
        if (status is not ("RUNNING" or "SUCCEEDED" or "FAILED") || started is not { } start)
            return 0;
        var (gpus, vcpus) = Requirements(d);
        var price = prices.Find("aws", region, "", instanceType, capacity, start)
            ?? throw Invalid($"no {capacity.ToName()} price for {instanceType} in {region}; name the job queue's instance type and capacity in the URL");
        // The job's share of the instance: its GPUs of the instance's, or its vCPUs for a job without GPUs.
        var share = gpus > 0 && price.GpuCount > 0 ? (decimal)Math.Min(gpus, price.GpuCount) / price.GpuCount
            : vcpus > 0 && price.VCpus > 0 ? Math.Min(vcpus, price.VCpus) / price.VCpus : 1m;
        var perHour = decimal.Round(price.PricePerHour * share, 9);
        var slice = gpus > 0 ? string.Create(CultureInfo.InvariantCulture, $"{instanceType}/{gpus}gpu") : string.Create(CultureInfo.InvariantCulture, $"{instanceType}/{vcpus:0.###}vcpu");
        var node = "aws-batch:" + jobId;
        var queue = Str(d, "jobQueue") is { Length: > 0 } arn ? arn[(arn.LastIndexOf('/') + 1)..] : "";
        var metaflow = MetaflowBatchJob.Parse(jobName);
        var workload = metaflow is { } m ? $"metaflow:{m.Flow}/{m.RunId}/{m.Step}" : "aws-batch:" + jobName;
        // A RUNNING delivered after the job's end (EventBridge does not keep order) says nothing new.
        if (status == "RUNNING" && steps is not null && steps.HasEnded(workload, jobId))
            return 0;
        var count = 0;
        count += Event(json, "price_changed", start, w =>
        {
            w.WriteString("provider", "aws");
            w.WriteString("region", region);
            w.WriteString("instance_type", slice);
            w.WriteString("capacity", capacity.ToName());
            w.WriteString("usd_per_hour", perHour.ToString(CultureInfo.InvariantCulture));
        });
        count += Event(json, "node_started", start, w =>
        {
            w.WriteStartObject("node");
            w.WriteString("id", node);
            w.WriteString("provider", "aws");
            w.WriteString("region", region);
            w.WriteString("instance_type", slice);
            w.WriteString("capacity", capacity.ToName());
            w.WriteNumber("gpus", gpus);
            w.WriteString("gpu_model", price.GpuModel);
            w.WriteString("cluster", queue);
            w.WriteStartObject("labels");
            w.WriteString("aws_batch_job_queue", queue);
            w.WriteString("instance_type", instanceType);
            w.WriteEndObject();
            w.WriteEndObject();
        });
        count += Event(json, "workload_started", start, w =>
        {
            // @resources (the GPUs or vCPUs the job asked Batch for) at the instance's price: the launch-time estimate.
            w.WriteString("estimate_usd_per_hour", perHour.ToString(CultureInfo.InvariantCulture));
            w.WriteStartObject("workload");
            w.WriteString("id", workload);
            w.WriteString("orchestrator", metaflow is null ? "aws_batch" : "metaflow");
            w.WriteString("name", metaflow is { } n ? $"{n.Flow}/{n.RunId}/{n.Step}" : jobName);
            w.WriteString("user", metaflow?.User ?? "");
            w.WriteStartObject("labels");
            if (metaflow is { } f)
            {
                // The names the Kubernetes path gives Metaflow's annotations, so step_change groups both alike.
                w.WriteString("metaflow/flow_name", f.Flow);
                w.WriteString("metaflow/run_id", f.RunId);
                w.WriteString("metaflow/step_name", f.Step);
                w.WriteString("metaflow/task_id", f.TaskId);
                w.WriteString("metaflow/attempt", f.Retry.ToString(CultureInfo.InvariantCulture));
                w.WriteString("metaflow/user", f.User);
                w.WriteString("metaflow_task_id", f.TaskId);
            }
            w.WriteString("aws_batch_job_id", jobId);
            w.WriteString("aws_batch_job_name", jobName);
            w.WriteString("aws_batch_job_queue", queue);
            w.WriteEndObject();
            w.WriteEndObject();
        });
        for (var g = 0; g < gpus; g++)
            count += Event(json, "gpu_allocated", start, w => { w.WriteString("workload_id", workload); w.WriteString("node_id", node); w.WriteNumber("gpu_index", g); });
        if (status != "RUNNING" && stopped is { } stop && stop >= start)
        {
            for (var g = 0; g < gpus; g++)
                count += Event(json, "gpu_released", stop, w => { w.WriteString("workload_id", workload); w.WriteString("node_id", node); w.WriteNumber("gpu_index", g); });
            count += Event(json, "node_stopped", stop, w => w.WriteString("node_id", node));
            // The step stops with its last running job (another task of a foreach may still run); a later task starts it again.
            if (steps is not null && steps.Stop(workload, jobId))
                count += Event(json, "workload_stopped", stop, w => w.WriteString("workload_id", workload));
        }
        else
        {
            steps?.Start(workload, jobId);
        }
        return count;
    }

    /// <summary><c>container.resourceRequirements</c>: <c>[{"type": "GPU", "value": "2"}, {"type": "VCPU", "value": "8"}, ...]</c> (else <c>container.vcpus</c>).</summary>
    private static (int Gpus, decimal VCpus) Requirements(JsonElement detail)
    {
        var (gpus, vcpus) = (0, 0m);
        if (detail.TryGetProperty("container", out var c) && c.ValueKind == JsonValueKind.Object)
        {
            if (c.TryGetProperty("resourceRequirements", out var rr) && rr.ValueKind == JsonValueKind.Array)
            {
                foreach (var r in rr.EnumerateArray())
                {
                    var value = Str(r, "value");
                    if (Str(r, "type") == "GPU" && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var g))
                        gpus = g;
                    else if (Str(r, "type") == "VCPU" && decimal.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v))
                        vcpus = v;
                }
            }
            if (vcpus == 0 && c.TryGetProperty("vcpus", out var old) && old.ValueKind == JsonValueKind.Number)
                vcpus = old.GetDecimal();
        }
        return (gpus, vcpus);
    }

    private static int Event(Utf8JsonWriter json, string type, DateTimeOffset at, Action<Utf8JsonWriter> fields)
    {
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteString("time", at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        fields(json);
        json.WriteEndObject();
        return 1;
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    /// <summary>Epoch milliseconds; missing or 0 is unknown.</summary>
    private static DateTimeOffset? Millis(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var ms) && ms > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
}

/// <summary>
/// Which AWS Batch jobs of each step workload are running, as the job state changes seen so far say (in memory, one per
/// server; safe for concurrent requests). A job seen ended is not running again, whatever order EventBridge delivers in.
/// </summary>
public sealed class AwsBatchSteps
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, HashSet<string>> _running = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _ended = new(StringComparer.Ordinal);

    /// <summary>Job <paramref name="jobId"/> of <paramref name="workload"/> runs (unless it was seen ended).</summary>
    public void Start(string workload, string jobId)
    {
        lock (_lock)
        {
            if (_ended.TryGetValue(workload, out var ended) && ended.Contains(jobId))
                return;
            if (!_running.TryGetValue(workload, out var running))
                _running[workload] = running = new HashSet<string>(StringComparer.Ordinal);
            running.Add(jobId);
        }
    }

    /// <summary>Whether job <paramref name="jobId"/> of <paramref name="workload"/> was seen ended.</summary>
    public bool HasEnded(string workload, string jobId)
    {
        lock (_lock)
            return _ended.TryGetValue(workload, out var ended) && ended.Contains(jobId);
    }

    /// <summary>Job <paramref name="jobId"/> ended; true when no job of <paramref name="workload"/> is known to run any more.</summary>
    public bool Stop(string workload, string jobId)
    {
        lock (_lock)
        {
            if (!_ended.TryGetValue(workload, out var ended))
                _ended[workload] = ended = new HashSet<string>(StringComparer.Ordinal);
            ended.Add(jobId);
            if (_running.TryGetValue(workload, out var running))
            {
                running.Remove(jobId);
                if (running.Count > 0)
                    return false;
                _running.Remove(workload);
            }
            return true;
        }
    }
}
