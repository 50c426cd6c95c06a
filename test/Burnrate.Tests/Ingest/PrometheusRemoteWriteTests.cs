using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Burnrate.Cli;
using Burnrate.Configuration;
using Burnrate.Pricing;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// The real thing end to end: Debian's Prometheus scrapes exposition pages of DCGM exporter, kube-state-metrics,
/// node-exporter and vLLM (written from the reference formats) and remote-writes to <c>burnrate serve</c>, as a user
/// would set it up with <c>deploy/prometheus-remote-write.yml</c>. The burn rate shows the priced nodes and their pods
/// within seconds, and once a minute closes the ledger holds it at exactly the catalog price.
/// </summary>
public sealed partial class PrometheusRemoteWriteTests : IAsyncDisposable
{
    private const string TrainNode = "ip-10-0-2-41.ec2.internal";
    private const string ServeNode = "ip-10-0-1-23.ec2.internal";

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-prom-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();
    private readonly StringBuilder _prometheusLog = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private WebApplication? _exporters;
    private System.Diagnostics.Process? _prometheus;
    private int _scrapes;

    [Fact]
    public async Task Prometheus_scraping_the_exporters_and_remote_writing_to_serve_yields_priced_nodes_pods_and_minutes()
    {
        var prometheusBinary = RealPeer.Require("prometheus", "prometheus");
        var ct = TestContext.Current.CancellationToken;
        var exporters = await StartExportersAsync(ct);

        var config = Path.Combine(_dir, "burnrate.yaml");
        await File.WriteAllTextAsync(config, "rating:\n  grace: 3s\n", ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var services = Composition.CreateServices();
        var serve = BurnrateCli.InvokeAsync(
            new CliServices { OpenStore = services.OpenStore, LoadPriceBook = services.LoadPriceBook, Out = TextWriter.Synchronized(_out), Error = TextWriter.Synchronized(_error) },
            ["serve", "--listen", "127.0.0.1:0", "--data", Path.Combine(_dir, "data"), "--config", config], stop.Token);
        var burnrate = await WaitForUrlAsync(serve, ct);

        var promPort = RealPeer.FreePort();
        var promConfig = Path.Combine(_dir, "prometheus.yml");
        await File.WriteAllTextAsync(promConfig, PrometheusConfig(exporters, burnrate), ct);
        _prometheus = RealPeer.Start(prometheusBinary,
            [$"--config.file={promConfig}", $"--storage.tsdb.path={Path.Combine(_dir, "tsdb")}", $"--web.listen-address=127.0.0.1:{promPort}", "--log.level=warn"],
            _prometheusLog);

        // Within seconds: both nodes burn at their catalog prices and both pods are workloads with their teams.
        var (book, _) = PricingSetup.Load(new BurnrateConfig());
        var now = DateTimeOffset.UtcNow;
        var p4dSpot = book.Find("aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.Spot, now)!.PricePerHour;
        var p5OnDemand = book.Find("aws", "us-east-1", "us-east-1b", "p5.48xlarge", CapacityType.OnDemand, now)!.PricePerHour;
        var expectedRate = p4dSpot + p5OnDemand;

        JsonElement burn = default;
        await WaitUntilAsync(async () =>
        {
            burn = JsonDocument.Parse(await _http.GetStringAsync(burnrate + "/api/v1/burn", ct)).RootElement;
            return decimal.Parse(burn.GetProperty("total_usd_per_hour").GetString()!, CultureInfo.InvariantCulture) == expectedRate
                && Workload(burn, "k8s:inference/llama-serve-7d9f8c6b5-x2kqp") is not null
                && Workload(burn, "k8s:ml-research/train-resnet-0") is not null;
        }, TimeSpan.FromSeconds(90), () => "burn never showed both nodes and both pods: " + burn + Logs(), ct);

        var serving = Workload(burn, "k8s:inference/llama-serve-7d9f8c6b5-x2kqp")!.Value;
        Assert.Equal("search", serving.GetProperty("team").GetString());
        Assert.True(Rate(serving) > 0, "the vLLM pod holds one GPU of the p4d: " + serving);
        var training = Workload(burn, "k8s:ml-research/train-resnet-0")!.Value;
        Assert.Equal("vision", training.GetProperty("team").GetString());
        Assert.True(Rate(training) > 0, "the MIG 3g.40gb pod holds a slice of a p5 GPU: " + training);

        // The ledger: the first whole minute both nodes lived through costs exactly price/60 for each (±1 nano-dollar per
        // line of carried remainder), split between the pods and idle.
        var firstSeen = DateTimeOffset.UtcNow;
        var minute = new DateTimeOffset(firstSeen.Ticks - firstSeen.Ticks % TimeSpan.TicksPerMinute, TimeSpan.Zero).AddMinutes(1);
        JsonElement nodes = default;
        await WaitUntilAsync(async () =>
        {
            nodes = await CostsAsync(burnrate, "resource", minute, ct);
            return nodes.GetProperty("rows").GetArrayLength() >= 2;
        }, TimeSpan.FromSeconds(150), () => $"the minute {minute:O} never reached the ledger: {nodes}{Logs()}", ct);

        AssertCost(nodes, "resource", ServeNode, p4dSpot / 60m);
        AssertCost(nodes, "resource", TrainNode, p5OnDemand / 60m);
        var egress = nodes.GetProperty("rows").EnumerateArray()
            .Where(r => r.GetProperty("keys").GetProperty("resource").GetString()!.StartsWith(ServeNode + ":egress:", StringComparison.Ordinal))
            .Sum(r => decimal.Parse(r.GetProperty("cost_usd").GetString()!, CultureInfo.InvariantCulture));
        Assert.True(egress > 0, "node-exporter's transmitted bytes are priced as egress of the node: " + nodes);
        var teams = await CostsAsync(burnrate, "team", minute, ct);
        Assert.True(Cost(teams, "team", "search") > 0, "the vLLM pod's GPU is charged to team search: " + teams);
        Assert.True(Cost(teams, "team", "vision") > 0, "the MIG slice is charged to team vision: " + teams);

        // Self-metrics: Prometheus's samples arrived by remote write and the mapper used them.
        var metrics = await _http.GetStringAsync(burnrate + "/metrics", ct);
        Assert.Matches(@"burnrate_ingest_samples_total\{receiver=""remote_write""\} [1-9]", metrics);
        Assert.Matches(@"burnrate_mapper_samples_used_total [1-9]", metrics);

        await stop.CancelAsync();
        Assert.Equal(0, await serve);
    }

    private async Task<string> StartExportersAsync(CancellationToken ct)
    {
        var fixtures = Path.Combine(AppContext.BaseDirectory, "Ingest", "Fixtures");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        foreach (var (path, file) in new[] { ("/dcgm", "dcgm.prom"), ("/ksm", "kube-state-metrics.prom"), ("/node", "node-exporter.prom"), ("/vllm", "vllm.prom") })
        {
            var text = await File.ReadAllTextAsync(Path.Combine(fixtures, file), ct);
            app.MapGet(path, () =>
            {
                // Counters move between scrapes as on a live host: tokens generated, bytes sent.
                var n = Interlocked.Increment(ref _scrapes);
                var page = TokensLine().Replace(text, m => m.Groups[1].Value + (27453 + 1000 * n).ToString(CultureInfo.InvariantCulture));
                page = TransmitLine().Replace(page, m => m.Groups[1].Value + (873141902217L + 100_000_000L * n).ToString(CultureInfo.InvariantCulture));
                return Results.Text(page, "text/plain; version=0.0.4; charset=utf-8");
            });
        }
        await app.StartAsync(ct);
        _exporters = app;
        return app.Urls.First();
    }

    /// <summary>
    /// Scrape every second; node-exporter and vLLM carry the instance addresses they would have in a cluster (the node's
    /// internal IP, the pod's IP), which is how the mapper finds their node and pod.
    /// </summary>
    private static string PrometheusConfig(string exporters, string burnrate)
    {
        var target = new Uri(exporters).Authority;
        return $$"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: dcgm-exporter
                metrics_path: /dcgm
                static_configs: [{targets: ["{{target}}"]}]
              - job_name: kube-state-metrics
                honor_labels: true
                metrics_path: /ksm
                static_configs: [{targets: ["{{target}}"]}]
              - job_name: node-exporter
                metrics_path: /node
                static_configs: [{targets: ["{{target}}"]}]
                relabel_configs: [{target_label: instance, replacement: "10.0.1.23:9100"}]
              - job_name: vllm
                metrics_path: /vllm
                static_configs: [{targets: ["{{target}}"]}]
                relabel_configs: [{target_label: instance, replacement: "10.244.1.17:8000"}]
            remote_write:
              - url: {{burnrate}}/api/v1/write
                queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
            """;
    }

    private async Task<JsonElement> CostsAsync(string burnrate, string by, DateTimeOffset minute, CancellationToken ct)
    {
        var url = $"{burnrate}/api/v1/costs?by={by}&from={minute:yyyy-MM-ddTHH:mm:ssZ}&to={minute.AddMinutes(1):yyyy-MM-ddTHH:mm:ssZ}";
        return JsonDocument.Parse(await _http.GetStringAsync(url, ct)).RootElement;
    }

    private static void AssertCost(JsonElement report, string dimension, string key, decimal expected)
    {
        var actual = Cost(report, dimension, key);
        // Each ledger line carries its sub-nano-dollar remainder across minutes, so a minute may differ by a nano-dollar per line.
        Assert.True(Math.Abs(actual - expected) <= 0.00000005m, $"{dimension} {key}: expected {expected} for the minute, got {actual}: {report}");
    }

    private static decimal Cost(JsonElement report, string dimension, string key)
    {
        foreach (var row in report.GetProperty("rows").EnumerateArray())
        {
            if (row.GetProperty("keys").GetProperty(dimension).GetString() == key)
                return decimal.Parse(row.GetProperty("cost_usd").GetString()!, CultureInfo.InvariantCulture);
        }
        return 0;
    }

    private static JsonElement? Workload(JsonElement burn, string id)
    {
        foreach (var w in burn.GetProperty("workloads").EnumerateArray())
        {
            if (w.GetProperty("workload").GetString() == id)
                return w;
        }
        return null;
    }

    private static decimal Rate(JsonElement workload) =>
        decimal.Parse(workload.GetProperty("usd_per_hour").GetString()!, CultureInfo.InvariantCulture);

    private string Logs()
    {
        lock (_prometheusLog)
            return $"\n--- burnrate stdout\n{_out}\n--- burnrate stderr\n{_error}\n--- prometheus\n{_prometheusLog}";
    }

    private async Task<string> WaitForUrlAsync(Task<int> serve, CancellationToken ct)
    {
        for (var i = 0; i < 600 && !serve.IsCompleted; i++)
        {
            if (UrlPattern().Match(_out.ToString()) is { Success: true } m)
                return m.Value;
            await Task.Delay(50, ct);
        }
        throw new InvalidOperationException("serve never said where it listens: " + _out + _error);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan limit, Func<string> failure, CancellationToken ct)
    {
        var until = DateTime.UtcNow + limit;
        while (true)
        {
            try
            {
                if (await condition())
                    return;
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > until)
                Assert.Fail(failure());
            await Task.Delay(500, ct);
        }
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

    [GeneratedRegex(@"^(vllm:generation_tokens_total\{[^}]*\} )[0-9.e+]+", RegexOptions.Multiline)]
    private static partial Regex TokensLine();

    [GeneratedRegex(@"^(node_network_transmit_bytes_total\{device=""eth0""\} )[0-9.e+]+", RegexOptions.Multiline)]
    private static partial Regex TransmitLine();

    public async ValueTask DisposeAsync()
    {
        RealPeer.Stop(_prometheus);
        if (_exporters is not null)
            await _exporters.DisposeAsync();
        _http.Dispose();
        _out.Dispose();
        _error.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
