using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry.Mapping;
using Burnrate.Tests.Protocols;
using Burnrate.Tests.Support;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using V1 = Burnrate.Protocols.RemoteWrite.V1;

namespace Burnrate.Tests.Ingest;

/// <summary>
/// <c>POST /api/v1/write</c> in the real server, in-process, with the real ingest pipeline, write-ahead log, mapper, rating
/// engine and DuckDB ledger: what Prometheus sends (1.0 and 2.0) becomes a node burning at its catalog price, and every
/// class of bad input gets its status and a message that says what is wrong and where, without harming what was taken.
/// </summary>
public sealed class RemoteWriteReceiverTests : IAsyncDisposable
{
    private const string Node = "ip-10-0-1-7.ec2.internal";
    private const int BodyLimit = 64 * 1024;
    private static readonly DateTimeOffset s_t0 = new(2026, 3, 2, 12, 0, 0, TimeSpan.Zero);
    private static readonly Lazy<PriceBook> s_catalog = new(() => PricingSetup.Load(new BurnrateConfig()).Book);

    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-rw-").FullName;
    private readonly FakeTimeProvider _time = new(s_t0);
    private readonly HttpClient _http = new();
    private readonly List<LiveServer> _servers = [];

    /// <summary>
    /// One p4d.24xlarge as kube-state-metrics describes it (labels and GPU capacity), plus a metric no rule reads, one
    /// sample each at <see cref="s_t0"/>.
    /// </summary>
    private static SomeSeries[] OneNode() =>
    [
        new(
            [("__name__", "kube_node_labels"), ("node", Node), ("label_node_kubernetes_io_instance_type", "p4d.24xlarge"),
             ("label_topology_kubernetes_io_region", "us-east-1"), ("label_topology_kubernetes_io_zone", "us-east-1a"),
             ("label_eks_amazonaws_com_capacity_type", "ON_DEMAND"), ("label_nvidia_com_gpu_product", "NVIDIA-A100-SXM4-40GB")],
            [(s_t0.ToUnixTimeMilliseconds(), 1)], "Kubernetes labels converted to Prometheus labels."),
        new(
            [("__name__", "kube_node_status_capacity"), ("node", Node), ("resource", "nvidia_com_gpu"), ("unit", "integer")],
            [(s_t0.ToUnixTimeMilliseconds(), 8)], "The capacity for different resources of a node."),
        new(
            [("__name__", "node_cooling_fan_rpm"), ("instance", "10.0.1.7:9100"), ("fan", "1")],
            [(s_t0.ToUnixTimeMilliseconds(), 5400)], "Not something Burnrate prices."),
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_remote_write_request_is_taken_with_204_and_its_node_burns_at_the_catalog_price(int version)
    {
        var ct = TestContext.Current.CancellationToken;
        var server = await StartAsync();
        var body = version == 1 ? RemoteWriteRequests.Snappy(RemoteWriteRequests.V1Message(OneNode())) : RemoteWriteRequests.Snappy(RemoteWriteRequests.V2Message(OneNode()));
        var contentType = version == 1 ? RemoteWriteRequests.V1ContentType : RemoteWriteRequests.V2ContentType;

        using var response = await PostAsync(server, body, contentType);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        if (version == 2)
        {
            // 2.0 spec, "Response": what was written, so the sender can tell a partial write.
            Assert.Equal(["3"], response.Headers.GetValues("X-Prometheus-Remote-Write-Samples-Written"));
            Assert.Equal(["0"], response.Headers.GetValues("X-Prometheus-Remote-Write-Histograms-Written"));
            Assert.Equal(["0"], response.Headers.GetValues("X-Prometheus-Remote-Write-Exemplars-Written"));
        }
        else
        {
            Assert.False(response.Headers.Contains("X-Prometheus-Remote-Write-Samples-Written"));
        }
        await server.Ingest.DrainAsync(ct);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(CatalogPrice(_time.GetUtcNow()), await BurnAsync(server));
        var metrics = await _http.GetStringAsync(server.Url + "/metrics", ct);
        Assert.Equal(1, SelfMetric(metrics, "burnrate_ingest_requests_total", "receiver=\"remote_write\""));
        Assert.Equal(3, SelfMetric(metrics, "burnrate_ingest_samples_total", "receiver=\"remote_write\""));
    }

    [Fact]
    public async Task A_metadata_only_request_is_taken_with_204()
    {
        var ct = TestContext.Current.CancellationToken;
        var server = await StartAsync();
        var request = new V1.WriteRequest();
        request.Metadata.Add(new V1.MetricMetadata { Type = V1.MetricMetadata.Types.MetricType.Gauge, MetricFamilyName = "kube_node_labels", Help = "Kubernetes labels converted to Prometheus labels." });
        request.Metadata.Add(new V1.MetricMetadata { Type = V1.MetricMetadata.Types.MetricType.Counter, MetricFamilyName = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", Unit = "ratio" });

        using var response = await PostAsync(server, RemoteWriteRequests.Snappy(request), RemoteWriteRequests.V1ContentType);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        await server.Ingest.DrainAsync(ct);
        var metrics = await _http.GetStringAsync(server.Url + "/metrics", ct);
        Assert.Equal(1, SelfMetric(metrics, "burnrate_ingest_requests_total", "receiver=\"remote_write\""));
        Assert.Equal(0, SelfMetric(metrics, "burnrate_ingest_samples_total", "receiver=\"remote_write\""));
        Assert.Equal(0, SelfMetric(metrics, "burnrate_ingest_apply_failures_total", null));
    }

    [Fact]
    public async Task Every_class_of_bad_request_gets_its_status_and_a_message_saying_what_and_where_and_changes_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var server = await StartAsync(new IngestOptions { MaxMetricsBodyBytes = BodyLimit });
        using (var taken = await PostAsync(server, RemoteWriteRequests.Snappy(RemoteWriteRequests.V1Message(OneNode())), RemoteWriteRequests.V1ContentType))
            Assert.Equal(HttpStatusCode.NoContent, taken.StatusCode);
        await server.Ingest.DrainAsync(ct);
        var walRecords = server.Wal.AppendedRecords;

        // A second node in every bad request: had anything of one been kept, it would show in the burn.
        var other = OneNode().Select(s => s with { Labels = [.. s.Labels.Select(l => l.Value == Node ? (l.Name, "ip-10-0-9-9.ec2.internal") : l)] }).ToArray();
        var good = RemoteWriteRequests.Snappy(RemoteWriteRequests.V1Message(other));
        var raw = RemoteWriteRequests.V1Message(other).ToByteArray();

        await AssertProblemAsync(await PostAsync(server, good, "application/json"), HttpStatusCode.UnsupportedMediaType,
            "unsupported remote write Content-Type \"application/json\": media type \"application/json\" is not application/x-protobuf");
        await AssertProblemAsync(await PostAsync(server, good, RemoteWriteRequests.V1ContentType, encoding: "gzip"), HttpStatusCode.UnsupportedMediaType,
            "Content-Encoding must be snappy, got 'gzip'");
        await AssertProblemAsync(await PostAsync(server, good, "application/x-protobuf;proto=foo.Bar"), HttpStatusCode.UnsupportedMediaType,
            "proto=\"foo.Bar\" is not prometheus.WriteRequest or io.prometheus.write.v2.Request");
        var truncated = await AssertProblemAsync(await PostAsync(server, good[..(good.Length / 2)], RemoteWriteRequests.V1ContentType), HttpStatusCode.BadRequest,
            "snappy: corrupt input");
        Assert.Contains($"{good.Length / 2} compressed bytes", truncated, StringComparison.Ordinal);
        // Field 1 (a series), length-delimited, declaring 2^28 bytes that are not there.
        await AssertProblemAsync(await PostAsync(server, RemoteWriteRequests.Snappy([0x0A, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01]), RemoteWriteRequests.V1ContentType), HttpStatusCode.BadRequest,
            "protobuf: cannot decode prometheus.WriteRequest: ");
        var garbage = await AssertProblemAsync(await PostAsync(server, RemoteWriteRequests.Snappy([.. raw[..^3], 0xFF, 0xFF, 0xFF]), RemoteWriteRequests.V1ContentType), HttpStatusCode.BadRequest,
            "protobuf: cannot decode prometheus.WriteRequest");
        Assert.Matches(@" at byte \d+$", garbage);

        // Over the limit: declared by Content-Length, streamed without one (chunked), or only once inflated.
        var large = new byte[BodyLimit + 1];
        Random.Shared.NextBytes(large);
        await AssertProblemAsync(await PostAsync(server, large, RemoteWriteRequests.V1ContentType), HttpStatusCode.RequestEntityTooLarge,
            $"the body is larger than {BodyLimit} bytes; lower max_samples_per_send");
        await AssertProblemAsync(await PostAsync(server, large, RemoteWriteRequests.V1ContentType, chunked: true), HttpStatusCode.RequestEntityTooLarge,
            $"the body is larger than {BodyLimit} bytes");
        var bomb = RemoteWriteRequests.Snappy(new byte[BodyLimit + 1]);
        Assert.True(bomb.Length < BodyLimit);
        await AssertProblemAsync(await PostAsync(server, bomb, RemoteWriteRequests.V1ContentType), HttpStatusCode.BadRequest,
            $"snappy: declared uncompressed length {BodyLimit + 1} bytes exceeds the limit of {BodyLimit} bytes");

        // Still serving; nothing of the refused requests was logged or applied; the node taken first still burns.
        Assert.Equal("ok\n", await _http.GetStringAsync(server.Url + "/healthz", ct));
        Assert.Equal(walRecords, server.Wal.AppendedRecords);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(CatalogPrice(_time.GetUtcNow()), await BurnAsync(server));

        var metrics = await _http.GetStringAsync(server.Url + "/metrics", ct);
        Assert.Equal(9, SelfMetric(metrics, "burnrate_ingest_rejected_total", "receiver=\"remote_write\",reason=\"invalid\""));
        Assert.Equal(0, SelfMetric(metrics, "burnrate_ingest_rejected_total", "receiver=\"remote_write\",reason=\"busy\""));
        Assert.Equal(1, SelfMetric(metrics, "burnrate_ingest_requests_total", "receiver=\"remote_write\""));
        Assert.Equal(1, SelfMetric(metrics, "burnrate_mapper_samples_ignored_total", "reason=\"unknown_metric\"")); // the fan
        Assert.Equal(2, SelfMetric(metrics, "burnrate_mapper_samples_used_total", null));

        // And the next good request is taken.
        using var again = await PostAsync(server, good, RemoteWriteRequests.V1ContentType);
        Assert.Equal(HttpStatusCode.NoContent, again.StatusCode);
    }

    [Fact]
    public async Task A_full_queue_answers_503_with_retry_after_and_keeps_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        // No reader applies the queue, so the first request fills it.
        var server = await StartAsync(new IngestOptions { QueueCapacity = 1 }, runReader: false);
        var body = RemoteWriteRequests.Snappy(RemoteWriteRequests.V1Message(OneNode()));
        using (var first = await PostAsync(server, body, RemoteWriteRequests.V1ContentType))
            Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);

        using var busy = await PostAsync(server, body, RemoteWriteRequests.V1ContentType);

        Assert.Equal(["1"], busy.Headers.GetValues("Retry-After"));
        await AssertProblemAsync(busy, HttpStatusCode.ServiceUnavailable, "the ingest queue is full (3 of 1 samples waiting); nothing was kept, retry after 1s");
        Assert.Equal(1, server.Wal.AppendedRecords);
        var metrics = await _http.GetStringAsync(server.Url + "/metrics", ct);
        Assert.Equal(1, SelfMetric(metrics, "burnrate_ingest_rejected_total", "receiver=\"remote_write\",reason=\"busy\""));
        Assert.Equal(1, SelfMetric(metrics, "burnrate_ingest_requests_total", "receiver=\"remote_write\""));
        Assert.Equal(3, SelfMetric(metrics, "burnrate_ingest_queue_items", null));

        // Once the queue is applied, the retry is taken.
        server.Ingest.ApplyQueued();
        using var retried = await PostAsync(server, body, RemoteWriteRequests.V1ContentType);
        Assert.Equal(HttpStatusCode.NoContent, retried.StatusCode);
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    private static decimal CatalogPrice(DateTimeOffset at)
    {
        var price = s_catalog.Value.Find("aws", "us-east-1", "us-east-1a", "p4d.24xlarge", CapacityType.OnDemand, at);
        Assert.True(price is not null, "the built-in catalog has no on-demand p4d.24xlarge in us-east-1");
        Assert.StartsWith("builtin:", price.Source, StringComparison.Ordinal);
        return price.PricePerHour;
    }

    private async Task<HttpResponseMessage> PostAsync(LiveServer server, byte[] body, string contentType, string encoding = "snappy", bool chunked = false)
    {
        HttpContent content = chunked ? new StreamContent(new UnseekableStream(body)) : new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        content.Headers.ContentEncoding.Add(encoding);
        using var request = new HttpRequestMessage(HttpMethod.Post, server.Url + "/api/v1/write") { Content = content };
        request.Headers.Add("X-Prometheus-Remote-Write-Version", contentType.Contains("v2", StringComparison.Ordinal) ? "2.0.0" : "0.1.0");
        return await _http.SendAsync(request, TestContext.Current.CancellationToken);
    }

    private async Task<decimal> BurnAsync(LiveServer server)
    {
        using var burn = JsonDocument.Parse(await _http.GetStringAsync(server.Url + "/api/v1/burn", TestContext.Current.CancellationToken));
        return decimal.Parse(burn.RootElement.GetProperty("total_usd_per_hour").GetString()!, NumberStyles.Number, CultureInfo.InvariantCulture);
    }

    private static long SelfMetric(string page, string name, string? labels)
    {
        var series = labels is null ? name : name + "{" + labels + "}";
        var line = page.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {series} in /metrics:\n{page}");
        return long.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string detail)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(body);
            Assert.Equal((int)status, problem.RootElement.GetProperty("status").GetInt32());
            var text = problem.RootElement.GetProperty("detail").GetString()!;
            Assert.Contains(detail, text, StringComparison.Ordinal);
            return text;
        }
    }

    private async Task<LiveServer> StartAsync(IngestOptions? options = null, bool runReader = true)
    {
        var server = await LiveServer.StartAsync(Path.Combine(_data, _servers.Count.ToString(CultureInfo.InvariantCulture)), _time, options, runReader);
        _servers.Add(server);
        return server;
    }

    /// <summary>A body of unknown length, so the client sends it chunked, without Content-Length.</summary>
    private sealed class UnseekableStream(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
            await server.DisposeAsync();
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
