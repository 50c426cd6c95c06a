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
