using System.Globalization;
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

    /// <summary>How often <c>/jobs/queue</c> is polled.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The longest one request (schedule plus result) may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A bearer token for the API server, or null.</summary>
    public string? Token { get; init; }

    /// <summary>Where the connector remembers what it reported; null: memory only.</summary>
    public string? StateFile { get; init; }
}

/// <summary>
/// Polls a SkyPilot API server for managed jobs, through its asynchronous request flow (<c>POST /jobs/queue</c> answers
/// with a request id in <c>X-Skypilot-Request-ID</c>; <c>GET /api/get?request_id=</c> waits for and returns the result),
/// and reports each job's lifecycle through the ingest pipeline: its cluster as a node on the capacity SkyPilot chose,
/// the job as a workload whose estimate is the price of that capacity at launch, its GPUs released while it is
/// RECOVERING, and, when it comes back on other capacity (spot → on-demand), a <c>capacity_changed</c> at the recovery
/// so the ledger switches price there and <c>capacity_fallback</c> fires.
/// </summary>
public sealed partial class SkyPilotConnector : IConnector
{
    private readonly IngestPipeline _ingest;
    private readonly SkyPilotOptions _options;
    private readonly HttpClient _http;
    private readonly IPriceBook _prices;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PollRecord _record = new();
    private readonly Dictionary<long, Tracked> _jobs = [];

    private sealed class Tracked
    {
        public bool Started { get; set; }
        public bool Stopped { get; set; }
        public bool Holding { get; set; }
        public CapacityType Capacity { get; set; }
        public DateTimeOffset? LastRecovered { get; set; }
        public int Recoveries { get; set; }
        public string Node { get; set; } = "";
        public int Gpus { get; set; }
    }

    public SkyPilotConnector(IngestPipeline ingest, SkyPilotOptions options, HttpClient http, IPriceBook prices, TimeProvider? time = null, ILogger? logger = null)
    {
        _ingest = ingest;
        _options = options;
        _http = http;
        _prices = prices;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <inheritdoc/>
    public ConnectorHealth Health
    {
        get
        {
            return _record.Snapshot("skypilot", "skypilot", () => _jobs.Values.Count(j => j.Started && !j.Stopped), "jobs/queue");
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
            var (body, count, commit) = Plan(jobs, now);
            if (count > 0)
            {
                var events = EventsDecoder.Decode(body);
                if (_ingest.TryAccept(new IngestRecord(IngestKind.Events, now, "connector:skypilot", body), IngestPayload.OfEvents(IngestDecoder.OrderByTime(events))))
                {
                    commit();
                    sent = count;
                }
                else
                {
                    error = "the ingest queue is full; the events are sent again on the next poll";
                }
            }
        }
        catch (HttpRequestException e)
        {
            error = e.Message;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"the API server did not answer within {_options.Timeout.TotalSeconds:0.#}s";
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException or InvalidTelemetryException)
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
            throw new HttpRequestException($"POST {path}: HTTP {(int)scheduled.StatusCode} {scheduled.ReasonPhrase}");
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

    private (byte[] Body, int Count, Action Commit) Plan(IReadOnlyList<SkyPilotJob> jobs, DateTimeOffset now)
    {
        var stream = new MemoryStream();
        var count = 0;
        var changes = new List<Action>();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartArray();
            foreach (var job in jobs)
            {
                var t = _jobs.GetValueOrDefault(job.JobId) ?? new Tracked();
                var id = string.Create(CultureInfo.InvariantCulture, $"skypilot:{job.JobId}");
                var started = t.Started;
                var holding = t.Holding;
                var capacity = t.Capacity;
                var lastRecovered = t.LastRecovered;
                var recoveries = t.Recoveries;
                if (!started && job.Start is { } start && job.Status is "RUNNING" or "RECOVERING" || !started && job.IsTerminal && job.Start is not null && job.End is { } ended && ended > now - TimeSpan.FromHours(1))
                {
                    var at = job.Start!.Value;
                    var price = job.InstanceType.Length > 0 ? _prices.Find(job.Cloud, job.Region, job.Zone, job.InstanceType, job.Capacity, at) : null;
                    Write(json, "node_started", at, w =>
                    {
                        w.WriteStartObject("node");
                        w.WriteString("id", job.Cluster);
                        w.WriteString("provider", job.Cloud.Length > 0 ? job.Cloud : "unknown");
                        w.WriteString("region", job.Region.Length > 0 ? job.Region : "unknown");
                        w.WriteString("zone", job.Zone);
                        w.WriteString("instance_type", job.InstanceType.Length > 0 ? job.InstanceType : "unknown");
                        w.WriteString("capacity", job.Capacity.ToName());
                        w.WriteNumber("gpus", job.Gpus);
                        w.WriteString("gpu_model", job.GpuModel);
                        w.WriteString("cluster", job.Cluster);
                        w.WriteStartObject("labels");
                        w.WriteString("skypilot-cluster-name", job.Cluster);
                        w.WriteString("skypilot-user", job.User);
                        w.WriteEndObject();
                        w.WriteEndObject();
                    });
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
                    (started, holding, capacity, lastRecovered, recoveries) = (true, true, job.Capacity, job.LastRecovered, job.RecoveryCount);
                }
                if (started && !t.Stopped)
                {
                    if (job.Status == "RECOVERING" && holding)
                    {
                        // Preempted: the job holds nothing while SkyPilot relaunches it (the exact preemption time is not in the record).
                        for (var g = 0; g < job.Gpus; g++)
                            count += Write(json, "gpu_released", now, w => { w.WriteString("workload_id", id); w.WriteString("node_id", job.Cluster); w.WriteNumber("gpu_index", g); });
                        holding = false;
                    }
                    else if (job.Status == "RUNNING" && (job.LastRecovered != lastRecovered || job.RecoveryCount != recoveries))
                    {
                        var at = job.LastRecovered ?? now;
                        if (job.Capacity != capacity)
                            count += Write(json, "capacity_changed", at, w => { w.WriteString("node_id", job.Cluster); w.WriteString("capacity", job.Capacity.ToName()); });
                        count += Allocate(json, id, job.Cluster, job.Gpus, at);
                        (holding, capacity, lastRecovered, recoveries) = (true, job.Capacity, job.LastRecovered, job.RecoveryCount);
                    }
                    if (job.IsTerminal && job.End is { } end)
                    {
                        count += Write(json, "workload_stopped", end, w => w.WriteString("workload_id", id));
                        count += Write(json, "node_stopped", end, w => w.WriteString("node_id", job.Cluster));
                        changes.Add(() => t.Stopped = true);
                    }
                }
                var (s2, h2, c2, l2, r2) = (started, holding, capacity, lastRecovered, recoveries);
                changes.Add(() =>
                {
                    (t.Started, t.Holding, t.Capacity, t.LastRecovered, t.Recoveries, t.Node, t.Gpus) = (s2, h2, c2, l2, r2, job.Cluster, job.Gpus);
                    _jobs[job.JobId] = t;
                });
            }
            json.WriteEndArray();
        }
        return (stream.ToArray(), count, () => changes.ForEach(c => c()));
    }

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
}
