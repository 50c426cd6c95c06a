using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Burnrate.Connectors.SkyPilot;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Protocols.Events;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Connectors.SkyPilot;

/// <summary>
/// SkyPilot clusters (<c>sky launch</c>) through <c>POST /status</c> and <c>POST /cluster_events</c> on a local server
/// speaking the API server's request flow: each cluster is a workload from its launch, on its capacity, with the
/// launch-time price as its estimate; it stops costing at its autostop or teardown (timed by the cluster's events when
/// the server has them, by its status change when it is an older server without them); a relaunch starts it again;
/// and a restart on the same state file reports nothing twice.
/// </summary>
public sealed class SkyPilotClusterTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_launch = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);
    private const decimal SpotP4d = 9.89785m;
    private const decimal OnDemandP4d = 21.957642m;

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-skypilot-clusters-").FullName;
    private readonly FakeTimeProvider _time = new(s_launch.AddMinutes(5));
    private readonly HttpClient _http = new();
    private readonly FakeSkyPilotServer _sky = new();
    private LiveServer? _server;

    private SkyPilotOptions Options => new() { Url = new Uri(_sky.Url), StateFile = Path.Combine(_dir, "connectors", "skypilot.json") };

    /// <summary>A <c>StatusResponse</c> as the API server returns it (orchestrators.md §1.6; the pickled handle left out).</summary>
    private static Dictionary<string, object?> Cluster(string name, string onCloud, string status, string resources, int nodes, DateTimeOffset launched, DateTimeOffset? updated = null, int autostop = -1) => new()
    {
        ["name"] = name,
        ["launched_at"] = launched.ToUnixTimeSeconds(),
        ["handle"] = "gASVAAAA",
        ["last_use"] = "sky launch -c " + name,
        ["status"] = status,
        ["autostop"] = autostop,
        ["to_down"] = false,
        ["owner"] = null,
        ["metadata"] = new Dictionary<string, object>(),
        ["cluster_hash"] = "3b1f" + name,
        ["cluster_ever_up"] = true,
        ["status_updated_at"] = (updated ?? launched).ToUnixTimeSeconds(),
        ["user_hash"] = "2ea4c1d9",
        ["user_name"] = "ana",
        ["workspace"] = "default",
        ["is_managed"] = false,
        ["last_event"] = null,
        ["resources_str"] = resources.Replace(", p4d.24xlarge", "", StringComparison.Ordinal),
        ["resources_str_full"] = resources,
        ["nodes"] = nodes,
        ["cloud"] = "AWS",
        ["region"] = "us-east-1",
        ["cpus"] = "96",
        ["memory"] = "1152",
        ["accelerators"] = new Dictionary<string, int> { ["A100"] = 8 },
        ["labels"] = new Dictionary<string, string>(),
        ["cluster_name_on_cloud"] = onCloud,
    };

    private static string Status(params Dictionary<string, object?>[] clusters) => JsonSerializer.Serialize(clusters);

    private static object Event(DateTimeOffset at, string from, string? to, string reason) => new Dictionary<string, object?>
    {
        ["transitioned_at"] = at.ToUnixTimeSeconds(),
        ["starting_status"] = from,
        ["ending_status"] = to,
        ["reason"] = reason,
        ["type"] = "STATUS_CHANGE",
    };

    [Fact]
    public async Task Clusters_cost_from_their_launch_on_their_capacity_until_the_autostop_or_teardown_their_events_give()
    {
        var ct = TestContext.Current.CancellationToken;
        await _sky.StartAsync();
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var connector = new SkyPilotConnector(_server.Ingest, Options, _http, _server.Ingest.Cost.Prices, _time);

        // A one-node spot cluster with autostop, and a two-node on-demand one.
        _sky.Status = Status(
            Cluster("dev", "dev-2ea4", "UP", "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", 1, s_launch, autostop: 10),
            Cluster("ddp", "ddp-2ea4", "ClusterStatus.UP", "2x(gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", 2, s_launch.AddMinutes(1)));
        Assert.True(await connector.PollOnceAsync(ct) > 0);
        Assert.Equal(0, await connector.PollOnceAsync(ct)); // nothing new
        Assert.Equal(2, connector.Health.Tracked);

        // 12:30: dev was autostopped at 12:20 (its status changed at 12:29 as seen by a refresh); ddp was torn down at 12:25.
        _time.SetUtcNow(s_launch.AddMinutes(30));
        _sky.Status = Status(Cluster("dev", "dev-2ea4", "STOPPED", "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", 1, s_launch, s_launch.AddMinutes(29), autostop: 10));
        _sky.Events["dev"] = JsonSerializer.Serialize(new[] { Event(s_launch.AddSeconds(30), "INIT", "UP", "Cluster launched."), Event(s_launch.AddMinutes(20), "UP", "STOPPED", "Cluster was autostopped.") });
        _sky.Events["ddp"] = JsonSerializer.Serialize(new[] { Event(s_launch.AddMinutes(2), "INIT", "UP", "Cluster launched."), Event(s_launch.AddMinutes(25), "UP", null, "Cluster was torn down.") });
        Assert.True(await connector.PollOnceAsync(ct) > 0);
        Assert.Equal(0, connector.Health.Tracked);
        Assert.Null(connector.Health.LastError);

        // 12:40: dev is started again (sky start): a new launch, costing again from 12:40.
        _time.SetUtcNow(s_launch.AddMinutes(45));
        _sky.Status = Status(Cluster("dev", "dev-2ea4", "UP", "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", 1, s_launch.AddMinutes(40), autostop: 10));
        Assert.True(await connector.PollOnceAsync(ct) > 0);

        await _server.Ingest.RateAsync(s_launch.AddMinutes(60), ct);
        var costs = await CostsAsync(_server.Url, "2025-06-15T12:00:00Z", "2025-06-15T12:50:00Z");
        // dev: 12:00–12:20 and 12:40–12:50 on spot; ddp: 12:01–12:25 on two on-demand nodes.
        AssertUsd(30 * SpotP4d / 60, costs["skypilot:dev-2ea4"]);
        AssertUsd(24 * 2 * OnDemandP4d / 60, costs["skypilot:ddp-2ea4"]);

        // The launch-time price SkyPilot chose, for all its nodes, is each cluster's estimate.
        var dev = JsonDocument.Parse(await _http.GetStringAsync(_server.Url + "/api/v1/workloads/skypilot:dev-2ea4", ct)).RootElement;
        Assert.Equal(Money(SpotP4d), dev.GetProperty("estimate_usd_per_hour").GetString());
        Assert.Equal(("dev", "ana", "skypilot"), (dev.GetProperty("name").GetString(), dev.GetProperty("user").GetString(), dev.GetProperty("orchestrator").GetString()));
        var ddp = JsonDocument.Parse(await _http.GetStringAsync(_server.Url + "/api/v1/workloads/skypilot:ddp-2ea4", ct)).RootElement;
        Assert.Equal(Money(2 * OnDemandP4d), ddp.GetProperty("estimate_usd_per_hour").GetString());

        // The nodes carry the tags SkyPilot puts on the instances; a worker is its own node.
        var events = await EventsAsync();
        var nodes = events.OfType<NodeStarted>().Select(n => n.Node).ToList();
        Assert.Equal(["dev-2ea4", "ddp-2ea4", "ddp-2ea4-worker1", "dev-2ea4"], nodes.Select(n => n.Id));
        Assert.All(nodes, n => Assert.Equal(("ana", "p4d.24xlarge", 8), (n.Labels!["skypilot-user"], n.InstanceType, n.GpuCount)));
        Assert.Equal(["dev-2ea4", "ddp-2ea4", "ddp-2ea4", "dev-2ea4"], nodes.Select(n => n.Labels!["skypilot-cluster-name"]));
        Assert.Equal([CapacityType.Spot, CapacityType.OnDemand, CapacityType.OnDemand, CapacityType.Spot], nodes.Select(n => n.Capacity));
        var started = events.OfType<WorkloadStarted>().First(w => w.Workload.Id == "skypilot:dev-2ea4");
        Assert.Equal(("true", "10", "false"), (started.Workload.Labels!["use_spot"], started.Workload.Labels["autostop_minutes"], started.Workload.Labels["autostop_down"]));
        Assert.Equal([s_launch.AddMinutes(20), s_launch.AddMinutes(25)], events.OfType<WorkloadStopped>().Select(s => s.Time));
        Assert.Equal(2, _sky.Requests("/cluster_events"));
    }

    [Fact]
    public async Task An_older_server_without_cluster_events_is_asked_once_and_stops_are_timed_by_the_status_change()
    {
        var ct = TestContext.Current.CancellationToken;
        await _sky.StartAsync();
        _sky.HasEvents = false;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var connector = new SkyPilotConnector(_server.Ingest, Options, _http, _server.Ingest.Cost.Prices, _time);
        var resources = "1x(gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)";
        _sky.Status = Status(Cluster("a", "a-2ea4", "UP", resources, 1, s_launch), Cluster("b", "b-2ea4", "UP", resources, 1, s_launch));
        await connector.PollOnceAsync(ct);

        _time.SetUtcNow(s_launch.AddMinutes(20));
        _sky.Status = Status(Cluster("a", "a-2ea4", "STOPPED", resources, 1, s_launch, s_launch.AddMinutes(12)), Cluster("b", "b-2ea4", "UP", resources, 1, s_launch));
        await connector.PollOnceAsync(ct);
        Assert.Null(connector.Health.LastError);
        Assert.Contains("no cluster_events: HTTP 404", connector.Health.Source, StringComparison.Ordinal);
        _time.SetUtcNow(s_launch.AddMinutes(30));
        _sky.Status = "[]"; // b torn down: seen at this poll
        await connector.PollOnceAsync(ct);
        Assert.Null(connector.Health.LastError);

        Assert.Equal(1, _sky.Requests("/cluster_events"));
        Assert.Equal(3, _sky.Requests("/status"));
        await _server.Ingest.RateAsync(s_launch.AddMinutes(40), ct);
        var costs = await CostsAsync(_server.Url, "2025-06-15T12:00:00Z", "2025-06-15T12:40:00Z");
        AssertUsd(12 * OnDemandP4d / 60, costs["skypilot:a-2ea4"]);
        AssertUsd(30 * OnDemandP4d / 60, costs["skypilot:b-2ea4"]);
    }

    [Fact]
    public async Task A_restart_on_the_same_state_file_does_not_report_a_running_job_or_cluster_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await _sky.StartAsync();
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var resources = "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)";
        _sky.Queue = Job("RUNNING", null);
        _sky.Status = Status(Cluster("dev", "dev-2ea4", "UP", resources, 1, s_launch));
        var first = new SkyPilotConnector(_server.Ingest, Options, _http, _server.Ingest.Cost.Prices, _time);
        Assert.Equal(2 * (2 + 8), await first.PollOnceAsync(ct)); // node, workload and 8 GPUs each
        Assert.True(File.Exists(Options.StateFile));

        var restarted = new SkyPilotConnector(_server.Ingest, Options, _http, _server.Ingest.Cost.Prices, _time);
        Assert.Equal(2, restarted.Health.Tracked);
        Assert.Equal(0, await restarted.PollOnceAsync(ct));

        // It goes on from there: the job's end is reported, once.
        _time.SetUtcNow(s_launch.AddMinutes(20));
        _sky.Queue = Job("SUCCEEDED", s_launch.AddMinutes(15));
        Assert.Equal(2, await restarted.PollOnceAsync(ct));
        Assert.Equal(0, await new SkyPilotConnector(_server.Ingest, Options, _http, _server.Ingest.Cost.Prices, _time).PollOnceAsync(ct));

        // A state file that is not one is refused, naming it.
        var saved = await File.ReadAllTextAsync(Options.StateFile!, ct);
        await File.WriteAllTextAsync(Options.StateFile!, "{\"jobs\": 3}", ct);
        var e = Assert.Throws<IOException>(() => new SkyPilotConnector(_server.Ingest, Options, _http, _server.Ingest.Cost.Prices, _time));
        Assert.Contains("skypilot.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("\"dev-2ea4\"", saved, StringComparison.Ordinal);

        var events = await EventsAsync();
        Assert.Equal(["skypilot:7", "skypilot:dev-2ea4"], events.OfType<WorkloadStarted>().Select(w => w.Workload.Id));
        Assert.Equal(s_launch.AddMinutes(15), Assert.Single(events.OfType<WorkloadStopped>()).Time);
    }

    private static string Job(string status, DateTimeOffset? end) => JsonSerializer.Serialize(new object[]
    {
        new Dictionary<string, object?>
        {
            ["job_id"] = 7, ["task_id"] = 0, ["job_name"] = "train", ["status"] = "ManagedJobStatus." + status,
            ["user_name"] = "ana", ["cloud"] = "AWS", ["region"] = "us-east-1", ["zone"] = "us-east-1a",
            ["cluster_resources"] = "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", ["accelerators"] = new Dictionary<string, int> { ["A100"] = 8 },
            ["submitted_at"] = s_launch.AddMinutes(-2).ToUnixTimeSeconds(), ["start_at"] = s_launch.ToUnixTimeSeconds(),
            ["end_at"] = end?.ToUnixTimeSeconds(), ["last_recovered_at"] = null, ["recovery_count"] = 0,
            ["current_cluster_name"] = "train-7", ["cluster_name_on_cloud"] = "train-7",
        },
    });

    private static string Money(decimal usd) => decimal.Round(usd, 9).ToString("0.000000000", CultureInfo.InvariantCulture);

    /// <summary>The events the connector wrote to the ingest log, in order (read after the server stopped).</summary>
    private async Task<List<FleetEvent>> EventsAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _server = null;
        using var wal = WriteAheadLog.Open(Path.Combine(_dir, "server", "wal"));
        return [.. wal.ReadAll().Where(r => r.Kind == IngestKind.Events && r.Source == "connector:skypilot").SelectMany(r => EventsDecoder.Decode(r.Body.Span))];
    }

    /// <summary>Costs are summed from per-minute rows, each exact to the nano-dollar: equal to a few nano-dollars.</summary>
    private static void AssertUsd(decimal expected, string actual) =>
        Assert.InRange(decimal.Parse(actual, CultureInfo.InvariantCulture), expected - 0.0000001m, expected + 0.0000001m);

    private async Task<Dictionary<string, string>> CostsAsync(string url, string from, string to)
    {
        var body = await _http.GetStringAsync($"{url}/api/v1/costs?by=workload&from={from}&to={to}", TestContext.Current.CancellationToken);
        return JsonDocument.Parse(body).RootElement.GetProperty("rows").EnumerateArray()
            .ToDictionary(r => r.GetProperty("keys").GetProperty("workload").GetString()!, r => r.GetProperty("cost_usd").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        await _sky.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>
/// A local server speaking the SkyPilot API server's asynchronous flow: <c>POST /jobs/queue</c>, <c>/status</c> and
/// <c>/cluster_events</c> answer with a request id in <c>X-Skypilot-Request-ID</c>; <c>GET /api/get?request_id=</c>
/// returns <c>{request_id, name, status, return_value (JSON-encoded), error}</c>. <see cref="HasEvents"/> false answers
/// <c>/cluster_events</c> with 404, as servers older than it do.
/// </summary>
internal sealed class FakeSkyPilotServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, (string Name, string Result)> _requests = new();
    private readonly ConcurrentDictionary<string, int> _counts = new();
    private WebApplication? _app;

    public string Url { get; private set; } = "";

    public volatile string Queue = "[]";

    public volatile string Status = "[]";

    public volatile bool HasEvents = true;

    /// <summary>The <c>/cluster_events</c> answer by cluster name; a cluster not here has none.</summary>
    public ConcurrentDictionary<string, string> Events { get; } = new();

    public int Requests(string path) => _counts.GetValueOrDefault(path);

    public async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapPost("/jobs/queue", (HttpContext context) => Schedule(context, "jobs.queue", "/jobs/queue", Queue));
        _app.MapPost("/status", (HttpContext context) => Schedule(context, "status", "/status", Status));
        _app.MapPost("/cluster_events", async (HttpContext context) =>
        {
            _counts.AddOrUpdate("/cluster_events", 1, (_, n) => n + 1);
            if (!HasEvents)
                return Results.NotFound(new { detail = "Not Found" });
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            var name = body.RootElement.GetProperty("cluster_name").GetString()!;
            return Schedule(context, "cluster_events", null, Events.GetValueOrDefault(name, "[]"));
        });
        _app.MapGet("/api/get", (string request_id) => _requests.TryRemove(request_id, out var r)
            ? Results.Json(new { request_id, name = r.Name, status = "SUCCEEDED", return_value = r.Result, error = (string?)null })
            : Results.NotFound());
        await _app.StartAsync(TestContext.Current.CancellationToken);
        Url = _app.Urls.Single();
    }

    private IResult Schedule(HttpContext context, string name, string? path, string result)
    {
        if (path is not null)
            _counts.AddOrUpdate(path, 1, (_, n) => n + 1);
        var id = Guid.NewGuid().ToString("N");
        _requests[id] = (name, result);
        context.Response.Headers["X-Skypilot-Request-ID"] = id;
        return Results.Json(new { request_id = id });
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
            await _app.DisposeAsync();
    }
}
