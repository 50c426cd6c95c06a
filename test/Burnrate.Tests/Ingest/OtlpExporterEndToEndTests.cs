using System.Diagnostics.Metrics;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// <c>POST /v1/metrics</c> fed by real OTLP senders: the OpenTelemetry .NET SDK's OTLP exporter (binary protobuf) and
/// hand-written OTLP JSON, each describing one GPU node the way a collector forwards kube-state-metrics and DCGM
/// exporter data, through the real ingest pipeline, write-ahead log, mapper, rating engine and DuckDB ledger to
/// <c>GET /api/v1/burn</c> at the built-in catalog price.
/// </summary>
public sealed class OtlpExporterEndToEndTests : IAsyncDisposable
{
    private static readonly GpuNode s_p4d = new("ip-10-0-1-7.ec2.internal", "p4d.24xlarge", "us-east-1", "us-east-1a", "NVIDIA-A100-SXM4-40GB", 8);
    private static readonly GpuNode s_p5 = new("ip-10-0-2-9.ec2.internal", "p5.48xlarge", "us-east-1", "us-east-1b", "NVIDIA-H100-80GB-HBM3", 8);

    private static readonly Lazy<PriceBook> s_catalog = new(() => PricingSetup.Load(new BurnrateConfig()).Book);

    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-otlp-").FullName;
    private readonly HttpClient _http = new();
    private LiveServer? _server;

    [Fact]
    public async Task The_opentelemetry_sdk_otlp_exporter_sends_protobuf_that_is_priced_at_the_catalog_price()
    {
        var ct = TestContext.Current.CancellationToken;
        // The SDK stamps points with the real clock, so the server reads the real clock too; the burn below is asked
        // moments after the export, well within rating.staleness (5 min), so the node is still running.
        var server = await StartAsync(TimeProvider.System);
        using var errors = new SdkErrorListener();

        using var meter = new Meter("burnrate.tests.collector");
        meter.CreateObservableGauge("kube_node_labels", () => new[] { new Measurement<long>(1, s_p4d.NodeLabels()) });
        meter.CreateObservableGauge("kube_node_status_capacity", () => new[] { new Measurement<long>(s_p4d.Gpus, s_p4d.Capacity()) });
        meter.CreateObservableGauge("DCGM_FI_DEV_GPU_UTIL", () => Enumerable.Range(0, s_p4d.Gpus).Select(g => new Measurement<double>(40 + g, s_p4d.Gpu(g))));
        using var meterProvider = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.AddService("otel-collector", serviceInstanceId: "collector-0"))
            .AddMeter(meter.Name)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                exporter.TimeoutMilliseconds = 120_000;
                exporter.Endpoint = new Uri(server.Url + "/v1/metrics"); // used as is: HttpProtobuf appends no path to a configured endpoint
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = int.MaxValue; // only ForceFlush exports
            })
            .Build();

        // ForceFlush collects and exports synchronously; true means the exporter got a 2xx back.
        Assert.True(meterProvider.ForceFlush(120_000), "the OTLP exporter's export failed: " + errors.Text);
        await server.Ingest.DrainAsync(ct);

        Assert.True(errors.Count == 0, "the OpenTelemetry SDK reported errors: " + errors.Text);
        var metrics = await _http.GetStringAsync(server.Url + "/metrics", ct);
        Assert.Equal(1 + 1 + s_p4d.Gpus, SelfMetric(metrics, "burnrate_ingest_samples_total", """receiver="otlp",encoding="protobuf" """.Trim()));
        Assert.Equal(1, SelfMetric(metrics, "burnrate_ingest_requests_total", """receiver="otlp",encoding="protobuf" """.Trim()));
        Assert.Equal(0, SelfMetric(metrics, "burnrate_ingest_rejected_total", """receiver="otlp",encoding="protobuf",reason="invalid" """.Trim()));

        var burn = await BurnAsync(server);
        var price = CatalogPrice(s_p4d, burn.At);
        Assert.Equal(price, burn.Total);
        Assert.Equal(price, burn.Clouds["aws"]);
        var idle = Assert.Single(burn.Workloads);
        Assert.Equal(("", "aws", price), (idle.Id, idle.Clouds, idle.UsdPerHour)); // no pod requested its GPUs: all of it is idle
    }

    [Fact]
    public async Task Hand_written_otlp_json_is_priced_like_protobuf_partial_success_keeps_the_good_points_and_bad_requests_are_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        var now = new DateTimeOffset(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(now);
        var server = await StartAsync(time);

        var full = await PostOtlpAsync(server, OtlpJson(s_p4d, now), "application/json");
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        Assert.Equal("application/json", full.Content.Headers.ContentType?.MediaType);
        Assert.Empty(JsonDocument.Parse(await full.Content.ReadAsStringAsync(ct)).RootElement.EnumerateObject()); // {}: full success
        await server.Ingest.DrainAsync(ct);
        time.Advance(TimeSpan.FromSeconds(10));

        var burn = await BurnAsync(server);
        var p4dPrice = CatalogPrice(s_p4d, burn.At);
        Assert.Equal(p4dPrice, burn.Total);
        Assert.Equal(p4dPrice, burn.Clouds["aws"]);

        // A second node whose request also holds one DCGM point without a value: that point is rejected, the rest kept.
        var withBadPoint = OtlpJson(s_p5, time.GetUtcNow(), badGpuPoint: true);
        var partial = await PostOtlpAsync(server, withBadPoint, "application/json");
        Assert.Equal(HttpStatusCode.OK, partial.StatusCode);
        var partialSuccess = JsonDocument.Parse(await partial.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("partialSuccess");
        Assert.Equal("1", partialSuccess.GetProperty("rejectedDataPoints").GetString()); // int64 as a string
        Assert.Contains("a data point of \"DCGM_FI_DEV_GPU_UTIL\" has no value", partialSuccess.GetProperty("errorMessage").GetString(), StringComparison.Ordinal);
        await server.Ingest.DrainAsync(ct);
        time.Advance(TimeSpan.FromSeconds(10));

        burn = await BurnAsync(server);
        var p5Price = CatalogPrice(s_p5, burn.At);
        Assert.Equal(p4dPrice + p5Price, burn.Total);
        Assert.Equal(p4dPrice + p5Price, burn.Clouds["aws"]);

        // Refused whole, nothing kept, and the 400 says where: truncated JSON, a value of the wrong type; then a wrong
        // Content-Type. A third node in each would show in the burn had anything of them been kept.
        var p3 = s_p5 with { Name = "ip-10-0-3-3.ec2.internal" };
        var truncated = OtlpJson(p3, time.GetUtcNow())[..200];
        var detail = await AssertProblemAsync(await PostOtlpAsync(server, truncated, "application/json"), HttpStatusCode.BadRequest, "json: not valid JSON at line ");
        Assert.Matches(@"^json: not valid JSON at line \d+, column \d+: \S", detail);
        var wrongType = OtlpJson(p3, time.GetUtcNow()).Replace("\"asInt\": \"8\"", "\"asInt\": \"eight\"", StringComparison.Ordinal);
        await AssertProblemAsync(await PostOtlpAsync(server, wrongType, "application/json"), HttpStatusCode.BadRequest,
            "at resourceMetrics[0].scopeMetrics[0].metrics[1].gauge.dataPoints[0].asInt (metric \"kube_node_status_capacity\"): ");
        await AssertProblemAsync(await PostOtlpAsync(server, OtlpJson(p3, time.GetUtcNow()), "text/plain"), HttpStatusCode.UnsupportedMediaType, "application/x-protobuf or application/json");

        var metrics = await _http.GetStringAsync(server.Url + "/metrics", ct);
        Assert.Equal(2, SelfMetric(metrics, "burnrate_ingest_requests_total", """receiver="otlp",encoding="json" """.Trim()));
        Assert.Equal(2, SelfMetric(metrics, "burnrate_ingest_rejected_total", """receiver="otlp",encoding="json",reason="invalid" """.Trim()));
        Assert.Equal(0, SelfMetric(metrics, "burnrate_ingest_apply_failures_total", null));

        // Still serving, still pricing the same two nodes; the next export, gzip-compressed, is taken.
        Assert.Equal("ok\n", await _http.GetStringAsync(server.Url + "/healthz", ct));
        using var gzipped = new ByteArrayContent(Gzip(OtlpJson(s_p4d, time.GetUtcNow())));
        gzipped.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        gzipped.Headers.ContentEncoding.Add("gzip");
        var again = await _http.PostAsync(server.Url + "/v1/metrics", gzipped, ct);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        await server.Ingest.DrainAsync(ct);
        burn = await BurnAsync(server);
        Assert.Equal(p4dPrice + p5Price, burn.Total);
        Assert.Equal(3, SelfMetric(await _http.GetStringAsync(server.Url + "/metrics", ct), "burnrate_ingest_requests_total", """receiver="otlp",encoding="json" """.Trim()));
    }

    // ---- the node, as kube-state-metrics and the DCGM exporter describe it -------------------------------------

    private sealed record GpuNode(string Name, string InstanceType, string Region, string Zone, string GpuProduct, int Gpus)
    {
        public KeyValuePair<string, object?>[] NodeLabels() =>
        [
            new("node", Name),
            new("label_node_kubernetes_io_instance_type", InstanceType),
            new("label_topology_kubernetes_io_region", Region),
            new("label_topology_kubernetes_io_zone", Zone),
            new("label_eks_amazonaws_com_capacity_type", "ON_DEMAND"),
            new("label_nvidia_com_gpu_product", GpuProduct),
            new("label_team", "research"),
        ];

        public KeyValuePair<string, object?>[] Capacity() =>
        [
            new("node", Name),
            new("resource", "nvidia_com_gpu"),
            new("unit", "integer"),
        ];

        public KeyValuePair<string, object?>[] Gpu(int index) =>
        [
            new("gpu", index.ToString(CultureInfo.InvariantCulture)),
            new("UUID", Uuid(index)),
            new("Hostname", Name),
            new("modelName", GpuProduct.Replace('-', ' ')),
            new("device", "nvidia" + index.ToString(CultureInfo.InvariantCulture)),
        ];

        public string Uuid(int index) => $"GPU-{InstanceType.Replace('.', '-')}-{index:D4}";
    }

    /// <summary>
    /// The node as OTLP JSON written by hand per the OTLP/JSON mapping: lowerCamelCase keys, int64 values and
    /// timestamps as decimal strings, enums as numbers, exemplar ids in hex.
    /// </summary>
    private static string OtlpJson(GpuNode node, DateTimeOffset at, bool badGpuPoint = false)
    {
        var nanos = (at.ToUnixTimeMilliseconds() * 1_000_000).ToString(CultureInfo.InvariantCulture);
        var gpuPoints = new List<string>();
        for (var g = 0; g < node.Gpus; g++)
        {
            var exemplar = g == 0
                ? $$""", "exemplars": [{"timeUnixNano": "{{nanos}}", "asDouble": 40, "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]"""
                : "";
            gpuPoints.Add($$"""{"timeUnixNano": "{{nanos}}", "asDouble": {{40 + g}}, "attributes": {{Attributes(node.Gpu(g))}}{{exemplar}} }""");
        }
        if (badGpuPoint)
            gpuPoints.Add($$"""{"timeUnixNano": "{{nanos}}", "attributes": {{Attributes(node.Gpu(node.Gpus))}} }"""); // neither asDouble nor asInt
        return $$$"""
            {"resourceMetrics": [{
              "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "otel-collector"}},
                {"key": "service.instance.id", "value": {"stringValue": "collector-0"}}]},
              "scopeMetrics": [{
                "scope": {"name": "burnrate.tests.collector"},
                "metrics": [
                  {"name": "kube_node_labels", "gauge": {"dataPoints": [
                    {"timeUnixNano": "{{{nanos}}}", "asInt": "1", "attributes": {{{Attributes(node.NodeLabels())}}}}]}},
                  {"name": "kube_node_status_capacity", "gauge": {"dataPoints": [
                    {"timeUnixNano": "{{{nanos}}}", "asInt": "{{{node.Gpus}}}", "attributes": {{{Attributes(node.Capacity())}}}}]}},
                  {"name": "DCGM_FI_DEV_GPU_UTIL", "unit": "%", "gauge": {"dataPoints": [
                    {{{string.Join(",\n", gpuPoints)}}}]}}]}]}]}
            """;
    }

    private static string Attributes(KeyValuePair<string, object?>[] attributes) =>
        "[" + string.Join(", ", attributes.Select(a => $$"""{"key": "{{a.Key}}", "value": {"stringValue": "{{a.Value}}"} }""")) + "]";

    private static decimal CatalogPrice(GpuNode node, DateTimeOffset at)
    {
        var price = s_catalog.Value.Find("aws", node.Region, node.Zone, node.InstanceType, CapacityType.OnDemand, at);
        Assert.True(price is not null, $"the built-in catalog has no on-demand price for {node.InstanceType} in {node.Region}");
        Assert.StartsWith("builtin:", price.Source, StringComparison.Ordinal);
        return price.PricePerHour;
    }

    // ---- the server ------------------------------------------------------------------------------------------

    private async Task<LiveServer> StartAsync(TimeProvider time)
    {
        _server = await LiveServer.StartAsync(_data, time);
        return _server;
    }

    private Task<HttpResponseMessage> PostOtlpAsync(LiveServer server, string body, string contentType) =>
        _http.PostAsync(server.Url + "/v1/metrics", new StringContent(body, Encoding.UTF8, contentType), TestContext.Current.CancellationToken);

    private sealed record Burn(DateTimeOffset At, decimal Total, IReadOnlyDictionary<string, decimal> Clouds, IReadOnlyList<WorkloadBurn> Workloads);

    private sealed record WorkloadBurn(string Id, string Clouds, decimal UsdPerHour);

    private async Task<Burn> BurnAsync(LiveServer server)
    {
        var root = JsonDocument.Parse(await _http.GetStringAsync(server.Url + "/api/v1/burn", TestContext.Current.CancellationToken)).RootElement;
        return new Burn(
            DateTimeOffset.Parse(root.GetProperty("at").GetString()!, CultureInfo.InvariantCulture),
            Dollars(root.GetProperty("total_usd_per_hour")),
            root.GetProperty("clouds").EnumerateArray().ToDictionary(c => c.GetProperty("cloud").GetString()!, c => Dollars(c.GetProperty("usd_per_hour"))),
            [.. root.GetProperty("workloads").EnumerateArray().Select(w => new WorkloadBurn(
                w.GetProperty("workload").GetString()!, w.GetProperty("clouds").GetString()!, Dollars(w.GetProperty("usd_per_hour"))))]);
    }

    private static decimal Dollars(JsonElement exact) => decimal.Parse(exact.GetString()!, NumberStyles.Number, CultureInfo.InvariantCulture);

    private static long SelfMetric(string page, string name, string? labels)
    {
        var series = labels is null ? name : name + "{" + labels + "}";
        var line = page.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {series} in /metrics:\n{page}");
        return long.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static byte[] Gzip(string text)
    {
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest))
            gzip.Write(Encoding.UTF8.GetBytes(text));
        return compressed.ToArray();
    }

    private static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string detail)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        var text = problem.GetProperty("detail").GetString()!;
        Assert.Contains(detail, text, StringComparison.Ordinal);
        return text;
    }

    /// <summary>Collects what the OpenTelemetry SDK and its OTLP exporter report at error level (export failures, rejected data).</summary>
    private sealed class SdkErrorListener : EventListener
    {
        private readonly List<string> _errors = [];

        public int Count
        {
            get
            {
                lock (_errors)
                    return _errors.Count;
            }
        }

        public string Text
        {
            get
            {
                lock (_errors)
                    return string.Join("\n", _errors);
            }
        }

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name.StartsWith("OpenTelemetry", StringComparison.Ordinal))
                EnableEvents(eventSource, EventLevel.Error);
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (eventData.Level > EventLevel.Error)
                return;
            var text = eventData.Message is { } format && eventData.Payload is { } payload
                ? string.Format(CultureInfo.InvariantCulture, format, [.. payload])
                : eventData.EventName ?? "";
            lock (_errors)
                _errors.Add($"{eventData.EventSource.Name}: {text}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _http.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
