using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Storage;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Cli;

/// <summary><c>burnrate serve</c> in-process on a fake clock: events in over HTTP, exact costs out of the ledger.</summary>
public sealed partial class EventsEndToEndTests : IDisposable
{
    private static readonly DateTimeOffset s_start = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-events-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();
    private readonly FakeTimeProvider _time = new(s_start);
    private readonly HttpClient _http = new();

    private CliServices Services(Func<ICostStore, ICostStore>? wrapStore = null)
    {
        var real = Composition.CreateServices();
        return new CliServices
        {
            OpenStore = async (dir, ct) => (wrapStore ?? (s => s))(await real.OpenStore(dir, ct)),
            LoadPriceBook = real.LoadPriceBook,
            Out = TextWriter.Synchronized(_out),
            Error = TextWriter.Synchronized(_error),
            Time = _time,
        };
    }

    private const string Launch = """
        [{"type": "node_started", "time": "2025-06-15T12:00:00Z",
          "node": {"id": "i-0p4d", "provider": "aws", "region": "us-east-1", "zone": "us-east-1a", "instance_type": "p4d.24xlarge",
                   "capacity": "on-demand", "gpus": 8, "gpu_model": "A100", "cluster": "sky-train"}},
         {"type": "workload_started", "time": "2025-06-15T12:00:00Z", "estimate_usd_per_hour": 21.96,
          "workload": {"id": "skypilot:42", "orchestrator": "skypilot", "name": "train-llama", "user": "ana", "team": "research"}},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 0},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 1},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 2},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 3},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 4},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 5},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 6},
         {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 7}]
        """;

    [Fact]
    public async Task Events_posted_to_serve_are_rated_into_the_ledger_at_the_catalog_price_and_bad_requests_change_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = BurnrateCli.InvokeAsync(Services(), ["serve", "--listen", "127.0.0.1:0", "--data", _data], stop.Token);
        var url = await WaitForUrlAsync(run);

        var launched = await PostAsync(url, Launch, "application/json");
        Assert.Equal(HttpStatusCode.Accepted, launched.StatusCode);
        Assert.Equal(10, JsonDocument.Parse(await launched.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("accepted").GetInt32());

        // Each bad input gets its status; the valid workload_stopped before the bad event must not be applied either
        // (it would cut the cost below to one minute).
        const string stopThenBad = """
            [{"type": "workload_stopped", "time": "2025-06-15T12:01:00Z", "workload_id": "skypilot:42"},
             {"type": "gpu_allocated", "time": "2025-06-15T12:01:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": 0, "share": "mig:9g.99gb"}]
            """;
        await AssertProblemAsync(await PostAsync(url, stopThenBad, "application/json"), HttpStatusCode.BadRequest, "event 1: field 'share'");
        await AssertProblemAsync(await PostAsync(url, """{"type": "node_exploded", "time": "2025-06-15T12:01:00Z"}""", "application/json"), HttpStatusCode.BadRequest, "event 0: field 'type'");
        await AssertProblemAsync(await PostAsync(url, """{"type": "workload_stopped", "time": "noon", "workload_id": "skypilot:42"}""", "application/json"), HttpStatusCode.BadRequest, "event 0: field 'time'");
        await AssertProblemAsync(await PostAsync(url, """{"type": "workload_stopped", "time": "2025-06-15T12:01:00Z"}""", "application/json"), HttpStatusCode.BadRequest, "event 0: field 'workload_id' is required");
        await AssertProblemAsync(await PostAsync(url, """{"type": "capacity_changed", "time": "2025-06-15T12:01:00Z", "node_id": "i-0p4d", "capacity": "cheap"}""", "application/json"), HttpStatusCode.BadRequest, "event 0: field 'capacity'");
        await AssertProblemAsync(await PostAsync(url, """{"type": "bytes_transferred", "time": "2025-06-15T12:01:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "kind": "internet", "bytes": -1}""", "application/json"), HttpStatusCode.BadRequest, "event 0: field 'bytes'");
        await AssertProblemAsync(await PostAsync(url, "{not json", "application/json"), HttpStatusCode.BadRequest, "not valid JSON");
        await AssertProblemAsync(await PostAsync(url, """{"type": "workload_stopped", "time": "2025-06-15T12:01:00Z", "workload_id": "skypilot:42"}""", "text/plain"), HttpStatusCode.UnsupportedMediaType, "application/json");
        var huge = "[" + string.Join(",", Enumerable.Repeat("""{"type": "workload_stopped", "time": "2025-06-15T12:01:00Z", "workload_id": "skypilot:42"}""", 12_000)) + "]";
        Assert.True(Encoding.UTF8.GetByteCount(huge) > IngestEndpoints.MaxEventsBodyBytes);
        await AssertProblemAsync(await PostAsync(url, huge, "application/json"), HttpStatusCode.RequestEntityTooLarge, "smaller batches");
        Assert.Equal("ok\n", await _http.GetStringAsync(url + "/healthz", ct));

        // Minutes 12:00, 12:01 and 12:02 are closed at 12:03:30 (end 12:03:00 + the default 30 s grace); 12:03 is not
        // closed before 12:04:30. The whole node (8 of 8 GPUs and the CPU/memory part) belongs to the workload.
        // Price (aws.yaml, p4d.24xlarge us-east-1 on_demand): $21.957642/h, split by PriceSplit:
        //   compute = min(21.957642 / 2, 96 vCPU × 0.031611 + 1152 GiB × 0.004237) = min(10.978821, 7.91568) = $7.91568/h
        //   each GPU = (21.957642 − 7.91568) / 8 = $1.75524525/h
        // Each ledger line books whole nano-dollars per minute, carrying the remainder:
        //   a GPU line: 1.75524525 / 60 = 29,254,087.5 n$/min → 29,254,087 + 29,254,088 + 29,254,087 = 87,762,262 n$
        //   the compute line: 7.91568 / 60 × 3 = 395,784,000 n$ exactly
        //   total: 8 × 87,762,262 + 395,784,000 = 1,097,882,096 n$ = $1.097882096
        // (3 min × $21.957642/h would be $1.0978821; the 4 n$ are the GPU lines' carried half nano-dollars.)
        _time.SetUtcNow(s_start.AddSeconds(3 * 60 + 30));
        string? cost = null;
        for (var i = 0; i < 400 && cost is null; i++)
        {
            cost = await WorkloadCostAsync(url, "skypilot:42");
            if (cost is null)
            {
                await Task.Delay(25, ct);
                if (i % 20 == 19 && _time.GetUtcNow() < s_start.AddSeconds(4 * 60))
                    _time.Advance(TimeSpan.FromSeconds(1)); // nudges the rating timer; stays short of 12:04:30
            }
        }
        Assert.True(cost is not null, "the workload never reached the ledger: " + _out + _error);
        Assert.Equal("1.097882096", cost);

        var burn = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/burn", ct)).RootElement;
        var workload = burn.GetProperty("workloads").EnumerateArray().Single(w => w.GetProperty("workload").GetString() == "skypilot:42");
        Assert.Equal("21.957642000", workload.GetProperty("usd_per_hour").GetString());
        Assert.Equal("1.097882096", workload.GetProperty("total_usd").GetString());

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    [Fact]
    public async Task A_failed_ledger_write_is_logged_the_server_keeps_serving_and_shutdown_writes_the_kept_rows()
    {
        var ct = TestContext.Current.CancellationToken;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = BurnrateCli.InvokeAsync(Services(s => new FailingOnceCostStore(s)), ["serve", "--listen", "127.0.0.1:0", "--data", _data], stop.Token);
        var url = await WaitForUrlAsync(run);
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(url, Launch, "application/json")).StatusCode);

        _time.SetUtcNow(s_start.AddSeconds(3 * 60 + 30)); // closes 12:00–12:02; the tick's ledger write fails
        for (var i = 0; i < 400 && !_error.ToString().Contains("writing the ledger failed", StringComparison.Ordinal); i++)
            await Task.Delay(25, ct);
        Assert.Contains("warning: rating: writing the ledger failed", _error.ToString(), StringComparison.Ordinal);

        Assert.Equal("ok\n", await _http.GetStringAsync(url + "/healthz", ct));
        Assert.Null(await WorkloadCostAsync(url, "skypilot:42")); // not in the ledger yet
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(url, """{"type": "workload_stopped", "time": "2025-06-15T12:03:00Z", "workload_id": "skypilot:42"}""", "application/json")).StatusCode);

        await stop.CancelAsync();
        Assert.Equal(0, await run);

        // The rating on shutdown wrote the rows the failed tick kept: the same 3 minutes as above, $1.097882096.
        await using var ledger = await Composition.CreateServices().OpenStore(_data, ct);
        var rows = await ledger.QueryCostsAsync(new CostQuery { From = s_start, To = s_start.AddHours(1), By = [CostDimension.Workload] }, ct);
        Assert.Equal(1.097882096m, Assert.Single(rows, r => r.Keys[0] == "skypilot:42").Cost.Dollars);
    }

    [Fact]
    public async Task A_spend_rate_alert_reaches_its_webhook_as_soon_as_the_launch_is_applied_before_any_minute_is_rated()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var hook = await HookReceiver.StartAsync(ct);
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, $"""
            rules:
              - name: expensive
                kind: spend_rate
                above_usd_per_hour: 20
            notify:
              - webhook: {hook.Url}/hook
            """, ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = BurnrateCli.InvokeAsync(Services(), ["serve", "--listen", "127.0.0.1:0", "--data", _data, "--config", config], stop.Token);
        var url = await WaitForUrlAsync(run);

        // The clock stands still at the launch: the minute 12:00 is rated at 12:01:30 at the earliest, so only the live
        // evaluation of the applied launch can send this.
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(url, Launch, "application/json")).StatusCode);
        for (var i = 0; i < 400 && hook.Requests.IsEmpty; i++)
            await Task.Delay(25, ct);

        var (_, body) = Assert.Single(hook.Requests);
        var alert = Assert.Single(body.GetProperty("alerts").EnumerateArray());
        Assert.Equal("firing", alert.GetProperty("status").GetString());
        Assert.Equal("skypilot:42", alert.GetProperty("labels").GetProperty("workload").GetString());
        Assert.Equal("21.96", alert.GetProperty("annotations").GetProperty("usd_per_hour").GetString());
        Assert.Null(await WorkloadCostAsync(url, "skypilot:42")); // nothing rated yet

        // Its delivery is in the latency histogram: evidence and delivery at the same (stopped) instant, so ≤ 10 ms.
        var metrics = await _http.GetStringAsync(url + "/metrics", ct);
        Assert.Contains("burnrate_alert_delivery_latency_seconds_bucket{target=\"webhook-0\",kind=\"webhook\",le=\"0.01\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("burnrate_alert_delivery_latency_seconds_count{target=\"webhook-0\",kind=\"webhook\"} 1\n", metrics, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    [Fact]
    public async Task A_server_without_a_rating_pipeline_answers_events_with_503()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = new FakeCostStore();
        await using var app = BurnrateServer.Build(new BurnrateServerOptions { Listen = "127.0.0.1:0", Store = store });
        await app.StartAsync(ct);

        var response = await PostAsync(app.Urls.First(), """{"type": "workload_stopped", "time": "2025-06-15T12:01:00Z", "workload_id": "w"}""", "application/json");

        await AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable, "no ingest pipeline");
        await app.StopAsync(ct);
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

    private Task<HttpResponseMessage> PostAsync(string url, string body, string contentType) =>
        _http.PostAsync(url + "/api/v1/events", new StringContent(body, Encoding.UTF8, contentType), TestContext.Current.CancellationToken);

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string detail)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.Contains(detail, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private async Task<string?> WorkloadCostAsync(string url, string workload)
    {
        var costs = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/costs?by=workload", TestContext.Current.CancellationToken)).RootElement;
        foreach (var row in costs.GetProperty("rows").EnumerateArray())
        {
            if (row.GetProperty("keys").GetProperty("workload").GetString() == workload)
                return row.GetProperty("cost_usd").GetString();
        }
        return null;
    }

    /// <summary>A real ledger whose first cost write fails, as a store outage would.</summary>
    private sealed class FailingOnceCostStore(ICostStore inner) : ICostStore
    {
        private int _writes;

        public Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _writes) == 1 ? throw new IOException("disk unplugged") : inner.WriteAsync(lines, cancellationToken);

        public Task MigrateAsync(CancellationToken cancellationToken = default) => inner.MigrateAsync(cancellationToken);
        public Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default) => inner.UpsertWorkloadsAsync(workloads, cancellationToken);
        public Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default) => inner.WriteWorkAsync(work, cancellationToken);
        public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default) => inner.QueryCostsAsync(query, cancellationToken);
        public Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default) => inner.GetWorkloadsAsync(ids, cancellationToken);
        public Task<IReadOnlyList<Burnrate.Rating.CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.GetLinesAsync(from, to, cancellationToken);
        public Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default) => inner.GetWorkTotalsAsync(from, to, workloadIds, cancellationToken);

        public Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default) => inner.GetLedgerSpanAsync(cancellationToken);
        public Task WriteBillingAsync(IReadOnlyList<Burnrate.Billing.BillingLine> lines, string sourceFile, CancellationToken cancellationToken = default) => inner.WriteBillingAsync(lines, sourceFile, cancellationToken);
        public Task<IReadOnlyList<Burnrate.Billing.BillingLine>> QueryBillingAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) => inner.QueryBillingAsync(from, to, cancellationToken);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
        _http.Dispose();
        _out.Dispose();
        _error.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
