using System.Text;
using Burnrate.Protocols.Otlp;
using Burnrate.Protocols.Otlp.Proto;
using Burnrate.Telemetry;
using Google.Protobuf;

namespace Burnrate.Tests.Protocols;

public sealed class OtlpMetricsDecoderTests
{
    private const ulong T0Nanos = 1_767_225_600_123_456_789; // 2026-01-01T00:00:00.123456789Z
    private const long T0Ms = 1_767_225_600_123;

    [Fact]
    public void Protobuf_and_json_encodings_of_one_request_decode_to_the_same_samples()
    {
        var request = GpuFleet();

        var fromProtobuf = OtlpMetricsDecoder.DecodeProtobuf(request.ToByteArray());
        var fromJson = OtlpMetricsDecoder.DecodeJson(Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(request)));

        Assert.Equal(5, fromProtobuf.Samples.Count); // 2 GPUs, 1 counter, histogram _count and _sum
        Assert.Equal(fromProtobuf.Samples.Select(Describe), fromJson.Samples.Select(Describe));
        Assert.Equal(fromProtobuf.Metadata, fromJson.Metadata);
        Assert.Equal((4L, 2L), (fromProtobuf.AcceptedDataPoints, fromProtobuf.RejectedDataPoints));
        Assert.Equal((fromProtobuf.AcceptedDataPoints, fromProtobuf.RejectedDataPoints), (fromJson.AcceptedDataPoints, fromJson.RejectedDataPoints));
        Assert.Equal(fromProtobuf.PartialSuccessMessage, fromJson.PartialSuccessMessage);
    }

    [Fact]
    public void Hand_written_otlp_json_with_string_int64s_and_hex_ids_decodes_like_the_protobuf_request()
    {
        var fromProtobuf = OtlpMetricsDecoder.DecodeProtobuf(GpuFleet().ToByteArray());

        var fromJson = OtlpMetricsDecoder.DecodeJson(Encoding.UTF8.GetBytes(GpuFleetJson));

        Assert.Equal(fromProtobuf.Samples.Select(Describe), fromJson.Samples.Select(Describe));
        Assert.Equal(fromProtobuf.Metadata, fromJson.Metadata);
        Assert.Equal(fromProtobuf.RejectedDataPoints, fromJson.RejectedDataPoints);
    }

    [Fact]
    public void Dcgm_gauge_becomes_one_sample_per_gpu_with_point_and_resource_attributes_as_labels()
    {
        var result = OtlpMetricsDecoder.DecodeProtobuf(GpuFleet().ToByteArray());

        var gpu1 = result.Samples[1];
        Assert.Equal("DCGM_FI_DEV_GPU_UTIL", gpu1.Name);
        Assert.Equal("1", gpu1.Get("gpu"));
        Assert.Equal("GPU-bbbb", gpu1.Get("UUID"));
        Assert.Equal("vllm-0", gpu1.Get("k8s_pod_name"));
        Assert.Equal("inference", gpu1.Get("k8s_namespace_name"));
        Assert.Equal("node-a", gpu1.Get("k8s_node_name"));
        Assert.Equal("ip-10-0-0-1", gpu1.Get("host_name"));
        Assert.Equal("aws", gpu1.Get("cloud_provider"));
        Assert.Equal("us-east-1", gpu1.Get("cloud_region"));
        Assert.Equal("us-east-1c", gpu1.Get("cloud_availability_zone"));
        Assert.Equal("p5.48xlarge", gpu1.Get("host_type"));
        Assert.Equal(T0Ms, gpu1.TimestampMs);
        Assert.Equal(87.5, gpu1.Value);
        Assert.Equal(gpu1.Labels.Select(l => l.Name).Order(StringComparer.Ordinal), gpu1.Labels.Select(l => l.Name));
        Assert.Contains(new MetricMetadata("DCGM_FI_DEV_GPU_UTIL", OtlpMetricTypes.Gauge, "GPU utilization (in %).", "%"), result.Metadata);
    }

    [Fact]
    public void Monotonic_cumulative_sum_is_a_counter_and_its_integer_value_is_kept()
    {
        var result = OtlpMetricsDecoder.DecodeProtobuf(GpuFleet().ToByteArray());

        var tokens = Assert.Single(result.Samples, s => s.Name == "vllm:generation_tokens_total");
        Assert.Equal(123_456_789d, tokens.Value);
        Assert.Equal("Llama-3.1-8B", tokens.Get("model_name"));
        Assert.Contains(new MetricMetadata("vllm:generation_tokens_total", OtlpMetricTypes.Counter, "Generation tokens.", "{token}"), result.Metadata);
    }

    [Fact]
    public void Delta_sums_are_kept_and_marked_as_delta_in_the_metadata()
    {
        var monotonic = Sum("requests", AggregationTemporality.Delta, monotonic: true, Point(3));
        var upDown = Sum("queue.change", AggregationTemporality.Delta, monotonic: false, Point(-2));
        var level = Sum("queue.depth", AggregationTemporality.Cumulative, monotonic: false, Point(7));

        var result = OtlpMetricsDecoder.DecodeProtobuf(Request([], monotonic, upDown, level).ToByteArray());

        Assert.Equal([3d, -2d, 7d], result.Samples.Select(s => s.Value));
        Assert.Equal(
            [OtlpMetricTypes.DeltaCounter, OtlpMetricTypes.DeltaUpDownCounter, OtlpMetricTypes.Gauge],
            result.Metadata.Select(m => m.Type));
    }

    [Fact]
    public void Histogram_point_becomes_count_and_sum_samples_without_buckets()
    {
        var result = OtlpMetricsDecoder.DecodeProtobuf(GpuFleet().ToByteArray());

        var count = Assert.Single(result.Samples, s => s.Name == "vllm:e2e_request_latency_seconds_count");
        var sum = Assert.Single(result.Samples, s => s.Name == "vllm:e2e_request_latency_seconds_sum");
        Assert.Equal(42d, count.Value);
        Assert.Equal(17.25, sum.Value);
        Assert.Equal(count.Labels.Where(l => l.Name != MetricSample.NameLabel), sum.Labels.Where(l => l.Name != MetricSample.NameLabel));
        Assert.DoesNotContain(result.Samples, s => s.Name.EndsWith("_bucket", StringComparison.Ordinal));
        Assert.Contains(result.Metadata, m => m is { MetricFamily: "vllm:e2e_request_latency_seconds", Type: OtlpMetricTypes.Histogram, Unit: "s" });
    }

    [Fact]
    public void Histogram_without_a_sum_has_only_a_count_sample()
    {
        var point = new HistogramDataPoint { TimeUnixNano = T0Nanos, Count = 5 };
        var metric = new Metric { Name = "lat", Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative, DataPoints = { point } } };

        var result = OtlpMetricsDecoder.DecodeProtobuf(Request([], metric).ToByteArray());

        Assert.Equal(["lat_count"], result.Samples.Select(s => s.Name));
    }

    [Fact]
    public void Exponential_histogram_points_are_rejected_as_a_partial_success_with_their_count()
    {
        var result = OtlpMetricsDecoder.DecodeProtobuf(GpuFleet().ToByteArray());

        Assert.Equal(2, result.RejectedDataPoints);
        Assert.Equal("rejected 2 data points: exponential histogram \"vllm:time_to_first_token_seconds\" is not supported (2)", result.PartialSuccessMessage);

        var response = ExportMetricsServiceResponse.Parser.ParseFrom(result.ToProtobufResponse());
        Assert.Equal(2, response.PartialSuccess.RejectedDataPoints);
        Assert.Equal(result.PartialSuccessMessage, response.PartialSuccess.ErrorMessage);
        Assert.Equal(
            "{ \"partialSuccess\": { \"rejectedDataPoints\": \"2\", \"errorMessage\": \"rejected 2 data points: exponential histogram \\\"vllm:time_to_first_token_seconds\\\" is not supported (2)\" } }",
            result.ToJsonResponse());
    }

    [Fact]
    public void Summary_points_are_rejected_as_a_partial_success()
    {
        var summary = new Metric { Name = "rpc.duration", Summary = new Summary { DataPoints = { new SummaryDataPoint { TimeUnixNano = T0Nanos, Count = 1, Sum = 2 } } } };

        var result = OtlpMetricsDecoder.DecodeProtobuf(Request([], summary, Gauge("up", Point(1))).ToByteArray());

        Assert.Equal((1L, 1L), (result.AcceptedDataPoints, result.RejectedDataPoints));
        Assert.Equal("rejected 1 data point: summary \"rpc.duration\" is not supported (1)", result.PartialSuccessMessage);
    }

    [Fact]
    public void Full_success_answers_an_empty_protobuf_body_and_an_empty_json_object()
    {
        var result = OtlpMetricsDecoder.DecodeProtobuf(Request([], Gauge("up", Point(1))).ToByteArray());

        Assert.Null(result.PartialSuccessMessage);
        Assert.Equal(0, result.RejectedDataPoints);
        Assert.Empty(result.ToProtobufResponse());
        Assert.Equal("{ }", result.ToJsonResponse());
    }

    [Fact]
    public void Data_point_without_a_value_is_rejected_and_the_others_are_kept()
    {
        var metric = Gauge("gpu.temp", Point(60), new NumberDataPoint { TimeUnixNano = T0Nanos }, Point(61));

        var result = OtlpMetricsDecoder.DecodeProtobuf(Request([], metric).ToByteArray());

        Assert.Equal([60d, 61d], result.Samples.Select(s => s.Value));
        Assert.Equal((2L, 1L), (result.AcceptedDataPoints, result.RejectedDataPoints));
        Assert.Equal("rejected 1 data point: a data point of \"gpu.temp\" has no value (as_double or as_int) (1)", result.PartialSuccessMessage);
    }

    [Fact]
    public void Data_point_without_a_timestamp_is_rejected()
    {
        var result = OtlpMetricsDecoder.DecodeProtobuf(Request([], Gauge("up", new NumberDataPoint { AsDouble = 1 })).ToByteArray());

        Assert.Empty(result.Samples);
        Assert.Contains("has no time_unix_nano", result.PartialSuccessMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void No_recorded_value_flag_becomes_the_prometheus_stale_marker()
    {
        var stale = new NumberDataPoint { TimeUnixNano = T0Nanos, Flags = 1 };

        var sample = Assert.Single(OtlpMetricsDecoder.DecodeProtobuf(Request([], Gauge("up", stale)).ToByteArray()).Samples);

        Assert.Equal(0x7ff0000000000002UL, BitConverter.DoubleToUInt64Bits(sample.Value));
    }

    [Fact]
    public void Metric_and_label_names_are_sanitized_the_prometheus_way()
    {
        var point = Point(1, ("http.status-code", "200"), ("2nd", "x"), ("a:b", "y"));

        var sample = Assert.Single(OtlpMetricsDecoder.DecodeProtobuf(Request([("service.name", "api")], Gauge("2xx.requests/sec", point)).ToByteArray()).Samples);

        Assert.Equal("_2xx_requests_sec", sample.Name);
        Assert.Equal(["_2nd", "__name__", "a_b", "http_status_code", "service_name"], sample.Labels.Select(l => l.Name));
        Assert.Equal("vllm:tokens_total", OtlpMetricsDecoder.SanitizeMetricName("vllm:tokens_total"));
        Assert.Equal("a_b", OtlpMetricsDecoder.SanitizeLabelName("a:b"));
    }

    [Fact]
    public void Data_point_attribute_wins_over_a_resource_attribute_of_the_same_name()
    {
        var point = Point(1, ("k8s.pod.name", "from-point"));

        var sample = Assert.Single(OtlpMetricsDecoder.DecodeProtobuf(Request([("k8s.pod.name", "from-resource"), ("k8s.node.name", "node-a")], Gauge("up", point)).ToByteArray()).Samples);

        Assert.Equal("from-point", sample.Get("k8s_pod_name"));
        Assert.Equal("node-a", sample.Get("k8s_node_name"));
    }

    [Fact]
    public void An_attribute_named_like_the_metric_name_label_does_not_replace_the_metric_name()
    {
        var sample = Assert.Single(OtlpMetricsDecoder.DecodeProtobuf(Request([], Gauge("up", Point(1, ("__name__", "evil")))).ToByteArray()).Samples);

        Assert.Equal("up", sample.Name);
    }

    [Fact]
    public void Non_string_attribute_values_are_rendered_as_text()
    {
        var point = Point(1);
        point.Attributes.Add(new KeyValue { Key = "gpu", Value = new AnyValue { IntValue = 3 } });
        point.Attributes.Add(new KeyValue { Key = "mig", Value = new AnyValue { BoolValue = true } });
        point.Attributes.Add(new KeyValue { Key = "ratio", Value = new AnyValue { DoubleValue = 0.5 } });
        point.Attributes.Add(new KeyValue { Key = "ids", Value = new AnyValue { ArrayValue = new ArrayValue { Values = { new AnyValue { StringValue = "a" }, new AnyValue { IntValue = 2 } } } } });
        point.Attributes.Add(new KeyValue { Key = "kv", Value = new AnyValue { KvlistValue = new KeyValueList { Values = { Attribute("q", "say \"hi\"") } } } });
        point.Attributes.Add(new KeyValue { Key = "empty", Value = new AnyValue { StringValue = "" } });

        var sample = Assert.Single(OtlpMetricsDecoder.DecodeProtobuf(Request([], Gauge("up", point)).ToByteArray()).Samples);

        Assert.Equal(("3", "true", "0.5", "[\"a\",2]"), (sample.Get("gpu"), sample.Get("mig"), sample.Get("ratio"), sample.Get("ids")));
        Assert.Equal("{\"q\":\"say \\\"hi\\\"\"}", sample.Get("kv"));
        Assert.Null(sample.Get("empty"));
    }

    [Fact]
    public void Unknown_json_fields_are_ignored_and_numbers_are_accepted_for_int64s()
    {
        var json = """
            {"resourceMetrics":[{"futureField":{"x":1},"scopeMetrics":[{"metrics":[
              {"name":"up","gauge":{"dataPoints":[{"asInt":5,"timeUnixNano":1767225600123456789,"someNewThing":true}]}}]}]}]}
            """;

        var sample = Assert.Single(OtlpMetricsDecoder.DecodeJson(Encoding.UTF8.GetBytes(json)).Samples);

        Assert.Equal((5d, T0Ms), (sample.Value, sample.TimestampMs));
    }

    [Fact]
    public void Empty_requests_decode_to_nothing_and_succeed()
    {
        var fromProtobuf = OtlpMetricsDecoder.DecodeProtobuf([]);
        var fromJson = OtlpMetricsDecoder.DecodeJson("{}"u8);

        Assert.Empty(fromProtobuf.Samples);
        Assert.Empty(fromJson.Samples);
        Assert.Null(fromJson.PartialSuccessMessage);
    }

    [Fact]
    public void Truncated_protobuf_is_rejected_with_what_failed()
    {
        var body = GpuFleet().ToByteArray();

        var ex = Assert.Throws<InvalidTelemetryException>(() => OtlpMetricsDecoder.DecodeProtobuf(body.AsSpan(0, body.Length - 3)));

        Assert.StartsWith($"protobuf: cannot decode opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest ({body.Length - 3} bytes): ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_bytes_are_rejected_as_invalid_protobuf()
    {
        var ex = Assert.Throws<InvalidTelemetryException>(() => OtlpMetricsDecoder.DecodeProtobuf([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]));

        Assert.StartsWith("protobuf: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_in_a_protobuf_string_is_rejected_as_invalid_protobuf()
    {
        var body = Request([], Gauge("up", Point(1))).ToByteArray();
        var at = body.AsSpan().IndexOf("up"u8);
        body[at] = 0xFF;

        var ex = Assert.Throws<InvalidTelemetryException>(() => OtlpMetricsDecoder.DecodeProtobuf(body));

        Assert.StartsWith("protobuf: cannot decode", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"resourceMetrics\":[", "json: not valid JSON at line 1, column 21: ")]
    [InlineData("not json", "json: not valid JSON at line 1, column 2: ")]
    [InlineData("{\"resourceMetrics\": [\n  {\"scopeMetrics\": []},\n  {\"scopeMetrics\": [}\n]}", "json: not valid JSON at line 3, column 21: ")]
    [InlineData("", "json: not valid JSON at line 1, column 1: ")]
    public void Json_that_does_not_parse_is_rejected_with_the_line_and_column(string json, string expectedStart)
    {
        var ex = Assert.Throws<InvalidTelemetryException>(() => OtlpMetricsDecoder.DecodeJson(Encoding.UTF8.GetBytes(json)));

        Assert.StartsWith(expectedStart, ex.Message, StringComparison.Ordinal);
        Assert.True(ex.Message.Length > expectedStart.Length + 20, ex.Message); // and the JSON reader's reason
        Assert.DoesNotContain("LineNumber", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"resourceMetrics": {}}""", "at resourceMetrics: ")]
    [InlineData("""[]""", "at the top level: ")]
    [InlineData("""{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "up", "gauge": {"dataPoints": [{"timeUnixNano": "soon"}]}}]}]}]}""",
        "at resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].timeUnixNano (metric \"up\"): ")]
    [InlineData("""{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "up", "gauge": {"dataPoints": []}}, {"name": "down", "gauge": []}]}]}]}""",
        "at resourceMetrics[0].scopeMetrics[0].metrics[1].gauge (metric \"down\"): ")]
    [InlineData("""{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "up"}, {"sum": {"dataPoints": [{"asInt": "1", "timeUnixNano": 1e3}, {"asInt": "eight"}]}}]}]}]}""",
        "at resourceMetrics[0].scopeMetrics[0].metrics[1].sum.dataPoints[1].asInt: ")]
    [InlineData("""{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "h", "histogram": {"dataPoints": [{"bucketCounts": ["1", "2", null]}]}}]}]}]}""",
        "at resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[2] (metric \"h\"): ")]
    [InlineData("""{"resourceMetrics": [{"resource": {"attributes": [{"key": "k8s.pod.name", "value": {"stringValue": 7}}]}}]}""",
        "at resourceMetrics[0].resource.attributes[0].value.stringValue: ")]
    [InlineData("""{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "up", "gauge": {"dataPoints": [{"asDouble": 1, "asInt": "1"}]}}]}]}]}""",
        "at resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asInt (metric \"up\"): ")]
    public void Json_with_a_value_the_parser_refuses_is_rejected_with_its_path(string json, string expectedWhere)
    {
        var ex = Assert.Throws<InvalidTelemetryException>(() => OtlpMetricsDecoder.DecodeJson(Encoding.UTF8.GetBytes(json)));

        Assert.StartsWith("json: cannot decode opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest " + expectedWhere, ex.Message, StringComparison.Ordinal);
        Assert.True(ex.Message.Length > 100 + expectedWhere.Length, ex.Message); // and the parser's reason
    }

    [Fact]
    public void Json_that_is_not_utf8_is_rejected_with_the_byte_offset()
    {
        var ex = Assert.Throws<InvalidTelemetryException>(() => OtlpMetricsDecoder.DecodeJson([(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)'}']));

        Assert.Equal("json: invalid UTF-8 at byte 2 of 5", ex.Message);
    }

    private static string Describe(MetricSample sample) =>
        $"{string.Join(',', sample.Labels.Select(l => $"{l.Name}={l.Value}"))} @{sample.TimestampMs} = {BitConverter.DoubleToUInt64Bits(sample.Value):x16}";

    // One scrape of a GPU node running vLLM: DCGM gauge (2 GPUs), a monotonic token counter, a latency histogram
    // and an exponential histogram (2 points) that is rejected.
    private static ExportMetricsServiceRequest GpuFleet()
    {
        var utilization = Gauge(
            "DCGM_FI_DEV_GPU_UTIL",
            Point(12.5, ("gpu", "0"), ("UUID", "GPU-aaaa"), ("modelName", "NVIDIA H100 80GB HBM3")),
            Point(87.5, ("gpu", "1"), ("UUID", "GPU-bbbb"), ("modelName", "NVIDIA H100 80GB HBM3")));
        utilization.Description = "GPU utilization (in %).";
        utilization.Unit = "%";

        var tokens = Sum("vllm:generation_tokens_total", AggregationTemporality.Cumulative, monotonic: true,
            new NumberDataPoint { StartTimeUnixNano = T0Nanos - 60_000_000_000, TimeUnixNano = T0Nanos, AsInt = 123_456_789, Attributes = { Attribute("model_name", "Llama-3.1-8B") } });
        tokens.Description = "Generation tokens.";
        tokens.Unit = "{token}";

        var latency = new Metric
        {
            Name = "vllm:e2e_request_latency_seconds",
            Unit = "s",
            Histogram = new Histogram
            {
                AggregationTemporality = AggregationTemporality.Cumulative,
                DataPoints =
                {
                    new HistogramDataPoint
                    {
                        TimeUnixNano = T0Nanos, Count = 42, Sum = 17.25, BucketCounts = { 40, 2, 0 }, ExplicitBounds = { 1, 5 },
                        Attributes = { Attribute("model_name", "Llama-3.1-8B") },
                    },
                },
            },
        };

        var ttft = new Metric
        {
            Name = "vllm:time_to_first_token_seconds",
            ExponentialHistogram = new ExponentialHistogram
            {
                AggregationTemporality = AggregationTemporality.Delta,
                DataPoints =
                {
                    new ExponentialHistogramDataPoint { TimeUnixNano = T0Nanos, Count = 3, Scale = 2, Positive = new() { Offset = 1, BucketCounts = { 1, 2 } } },
                    new ExponentialHistogramDataPoint { TimeUnixNano = T0Nanos, Count = 0 },
                },
            },
        };

        return Request(
            [
                ("k8s.pod.name", "vllm-0"), ("k8s.namespace.name", "inference"), ("k8s.node.name", "node-a"),
                ("host.name", "ip-10-0-0-1"), ("host.type", "p5.48xlarge"), ("cloud.provider", "aws"),
                ("cloud.region", "us-east-1"), ("cloud.availability_zone", "us-east-1c"),
            ],
            utilization, tokens, latency, ttft);
    }

    // GpuFleet() as an OTLP exporter writes it (§2.2): lowerCamelCase keys, int64s as strings, enums as integers,
    // exemplar ids in hex, plus a field this decoder does not know.
    private const string GpuFleetJson = """
        {"resourceMetrics":[{
          "resource":{"attributes":[
            {"key":"k8s.pod.name","value":{"stringValue":"vllm-0"}},
            {"key":"k8s.namespace.name","value":{"stringValue":"inference"}},
            {"key":"k8s.node.name","value":{"stringValue":"node-a"}},
            {"key":"host.name","value":{"stringValue":"ip-10-0-0-1"}},
            {"key":"host.type","value":{"stringValue":"p5.48xlarge"}},
            {"key":"cloud.provider","value":{"stringValue":"aws"}},
            {"key":"cloud.region","value":{"stringValue":"us-east-1"}},
            {"key":"cloud.availability_zone","value":{"stringValue":"us-east-1c"}}]},
          "scopeMetrics":[{
            "scope":{"name":"dcgm-exporter","version":"4.2.0"},
            "metrics":[
              {"name":"DCGM_FI_DEV_GPU_UTIL","unit":"%","description":"GPU utilization (in %).",
               "gauge":{"dataPoints":[
                 {"asDouble":12.5,"timeUnixNano":"1767225600123456789","attributes":[
                   {"key":"gpu","value":{"stringValue":"0"}},{"key":"UUID","value":{"stringValue":"GPU-aaaa"}},
                   {"key":"modelName","value":{"stringValue":"NVIDIA H100 80GB HBM3"}}]},
                 {"asDouble":87.5,"timeUnixNano":"1767225600123456789","attributes":[
                   {"key":"gpu","value":{"stringValue":"1"}},{"key":"UUID","value":{"stringValue":"GPU-bbbb"}},
                   {"key":"modelName","value":{"stringValue":"NVIDIA H100 80GB HBM3"}}]}]}},
              {"name":"vllm:generation_tokens_total","unit":"{token}","description":"Generation tokens.",
               "sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
                 {"asInt":"123456789","startTimeUnixNano":"1767225540123456789","timeUnixNano":"1767225600123456789",
                  "attributes":[{"key":"model_name","value":{"stringValue":"Llama-3.1-8B"}}],
                  "exemplars":[{"asInt":"17","timeUnixNano":"1767225599000000000",
                                "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},
              {"name":"vllm:e2e_request_latency_seconds","unit":"s",
               "histogram":{"aggregationTemporality":2,"dataPoints":[
                 {"timeUnixNano":"1767225600123456789","count":"42","sum":17.25,
                  "bucketCounts":["40","2","0"],"explicitBounds":[1,5],
                  "attributes":[{"key":"model_name","value":{"stringValue":"Llama-3.1-8B"}}]}]}},
              {"name":"vllm:time_to_first_token_seconds","notYetInTheSpec":1,
               "exponentialHistogram":{"aggregationTemporality":1,"dataPoints":[
                 {"timeUnixNano":"1767225600123456789","count":"3","scale":2,"positive":{"offset":1,"bucketCounts":["1","2"]}},
                 {"timeUnixNano":"1767225600123456789","count":"0"}]}}]}]}]}
        """;

    private static ExportMetricsServiceRequest Request((string Key, string Value)[] resource, params Metric[] metrics)
    {
        var resourceMetrics = new ResourceMetrics { Resource = new Resource(), ScopeMetrics = { new ScopeMetrics { Metrics = { metrics } } } };
        foreach (var (key, value) in resource)
            resourceMetrics.Resource.Attributes.Add(Attribute(key, value));
        return new ExportMetricsServiceRequest { ResourceMetrics = { resourceMetrics } };
    }

    private static Metric Gauge(string name, params NumberDataPoint[] points) =>
        new() { Name = name, Gauge = new Gauge { DataPoints = { points } } };

    private static Metric Sum(string name, AggregationTemporality temporality, bool monotonic, params NumberDataPoint[] points) =>
        new() { Name = name, Sum = new Sum { AggregationTemporality = temporality, IsMonotonic = monotonic, DataPoints = { points } } };

    private static NumberDataPoint Point(double value, params (string Key, string Value)[] attributes)
    {
        var point = new NumberDataPoint { TimeUnixNano = T0Nanos, AsDouble = value };
        foreach (var (key, v) in attributes)
            point.Attributes.Add(Attribute(key, v));
        return point;
    }

    private static KeyValue Attribute(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
}
