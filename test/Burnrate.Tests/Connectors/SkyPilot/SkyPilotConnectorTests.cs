using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Connectors.SkyPilot;

/// <summary>
/// <c>burnrate serve</c> with the SkyPilot connector against a local server speaking the API server's request flow
/// (<c>POST /jobs/queue</c> → <c>X-Skypilot-Request-ID</c> → <c>GET /api/get?request_id=</c> with the JSON-encoded
/// result): a managed job launched on spot, preempted (RECOVERING) and recovered on on-demand. The launch-time spot
/// price is the workload's estimate, the ledger switches from the spot to the on-demand price at the recovery, and
/// the default <c>capacity_fallback</c> rule fires.
/// </summary>
public sealed partial class SkyPilotConnectorTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_launch = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-skypilot-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();
    private readonly FakeTimeProvider _time = new(s_launch);
    private readonly HttpClient _http = new();
    private readonly ConcurrentDictionary<string, string> _requests = new();
    private readonly ConcurrentDictionary<string, bool> _statusRequests = new();
    private WebApplication? _sky;
    private volatile string _queue = "[]";
    private int _polls;

    private static string Job(string status, string resources, DateTimeOffset? lastRecovered, int recoveries) => JsonSerializer.Serialize(new object[]
    {
        new Dictionary<string, object?>
        {
            ["job_id"] = 7, ["task_id"] = 0, ["job_name"] = "train-llama", ["status"] = "ManagedJobStatus." + status,
            ["user_name"] = "ana", ["cloud"] = "AWS", ["region"] = "us-east-1", ["zone"] = "us-east-1a",
            ["cluster_resources"] = resources, ["accelerators"] = new Dictionary<string, int> { ["A100"] = 8 },
            ["submitted_at"] = s_launch.AddMinutes(-2).ToUnixTimeSeconds() + 0.25, ["start_at"] = s_launch.ToUnixTimeSeconds() + 0.0,
            ["end_at"] = null, ["last_recovered_at"] = lastRecovered?.ToUnixTimeSeconds(), ["recovery_count"] = recoveries,
            ["current_cluster_name"] = "train-llama-7", ["cluster_name_on_cloud"] = "train-llama-7",
        },
    });

    [Fact]
    public async Task A_managed_job_preempted_and_recovered_on_demand_switches_price_at_the_recovery_and_fires_capacity_fallback()
    {
        var ct = TestContext.Current.CancellationToken;
        var sky = await StartSkyPilotAsync();
        _queue = Job("RUNNING", "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", null, 0);
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, $"connectors:\n  skypilot:\n    url: {sky}\n    interval: 10s\n", ct);
        var real = Composition.CreateServices();
        var services = new CliServices
        {
            OpenStore = real.OpenStore,
            LoadPriceBook = real.LoadPriceBook,
            Out = TextWriter.Synchronized(_out),
            Error = TextWriter.Synchronized(_error),
            Time = _time,
        };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = BurnrateCli.InvokeAsync(services, ["serve", "--listen", "127.0.0.1:0", "--data", _data, "--config", config], stop.Token);
        var url = await WaitForUrlAsync(run);
        await PolledAsync(1);

        // 12:10:10: preempted; 12:12: back on on-demand (any_of [{use_spot: true}, {use_spot: false}]).
        _queue = Job("RECOVERING", "1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", null, 0);
        _time.SetUtcNow(s_launch.AddSeconds(610));
        await PolledAsync(2);
        _queue = Job("RUNNING", "1x(gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", s_launch.AddMinutes(12), 1);
        _time.SetUtcNow(s_launch.AddSeconds(730));
        await PolledAsync(3);
        _time.SetUtcNow(s_launch.AddSeconds(15 * 60 + 31)); // closes 12:00–12:14

        // The ledger: the node on spot ($9.89785/h, the catalog's) up to 12:12, on-demand ($21.957642/h) from 12:12.
        JsonElement rows = default;
        for (var i = 0; i < 400; i++)
        {
            var body = await _http.GetStringAsync($"{url}/api/v1/costs?by=capacity&step=1m&from=2025-06-15T12:00:00Z&to=2025-06-15T12:15:00Z", ct);
            rows = JsonDocument.Parse(body).RootElement.GetProperty("rows");
            // Every minute rated (under load the recovery's events can arrive after the first minutes were rated, and are re-rated).
            if (rows.EnumerateArray().Select(r => r.GetProperty("bucket").GetString()).Distinct().Count() == 15)
                break;
            await Task.Delay(25, ct);
            // A rating tick that was set up after the last jump waits for the clock to move on (the window ends at 12:15).
            if (i % 20 == 19)
                _time.Advance(TimeSpan.FromSeconds(1));
        }
        var byMinute = rows.EnumerateArray()
            .Select(r => (Minute: DateTimeOffset.Parse(r.GetProperty("bucket").GetString()!, CultureInfo.InvariantCulture).Minute, Capacity: r.GetProperty("keys").GetProperty("capacity").GetString(), Cost: decimal.Parse(r.GetProperty("cost_usd").GetString()!, CultureInfo.InvariantCulture)))
            .ToList();
        Assert.True(byMinute.Where(r => r.Capacity == "spot").Select(r => r.Minute).SequenceEqual(Enumerable.Range(0, 12)), string.Join("; ", byMinute) + _out);
        Assert.Equal([12, 13, 14], byMinute.Where(r => r.Capacity == "on_demand").Select(r => r.Minute));
        Assert.InRange(byMinute.Where(r => r.Capacity == "spot").Sum(r => r.Cost), 12 * 9.89785m / 60 - 0.00001m, 12 * 9.89785m / 60 + 0.00001m);
        Assert.InRange(byMinute.Where(r => r.Capacity == "on_demand").Sum(r => r.Cost), 3 * 21.957642m / 60 - 0.00001m, 3 * 21.957642m / 60 + 0.00001m);

        // The launch-time price SkyPilot chose is the estimate; the job paid nothing while it was recovering.
        var workload = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/workloads/skypilot:7", ct)).RootElement;
        Assert.Equal("9.897850000", workload.GetProperty("estimate_usd_per_hour").GetString());
        Assert.Equal(("train-llama", "ana", "skypilot"), (workload.GetProperty("name").GetString(), workload.GetProperty("user").GetString(), workload.GetProperty("orchestrator").GetString()));

        var alerts = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/alerts", ct)).RootElement.GetProperty("alerts");
        var fallback = Assert.Single(alerts.EnumerateArray(), a => a.GetProperty("rule").GetString() == "spot-fallback");
        Assert.Equal("firing", fallback.GetProperty("state").GetString());
        Assert.Equal("skypilot:7", fallback.GetProperty("labels").GetProperty("workload").GetString());

        var health = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/connectors", ct)).RootElement.GetProperty("connectors")[0];
        Assert.Equal(("skypilot", "ok"), (health.GetProperty("name").GetString(), health.GetProperty("status").GetString()));

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    private async Task PolledAsync(int polls)
    {
        for (var i = 0; i < 400 && Volatile.Read(ref _polls) < polls; i++)
            await Task.Delay(25, TestContext.Current.CancellationToken);
        Assert.True(Volatile.Read(ref _polls) >= polls, $"the connector polled {_polls} times, not {polls}: {_out}{_error}");
        await Task.Delay(100, TestContext.Current.CancellationToken); // its events reach the ingest queue
    }

    /// <summary>The API server's asynchronous flow: schedule, then fetch the result by request id.</summary>
    private async Task<string> StartSkyPilotAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _sky = builder.Build();
        _sky.MapPost("/jobs/queue", (HttpContext context) =>
        {
            var id = Guid.NewGuid().ToString("N");
            _requests[id] = _queue;
            context.Response.Headers["X-Skypilot-Request-ID"] = id;
            return Results.Json(new { request_id = id });
        });
        _sky.MapPost("/status", (HttpContext context) =>
        {
            var id = Guid.NewGuid().ToString("N");
            _requests[id] = "[]";
            _statusRequests[id] = true;
            context.Response.Headers["X-Skypilot-Request-ID"] = id;
            return Results.Json(new { request_id = id });
        });
        _sky.MapGet("/api/get", (string request_id) =>
        {
            if (!_requests.TryRemove(request_id, out var result))
                return Results.NotFound();
            if (_statusRequests.TryRemove(request_id, out _))
                Interlocked.Increment(ref _polls); // /status is the last request of a poll
            return Results.Json(new { request_id, name = "jobs.queue", status = "SUCCEEDED", return_value = result, error = (string?)null });
        });
        await _sky.StartAsync(TestContext.Current.CancellationToken);
        return _sky.Urls.Single();
    }

    private async Task<string> WaitForUrlAsync(Task<int> run)
    {
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(_out.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(url is not null, "serve never said where it listens: " + _out + _error);
        return url;
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+(?= \()")]
    private static partial Regex UrlPattern();

    public async ValueTask DisposeAsync()
    {
        if (_sky is not null)
            await _sky.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_data, recursive: true);
    }
}

/// <summary>What the connector reads from a managed job record's resources string and fields.</summary>
public sealed class SkyPilotJobsReaderTests
{
    [Theory]
    [InlineData("1x[Spot](gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", "p4d.24xlarge", true)]
    [InlineData("1x(gpus=A100:8, cpus=96, mem=1152, p4d.24xlarge, disk=256)", "p4d.24xlarge", false)]
    [InlineData("2x GCP(a2-highgpu-8g, {'A100': 8}, spot)", "a2-highgpu-8g", true)]
    [InlineData("1x Azure(Standard_ND96asr_v4, {'A100': 8})", "Standard_ND96asr_v4", false)]
    [InlineData("1x(gpus=H100:8, use_spot=False)", "", false)]
    public void The_instance_type_and_spot_are_read_from_the_resources_string(string resources, string instanceType, bool spot)
    {
        var json = JsonSerializer.Serialize(new[] { new Dictionary<string, object> { ["job_id"] = 3, ["status"] = "RUNNING", ["cluster_resources"] = resources } });
        var job = Assert.Single(Burnrate.Connectors.SkyPilot.SkyPilotJobsReader.Read(JsonDocument.Parse(json).RootElement));

        Assert.Equal((instanceType, spot ? Burnrate.Pricing.CapacityType.Spot : Burnrate.Pricing.CapacityType.OnDemand), (job.InstanceType, job.Capacity));
        Assert.Equal("sky-managed-3", job.Cluster);
    }

    [Fact]
    public void A_v2_answer_with_a_jobs_list_reads_the_same_and_a_record_without_job_id_is_refused()
    {
        var json = """{"jobs": [{"job_id": 5, "status": "ManagedJobStatus.FAILED_NO_RESOURCE", "end_at": 1750000000.5}], "total": 1}""";
        var job = Assert.Single(Burnrate.Connectors.SkyPilot.SkyPilotJobsReader.Read(JsonDocument.Parse(json).RootElement));
        Assert.Equal(("FAILED_NO_RESOURCE", true, DateTimeOffset.FromUnixTimeMilliseconds(1_750_000_000_500)), (job.Status, job.IsTerminal, job.End!.Value));
        Assert.Throws<FormatException>(() => Burnrate.Connectors.SkyPilot.SkyPilotJobsReader.Read(JsonDocument.Parse("""[{"status": "RUNNING"}]""").RootElement));
    }
}
