using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Burnrate.Tests.Storage;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Cli;

/// <summary>
/// <c>burnrate serve</c> in-process with <c>storage.store: clickhouse</c> on a real two-shard ClickHouse cluster: events in
/// over HTTP, the same exact cost out of the API as with the embedded store (<see cref="EventsEndToEndTests"/>).
/// </summary>
public sealed partial class ServeOnClickHouseTests(ShardedClickHouse servers) : IClassFixture<ShardedClickHouse>, IDisposable
{
    private static readonly DateTimeOffset s_start = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-serve-ch-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();
    private readonly FakeTimeProvider _time = new(s_start);
    private readonly HttpClient _http = new();

    [Fact]
    public async Task Serve_on_clickhouse_rates_events_into_the_sharded_ledger_to_the_nano_dollar()
    {
        var ct = TestContext.Current.CancellationToken;
        var peer = await servers.GetAsync(ct);
        var options = peer.NewOptions();
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, $"""
            storage:
              store: clickhouse
              clickhouse:
                urls: [{string.Join(", ", options.Urls)}]
                database: {options.Database}
                cluster: {options.Cluster}
            """, ct);
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
        try
        {
            var run = BurnrateCli.InvokeAsync(services, ["serve", "--config", config, "--listen", "127.0.0.1:0", "--data", _data], stop.Token);
            var url = await WaitForUrlAsync(run, _out);
            Assert.Contains($"database {options.Database}", _out.ToString(), StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(_data, "burnrate.duckdb")), "the embedded store was opened too");

            var launch = new StringBuilder("""
                [{"type": "node_started", "time": "2025-06-15T12:00:00Z",
                  "node": {"id": "i-0p4d", "provider": "aws", "region": "us-east-1", "zone": "us-east-1a", "instance_type": "p4d.24xlarge",
                           "capacity": "on-demand", "gpus": 8, "gpu_model": "A100", "cluster": "sky-train"}},
                 {"type": "workload_started", "time": "2025-06-15T12:00:00Z",
                  "workload": {"id": "skypilot:42", "orchestrator": "skypilot", "name": "train-llama", "user": "ana", "team": "research"}}
                """);
            for (var gpu = 0; gpu < 8; gpu++)
                launch.Append(CultureInfo.InvariantCulture, $$""", {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "skypilot:42", "node_id": "i-0p4d", "gpu_index": {{gpu}}}""");
            launch.Append(']');
            using var posted = await _http.PostAsync(url + "/api/v1/events", new StringContent(launch.ToString(), Encoding.UTF8, "application/json"), ct);
            Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);

            // Minutes 12:00–12:02 close at 12:03:30: the whole p4d.24xlarge for 3 minutes, booked per line with carried
            // remainders: $1.097882096 (worked out in EventsEndToEndTests).
            _time.SetUtcNow(s_start.AddSeconds(3 * 60 + 30));
            string? cost = null;
            for (var i = 0; i < 600 && cost is null; i++)
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

            // An API-only server on the same ledger answers the same, and receives nothing.
            var apiOut = new StringWriter();
            using var stopApi = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var apiRun = BurnrateCli.InvokeAsync(new CliServices
            {
                OpenStore = real.OpenStore,
                LoadPriceBook = real.LoadPriceBook,
                Out = TextWriter.Synchronized(apiOut),
                Error = TextWriter.Synchronized(_error),
                Time = _time,
            }, ["serve", "--role", "api", "--config", config, "--listen", "127.0.0.1:0", "--data", Path.Combine(_data, "api")], stopApi.Token);
            var apiUrl = await WaitForUrlAsync(apiRun, apiOut);
            Assert.Contains("role api", apiOut.ToString(), StringComparison.Ordinal);
            Assert.Equal("1.097882096", await WorkloadCostAsync(apiUrl, "skypilot:42"));
            using var refused = await _http.PostAsync(apiUrl + "/api/v1/events", new StringContent(launch.ToString(), Encoding.UTF8, "application/json"), ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.False(Directory.Exists(Path.Combine(_data, "api", "wal")), "an API-only server opened a write-ahead log");
            await stopApi.CancelAsync();
            Assert.Equal(0, await apiRun);

            await stop.CancelAsync();
            Assert.Equal(0, await run);
        }
        finally
        {
            await peer.DropAsync(options.Database);
        }
    }

    [Fact]
    public async Task Two_ingest_servers_and_a_ruler_alert_once_for_a_workload_that_is_above_the_threshold_only_in_total()
    {
        var ct = TestContext.Current.CancellationToken;
        var peer = await servers.GetAsync(ct);
        var options = peer.NewOptions();
        await using var hook = await Support.HookReceiver.StartAsync(ct);
        var config = Path.Combine(_data, "burnrate.yaml");
        // job:w holds 4 GPUs of each p4d.24xlarge: about $10.98/h on each node, $21.96/h in all.
        await File.WriteAllTextAsync(config, $"""
            storage:
              store: clickhouse
              clickhouse:
                urls: [{string.Join(", ", options.Urls)}]
                database: {options.Database}
                cluster: {options.Cluster}
            rules:
              - name: expensive
                kind: spend_rate
                above_usd_per_hour: 20
            notify:
              - webhook: {hook.Url}/hook
            ruler:
              interval: 5s
              settle: 5m
            """, ct);
        var real = Composition.CreateServices();
        CliServices Services(StringWriter output) => new()
        {
            OpenStore = real.OpenStore,
            LoadPriceBook = real.LoadPriceBook,
            Out = TextWriter.Synchronized(output),
            Error = TextWriter.Synchronized(_error),
            Time = _time,
        };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var outputs = new[] { new StringWriter(), new StringWriter(), new StringWriter() };
        try
        {
            var east = BurnrateCli.InvokeAsync(Services(outputs[0]), ["serve", "--role", "ingest", "--config", config, "--listen", "127.0.0.1:0", "--data", Path.Combine(_data, "east")], stop.Token);
            var west = BurnrateCli.InvokeAsync(Services(outputs[1]), ["serve", "--role", "ingest", "--config", config, "--listen", "127.0.0.1:0", "--data", Path.Combine(_data, "west")], stop.Token);
            var ruler = BurnrateCli.InvokeAsync(Services(outputs[2]), ["serve", "--role", "ruler", "--config", config, "--listen", "127.0.0.1:0", "--data", Path.Combine(_data, "ruler")], stop.Token);
            var eastUrl = await WaitForUrlAsync(east, outputs[0]);
            var westUrl = await WaitForUrlAsync(west, outputs[1]);
            var rulerUrl = await WaitForUrlAsync(ruler, outputs[2]);
            Assert.Contains("role ingest: no alert evaluation or delivery", outputs[0].ToString(), StringComparison.Ordinal);
            Assert.Contains("role ruler: 1 rules", outputs[2].ToString(), StringComparison.Ordinal);

            foreach (var (url, node) in new[] { (eastUrl, "i-east"), (westUrl, "i-west") })
            {
                var launch = new StringBuilder($$"""
                    [{"type": "node_started", "time": "2025-06-15T12:00:00Z",
                      "node": {"id": "{{node}}", "provider": "aws", "region": "us-east-1", "zone": "us-east-1a", "instance_type": "p4d.24xlarge",
                               "capacity": "on-demand", "gpus": 8, "gpu_model": "A100"} },
                     {"type": "workload_started", "time": "2025-06-15T12:00:00Z", "workload": {"id": "job:w", "name": "w", "team": "research"} }
                    """);
                for (var gpu = 0; gpu < 4; gpu++)
                    launch.Append(CultureInfo.InvariantCulture, $$""", {"type": "gpu_allocated", "time": "2025-06-15T12:00:00Z", "workload_id": "job:w", "node_id": "{{node}}", "gpu_index": {{gpu}}}""");
                launch.Append(']');
                using var posted = await _http.PostAsync(url + "/api/v1/events", new StringContent(launch.ToString(), Encoding.UTF8, "application/json"), ct);
                Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
            }

            // 12:04: both ingesters rate 12:00–12:02 into the shared ledger; the ruler (settle 5m) waits for them.
            _time.SetUtcNow(s_start.AddMinutes(4));
            for (var i = 0; i < 600 && await ResourcesOfAsync(eastUrl, "job:w") < 2; i++)
                await Task.Delay(25, ct);
            Assert.Equal(2, await ResourcesOfAsync(eastUrl, "job:w"));
            Assert.True(hook.Requests.IsEmpty, "an ingest server sent an alert");

            // 12:08: 12:00–12:02 have settled; the ruler reads them and fires once, for the whole workload.
            _time.SetUtcNow(s_start.AddMinutes(8));
            for (var i = 0; i < 600 && hook.Requests.IsEmpty; i++)
                await Task.Delay(25, ct);
            var (_, body) = Assert.Single(hook.Requests);
            var alert = Assert.Single(body.GetProperty("alerts").EnumerateArray());
            Assert.Equal("firing", alert.GetProperty("status").GetString());
            Assert.Equal("job:w", alert.GetProperty("labels").GetProperty("workload").GetString());
            Assert.Equal("21.96", alert.GetProperty("annotations").GetProperty("usd_per_hour").GetString());

            var rulerMetrics = await _http.GetStringAsync(rulerUrl + "/metrics", ct);
            Assert.Contains("burnrate_role{role=\"ruler\"} 1\n", rulerMetrics, StringComparison.Ordinal);
            Assert.Contains("burnrate_alert_evaluation_enabled 1\n", rulerMetrics, StringComparison.Ordinal);
            Assert.Contains("burnrate_ruler_evaluated_through_timestamp_seconds " + s_start.AddMinutes(3).ToUnixTimeSeconds() + "\n", rulerMetrics, StringComparison.Ordinal);
            Assert.Contains("\"workload\": \"job:w\"", await _http.GetStringAsync(rulerUrl + "/api/v1/alerts", ct), StringComparison.Ordinal);
            var ingestMetrics = await _http.GetStringAsync(westUrl + "/metrics", ct);
            Assert.Contains("burnrate_role{role=\"ingest\"} 1\n", ingestMetrics, StringComparison.Ordinal);
            Assert.Contains("burnrate_alert_evaluation_enabled 0\n", ingestMetrics, StringComparison.Ordinal);
            Assert.Contains("\"rules\": 0", await _http.GetStringAsync(westUrl + "/api/v1/alerts", ct), StringComparison.Ordinal);
            using var refused = await _http.PostAsync(rulerUrl + "/api/v1/events", new StringContent("[]", Encoding.UTF8, "application/json"), ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);

            await stop.CancelAsync();
            Assert.Equal(0, await east);
            Assert.Equal(0, await west);
            Assert.Equal(0, await ruler);
            Assert.Single(hook.Requests);
        }
        finally
        {
            await peer.DropAsync(options.Database);
        }
    }

    /// <summary>How many resources the ledger has costs of <paramref name="workload"/> on.</summary>
    private async Task<int> ResourcesOfAsync(string url, string workload)
    {
        var costs = JsonDocument.Parse(await _http.GetStringAsync(url + "/api/v1/costs?by=workload,resource&from=2025-06-15T12:00:00Z&to=2025-06-15T13:00:00Z", TestContext.Current.CancellationToken)).RootElement;
        return costs.GetProperty("rows").EnumerateArray().Count(r => r.GetProperty("keys").GetProperty("workload").GetString() == workload);
    }

    private async Task<string> WaitForUrlAsync(Task<int> run, StringWriter output)
    {
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(output.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(url is not null, "serve never said where it listens: " + output + _error);
        return url;
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

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_data, recursive: true);
    }
}
