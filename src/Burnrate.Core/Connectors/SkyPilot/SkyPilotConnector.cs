using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Protocols.Events;
using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Connectors.SkyPilot;

/// <summary>The SkyPilot connector's settings (config <c>connectors.skypilot</c>, docs/connectors.md).</summary>
public sealed class SkyPilotOptions
{
    /// <summary>The API server (<c>http://127.0.0.1:46580</c>).</summary>
    public required Uri Url { get; init; }

    /// <summary>How often <c>/jobs/queue</c> and <c>/status</c> are polled.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The longest one request (schedule plus result) may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A bearer token for the API server, or null.</summary>
    public string? Token { get; init; }

    /// <summary>Where the connector remembers what it reported; null: memory only.</summary>
    public string? StateFile { get; init; }
}

/// <summary>
/// Polls a SkyPilot API server for managed jobs and clusters, through its asynchronous request flow (<c>POST /jobs/queue</c>
/// or <c>POST /status</c> answers with a request id in <c>X-Skypilot-Request-ID</c>; <c>GET /api/get?request_id=</c> waits
/// for and returns the result), and reports their lifecycles through the ingest pipeline.
/// <list type="bullet">
/// <item>A managed job: its cluster as a node on the capacity SkyPilot chose, the job as a workload whose estimate is the
/// price of that capacity at launch, its GPUs released while it is RECOVERING, and, when it comes back on other capacity
/// (spot → on-demand), a <c>capacity_changed</c> at the recovery so the ledger switches price there and
/// <c>capacity_fallback</c> fires.</item>
/// <item>A cluster (<c>sky launch</c>): its nodes from its launch time, the cluster as the workload
/// <c>skypilot:{name on cloud}</c> (the id the Kubernetes mapper gives pods labelled <c>skypilot-cluster</c>) with the
/// launch-time price as its estimate, stopped when it stops (autostop or <c>sky stop</c>) or goes away
/// (<c>sky down</c>), at the time <c>/cluster_events</c> gives when the server has it (else the status change time, else
/// the poll), and started again when it is relaunched.</item>
/// </list>
/// What was reported is kept in <see cref="SkyPilotOptions.StateFile"/>, so a restart reports nothing twice.
/// </summary>
public sealed partial class SkyPilotConnector : IConnector
{
    private const string StatusBody = """{"cluster_names": null, "refresh": "NONE", "all_users": true}""";

    private readonly IngestPipeline _ingest;
    private readonly SkyPilotOptions _options;
    private readonly HttpClient _http;
    private readonly IPriceBook _prices;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PollRecord _record = new();
    private SkyPilotState _state;
    private volatile string? _eventsMissing;

    /// <summary>A connector; loads what an earlier run reported from <see cref="SkyPilotOptions.StateFile"/>.</summary>
    /// <exception cref="IOException">The state file exists but cannot be read.</exception>
    public SkyPilotConnector(IngestPipeline ingest, SkyPilotOptions options, HttpClient http, IPriceBook prices, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ingest = ingest;
        _options = options;
        _http = http;
        _prices = prices;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _state = SkyPilotState.Load(options.StateFile);
    }

    /// <inheritdoc/>
    public ConnectorHealth Health
    {
        get
        {
            var state = _state;
            var missing = _eventsMissing;
            return _record.Snapshot("skypilot", "skypilot",
                () => state.Jobs.Values.Count(j => j.Started && !j.Stopped) + state.Clusters.Values.Count(c => c.Up),
                missing is null ? "jobs/queue+status+cluster_events" : $"jobs/queue+status (no cluster_events: {missing})");
        }
    }

    /// <inheritdoc/>
    public Task RunAsync(CancellationToken cancellationToken) =>
        ConnectorLoop.RunAsync(PollOnceAsync, _options.Interval, _time, cancellationToken);

    /// <summary>Polls once; returns the number of events handed to ingest.</summary>
    public async Task<int> PollOnceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var ticks = _time.GetTimestamp();
        string? error = null;
        var sent = 0;
        try
        {
            var value = await RequestAsync("/jobs/queue", """{"refresh": false, "skip_finished": false, "all_users": true}""", cancellationToken).ConfigureAwait(false);
            var jobs = SkyPilotJobsReader.Read(value);
            var clusters = SkyPilotClustersReader.Read(await RequestAsync("/status", StatusBody, cancellationToken).ConfigureAwait(false));
            var next = _state.Clone();
            var stream = new MemoryStream();
            int count;
            using (var json = new Utf8JsonWriter(stream))
            {
                json.WriteStartArray();
                count = PlanJobs(json, jobs, next, now);
                count += await PlanClustersAsync(json, clusters, jobs, next, now, cancellationToken).ConfigureAwait(false);
                json.WriteEndArray();
            }
            if (count > 0)
            {
                var body = stream.ToArray();
                var events = EventsDecoder.Decode(body);
                if (_ingest.TryAccept(new IngestRecord(IngestKind.Events, now, "connector:skypilot", body), IngestPayload.OfEvents(IngestDecoder.OrderByTime(events))))
                {
                    _state = next;
                    sent = count;
                }
                else
                {
                    error = "the ingest queue is full; the events are sent again on the next poll";
                }
            }
            else
            {
                _state = next;
            }
            if (error is null)
                _state.Save(_options.StateFile);
        }
        catch (HttpRequestException e)
        {
            error = e.Message;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"the API server did not answer within {_options.Timeout.TotalSeconds:0.#}s";
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException or UnauthorizedAccessException or InvalidTelemetryException)
        {
            error = e.Message;
        }
        if (_record.Record(now, _time.GetElapsedTime(ticks), error, sent))
        {
            if (error is null)
                LogRecovered(_logger);
            else
                LogFailed(_logger, error);
        }
        return sent;
    }

    /// <summary>Schedules a request and fetches its result: the request's <c>return_value</c>.</summary>
    private async Task<JsonElement> RequestAsync(string path, string body, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        using var post = new HttpRequestMessage(HttpMethod.Post, new Uri(_options.Url, path)) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (_options.Token is { } token)
            post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var scheduled = await _http.SendAsync(post, linked.Token).ConfigureAwait(false);
        if (!scheduled.IsSuccessStatusCode)
            throw new HttpRequestException($"POST {path}: HTTP {(int)scheduled.StatusCode} {scheduled.ReasonPhrase}", null, scheduled.StatusCode);
        string? id = null;
        foreach (var header in (string[])["X-Skypilot-Request-ID", "X-Request-ID"])
        {
            if (scheduled.Headers.TryGetValues(header, out var values) && values.FirstOrDefault() is { Length: > 0 } v)
            {
                id = v;
                break;
            }
        }
        if (id is null)
        {
            using var answer = JsonDocument.Parse(await scheduled.Content.ReadAsStringAsync(linked.Token).ConfigureAwait(false));
            id = answer.RootElement.ValueKind == JsonValueKind.Object && answer.RootElement.TryGetProperty("request_id", out var r) ? r.GetString() : null;
        }
        if (string.IsNullOrEmpty(id))
            throw new FormatException($"POST {path}: no request id (X-Skypilot-Request-ID) in the answer");
        using var get = new HttpRequestMessage(HttpMethod.Get, new Uri(_options.Url, "/api/get?request_id=" + Uri.EscapeDataString(id)));
        if (_options.Token is { } t)
            get.Headers.Authorization = new AuthenticationHeaderValue("Bearer", t);
        using var result = await _http.SendAsync(get, linked.Token).ConfigureAwait(false);
        var text = await result.Content.ReadAsStringAsync(linked.Token).ConfigureAwait(false);
        if (!result.IsSuccessStatusCode)
            throw new HttpRequestException($"GET /api/get for {path}: HTTP {(int)result.StatusCode}: {(text.Length > 200 ? text[..200] : text)}");
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;
        var status = root.TryGetProperty("status", out var s) ? s.GetString() ?? "" : "";
        if (!status.Equals("SUCCEEDED", StringComparison.OrdinalIgnoreCase))
            throw new FormatException($"{path}: request {id} is {status}: {(root.TryGetProperty("error", out var e) ? e.ToString() : "")}");
        var value = root.GetProperty("return_value");
        // The server sends the result JSON-encoded as a string.
        if (value.ValueKind == JsonValueKind.String)
        {
            using var inner = JsonDocument.Parse(value.GetString()!);
            return inner.RootElement.Clone();
        }
        return value.Clone();
    }

    /// <summary>Writes the managed jobs' events since the last poll; updates <paramref name="next"/>.</summary>
    private int PlanJobs(Utf8JsonWriter json, IReadOnlyList<SkyPilotJob> jobs, SkyPilotState next, DateTimeOffset now)
    {
        var count = 0;
        var inQueue = new HashSet<long>();
        foreach (var job in jobs)
        {
            inQueue.Add(job.JobId);
            var t = next.Jobs.GetValueOrDefault(job.JobId) ?? new SkyPilotJobState(false, false, false, CapacityType.OnDemand, null, 0, "", 0);
            var id = string.Create(CultureInfo.InvariantCulture, $"skypilot:{job.JobId}");
            if (!t.Started && job.Start is not null && job.Status is "RUNNING" or "RECOVERING" || !t.Started && job.IsTerminal && job.Start is not null && job.End is { } ended && ended > now - TimeSpan.FromHours(1))
            {
                var at = job.Start!.Value;
                var price = job.InstanceType.Length > 0 ? _prices.Find(job.Cloud, job.Region, job.Zone, job.InstanceType, job.Capacity, at) : null;
                WriteNode(json, job.Cluster, job.Cloud, job.Region, job.Zone, job.InstanceType, job.Capacity, job.Gpus, job.GpuModel, job.Cluster, job.User, head: true, at);
                Write(json, "workload_started", at, w =>
                {
                    // The launch-time price SkyPilot chose (capacity, instance, region) is the estimate.
                    if (price is not null)
                        w.WriteString("estimate_usd_per_hour", (price.PricePerHour * job.Nodes).ToString(CultureInfo.InvariantCulture));
                    w.WriteStartObject("workload");
                    w.WriteString("id", id);
                    w.WriteString("orchestrator", "skypilot");
                    w.WriteString("name", job.Name.Length > 0 ? job.Name : id);
                    w.WriteString("user", job.User);
                    w.WriteStartObject("labels");
                    w.WriteString("skypilot_job_id", job.JobId.ToString(CultureInfo.InvariantCulture));
                    w.WriteString("skypilot_cluster", job.Cluster);
                    w.WriteString("use_spot", job.Capacity == CapacityType.Spot ? "true" : "false");
                    w.WriteEndObject();
                    w.WriteEndObject();
                });
                count += 2 + Allocate(json, id, job.Cluster, job.Gpus, at);
                t = t with { Started = true, Holding = true, Capacity = job.Capacity, LastRecovered = job.LastRecovered, Recoveries = job.RecoveryCount };
            }
            if (t.Started && !t.Stopped)
            {
                if (job.Status == "RECOVERING" && t.Holding)
                {
                    // Preempted: the job holds nothing while SkyPilot relaunches it (the exact preemption time is not in the record).
                    for (var g = 0; g < job.Gpus; g++)
                        count += Write(json, "gpu_released", now, w => { w.WriteString("workload_id", id); w.WriteString("node_id", job.Cluster); w.WriteNumber("gpu_index", g); });
                    t = t with { Holding = false };
                }
                else if (job.Status == "RUNNING" && (job.LastRecovered != t.LastRecovered || job.RecoveryCount != t.Recoveries))
                {
                    var at = job.LastRecovered ?? now;
                    if (job.Capacity != t.Capacity)
                        count += Write(json, "capacity_changed", at, w => { w.WriteString("node_id", job.Cluster); w.WriteString("capacity", job.Capacity.ToName()); });
                    count += Allocate(json, id, job.Cluster, job.Gpus, at);
                    t = t with { Holding = true, Capacity = job.Capacity, LastRecovered = job.LastRecovered, Recoveries = job.RecoveryCount };
                }
                if (job.IsTerminal && job.End is { } end)
                {
                    count += Write(json, "workload_stopped", end, w => w.WriteString("workload_id", id));
                    count += Write(json, "node_stopped", end, w => w.WriteString("node_id", job.Cluster));
                    t = t with { Stopped = true };
                }
            }
            next.Jobs[job.JobId] = t with { Node = job.Cluster, Gpus = job.Gpus };
        }
        // Jobs the queue no longer lists are done with; forget them.
        foreach (var gone in next.Jobs.Keys.Where(k => !inQueue.Contains(k)).ToList())
            next.Jobs.Remove(gone);
        return count;
    }

    /// <summary>
    /// Writes the clusters' events since the last poll (stops and teardowns first, at the time <c>/cluster_events</c>
    /// gives when it can, then launches); updates <paramref name="next"/>. Managed jobs' clusters are the jobs' own.
    /// </summary>
    private async Task<int> PlanClustersAsync(Utf8JsonWriter json, IReadOnlyList<SkyPilotCluster> clusters, IReadOnlyList<SkyPilotJob> jobs, SkyPilotState next, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var jobNodes = jobs.Select(j => j.Cluster).Concat(next.Jobs.Values.Select(j => j.Node)).ToHashSet(StringComparer.Ordinal);
        var listed = new Dictionary<string, SkyPilotCluster>(StringComparer.Ordinal);
        foreach (var c in clusters)
        {
            if (!jobNodes.Contains(c.NameOnCloud))
                listed[c.NameOnCloud] = c;
        }
        var count = 0;
        foreach (var (key, t) in next.Clusters.Where(p => p.Value.Up).ToList())
        {
            // Stopped (autostop, sky stop), stopped and started again between two polls, or gone (sky down).
            var c = listed.GetValueOrDefault(key);
            var how = c is null ? Ending.Down : !c.IsRunning ? Ending.Stopped : c.LaunchedAt != t.Launched ? Ending.Relaunched : Ending.None;
            if (how == Ending.None)
                continue;
            var bound = how switch
            {
                Ending.Stopped => c!.StatusUpdatedAt is { } changed && changed <= now ? changed : now,
                Ending.Relaunched => c!.LaunchedAt!.Value,
                _ => now,
            };
            var at = await EndedAtAsync(t, how, bound, cancellationToken).ConfigureAwait(false) ?? bound;
            if (at < t.Launched)
                at = t.Launched;
            var id = "skypilot:" + key;
            count += Write(json, "workload_stopped", at, w => w.WriteString("workload_id", id));
            for (var n = 0; n < t.Nodes; n++)
                count += Write(json, "node_stopped", at, w => w.WriteString("node_id", NodeId(key, n)));
            if (how == Ending.Down)
                next.Clusters.Remove(key);
            else
                next.Clusters[key] = t with { Up = false };
        }
        foreach (var (key, c) in listed)
        {
            if (!c.IsRunning || next.Clusters.GetValueOrDefault(key) is { Up: true })
                continue;
            var at = c.LaunchedAt!.Value;
            var id = "skypilot:" + key;
            var price = c.InstanceType.Length > 0 ? _prices.Find(c.Cloud, c.Region, "", c.InstanceType, c.Capacity, at) : null;
            for (var n = 0; n < c.Nodes; n++)
                WriteNode(json, NodeId(key, n), c.Cloud, c.Region, "", c.InstanceType, c.Capacity, c.Gpus, c.GpuModel, key, c.User, head: n == 0, at);
            count += c.Nodes;
            count += Write(json, "workload_started", at, w =>
            {
                // The price of what SkyPilot launched (instance, capacity, region) on every node is the estimate.
                if (price is not null)
                    w.WriteString("estimate_usd_per_hour", (price.PricePerHour * c.Nodes).ToString(CultureInfo.InvariantCulture));
                w.WriteStartObject("workload");
                w.WriteString("id", id);
                w.WriteString("orchestrator", "skypilot");
                w.WriteString("name", c.Name);
                w.WriteString("user", c.User);
                w.WriteStartObject("labels");
                w.WriteString("skypilot_cluster", c.Name);
                w.WriteString("skypilot_cluster_name_on_cloud", key);
                w.WriteString("use_spot", c.Capacity == CapacityType.Spot ? "true" : "false");
                w.WriteString("nodes", c.Nodes.ToString(CultureInfo.InvariantCulture));
                if (c.AutostopMinutes is { } idle)
                {
                    w.WriteString("autostop_minutes", idle.ToString(CultureInfo.InvariantCulture));
                    w.WriteString("autostop_down", c.ToDown ? "true" : "false");
                }
                w.WriteEndObject();
                w.WriteEndObject();
            });
            for (var n = 0; n < c.Nodes; n++)
                count += Allocate(json, id, NodeId(key, n), c.Gpus, at);
            next.Clusters[key] = new SkyPilotClusterState(c.Name, at, c.Nodes, Up: true);
        }
        return count;
    }

    private enum Ending
    {
        None,
        Stopped,
        Relaunched,
        Down,
    }

    /// <summary>
    /// When the launch <paramref name="cluster"/> follows ended, from <c>/cluster_events</c>: the last transition after the
    /// launch and not after <paramref name="bound"/> into STOPPED (a stop), or out of existence (a teardown: no status
    /// after, or a reason that says so). Null when the server has no such event, or no <c>/cluster_events</c> (an older
    /// server answers 404: recorded once in the health, not asked again).
    /// </summary>
    private async Task<DateTimeOffset?> EndedAtAsync(SkyPilotClusterState cluster, Ending how, DateTimeOffset bound, CancellationToken cancellationToken)
    {
        if (_eventsMissing is not null)
            return null;
        IReadOnlyList<SkyPilotClusterEvent> events;
        try
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("cluster_name", cluster.Name);
                w.WriteString("event_type", "STATUS_CHANGE");
                w.WriteBoolean("include_timestamps", true);
                w.WriteEndObject();
            }
            var body = Encoding.UTF8.GetString(buffer.ToArray());
            events = SkyPilotClustersReader.ReadEvents(await RequestAsync("/cluster_events", body, cancellationToken).ConfigureAwait(false));
        }
        catch (HttpRequestException e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed)
        {
            _eventsMissing = $"HTTP {(int)e.StatusCode!.Value}";
            LogNoEvents(_logger, _eventsMissing);
            return null;
        }
        catch (Exception e) when (e is HttpRequestException or FormatException or JsonException)
        {
            // The stop is still reported, at the status change time.
            LogEventsFailed(_logger, cluster.Name, e.Message);
            return null;
        }
        DateTimeOffset? at = null;
        foreach (var e in events)
        {
            if (e.At <= cluster.Launched || e.At > bound)
                continue;
            var matches = how == Ending.Down
                ? e.To.Length == 0 || e.To is "TERMINATED" or "DOWN" || e.Reason.Contains("down", StringComparison.OrdinalIgnoreCase) || e.Reason.Contains("terminat", StringComparison.OrdinalIgnoreCase) || e.Reason.Contains("torn", StringComparison.OrdinalIgnoreCase)
                : e.To == "STOPPED";
            if (matches)
                at = e.At;
        }
        return at;
    }

    /// <summary>Node <paramref name="index"/> of a cluster: the head has the cluster's name on the cloud, workers <c>-worker{n}</c>.</summary>
    private static string NodeId(string cluster, int index) =>
        index == 0 ? cluster : string.Create(CultureInfo.InvariantCulture, $"{cluster}-worker{index}");

    private static void WriteNode(Utf8JsonWriter json, string id, string cloud, string region, string zone, string instanceType, CapacityType capacity, int gpus, string gpuModel, string cluster, string user, bool head, DateTimeOffset at) =>
        Write(json, "node_started", at, w =>
        {
            w.WriteStartObject("node");
            w.WriteString("id", id);
            w.WriteString("provider", cloud.Length > 0 ? cloud : "unknown");
            w.WriteString("region", region.Length > 0 ? region : "unknown");
            w.WriteString("zone", zone);
            w.WriteString("instance_type", instanceType.Length > 0 ? instanceType : "unknown");
            w.WriteString("capacity", capacity.ToName());
            w.WriteNumber("gpus", gpus);
            w.WriteString("gpu_model", gpuModel);
            w.WriteString("cluster", cluster);
            // The tags SkyPilot puts on the instances (orchestrators.md §1.1), so cloud inventory joins on them.
            w.WriteStartObject("labels");
            w.WriteString("skypilot-cluster-name", cluster);
            w.WriteString("skypilot-user", user);
            w.WriteString("skypilot-head-node", head ? "1" : "0");
            w.WriteEndObject();
            w.WriteEndObject();
        });

    private static int Allocate(Utf8JsonWriter json, string id, string node, int gpus, DateTimeOffset at)
    {
        for (var g = 0; g < gpus; g++)
            Write(json, "gpu_allocated", at, w => { w.WriteString("workload_id", id); w.WriteString("node_id", node); w.WriteNumber("gpu_index", g); });
        return gpus;
    }

    private static int Write(Utf8JsonWriter json, string type, DateTimeOffset at, Action<Utf8JsonWriter> fields)
    {
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteString("time", at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        fields(json);
        json.WriteEndObject();
        return 1;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "skypilot connector: poll failed: {Error} (retrying every interval; the rest of burnrate runs on)")]
    private static partial void LogFailed(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "skypilot connector: polls succeed again")]
    private static partial void LogRecovered(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "skypilot connector: the API server has no /cluster_events ({Answer}); cluster stops are timed by their status change")]
    private static partial void LogNoEvents(ILogger logger, string answer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "skypilot connector: /cluster_events for {Cluster} failed: {Error}; its stop is timed by its status change")]
    private static partial void LogEventsFailed(ILogger logger, string cluster, string error);
}

