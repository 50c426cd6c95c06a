using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;
using Google.Protobuf;
using static Burnrate.Tests.Protocols.RemoteWriteRequests;
using V1 = Burnrate.Protocols.RemoteWrite.V1;
using V2 = Burnrate.Protocols.RemoteWrite.V2;

namespace Burnrate.Tests.Protocols;

public sealed class RemoteWriteDecoderTests
{
    [Fact]
    public void The_same_data_sent_as_1_0_and_2_0_decodes_to_the_same_samples()
    {
        var v1 = DecodeV1(GpuFleet());
        var v2 = DecodeV2(GpuFleet());

        Assert.Equal(RemoteWriteVersion.V1, v1.Version);
        Assert.Equal(RemoteWriteVersion.V2, v2.Version);
        Assert.Equal(9, v1.SampleCount);
        Assert.Equal(3, v1.SeriesCount);
        Assert.Equal(v1.Samples.Select(Describe), v2.Samples.Select(Describe));
        Assert.Equal((v1.SampleCount, v1.SeriesCount, v1.HistogramCount, v1.ExemplarCount), (v2.SampleCount, v2.SeriesCount, v2.HistogramCount, v2.ExemplarCount));

        var gpu1 = v2.Samples[4];
        Assert.Equal("DCGM_FI_DEV_GPU_UTIL", gpu1.Name);
        Assert.Equal("1", gpu1.Get("gpu"));
        Assert.Equal(T0 + 15_000, gpu1.TimestampMs);
        Assert.Equal(12.5, gpu1.Value);
        Assert.Equal("node-a", v1.Samples[8].Get("node"));
    }

    [Fact]
    public void Labels_come_out_sorted_by_name_even_when_the_sender_did_not_sort_them()
    {
        var unsorted = new SomeSeries([("pod", "train-0"), ("gpu", "0"), ("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("UUID", "GPU-1")], [(T0, 50)]);

        var sample = Assert.Single(DecodeV1([unsorted]).Samples);

        Assert.Equal(["UUID", "__name__", "gpu", "pod"], sample.Labels.Select(l => l.Name));
        Assert.Equal("DCGM_FI_DEV_GPU_UTIL", sample.Name);
    }

    [Fact]
    public void Label_strings_repeated_across_series_share_one_instance()
    {
        var result = DecodeV1(GpuFleet());

        var gpu0 = result.Samples[0];
        var gpu1 = result.Samples[3];
        Assert.Same(gpu0.Get("modelName"), gpu1.Get("modelName"));
        Assert.Same(gpu0.Labels[^1].Name, gpu1.Labels[^1].Name);
        Assert.Same(gpu0.Labels, result.Samples[1].Labels); // samples of one series share the label array
    }

    [Fact]
    public void Dcgm_not_available_value_passes_through_with_its_exact_bits()
    {
        foreach (var result in new[] { DecodeV1(GpuFleet()), DecodeV2(GpuFleet()) })
        {
            var blank = result.Samples[2];
            Assert.Equal(BitConverter.DoubleToInt64Bits(DcgmNotAvailable), BitConverter.DoubleToInt64Bits(blank.Value));
            Assert.True(blank.Value >= 9.22e18);
        }
    }

    [Fact]
    public void Stale_marker_nan_keeps_its_bit_pattern()
    {
        var stale = BitConverter.Int64BitsToDouble(0x7ff0000000000002);
        var series = new SomeSeries([("__name__", "up")], [(T0, stale)]);

        Assert.Equal(0x7ff0000000000002, BitConverter.DoubleToInt64Bits(Assert.Single(DecodeV2([series]).Samples).Value));
    }

    [Fact]
    public void A_metadata_only_1_0_request_decodes_to_no_samples_and_its_metadata()
    {
        var request = new V1.WriteRequest();
        request.Metadata.Add(new V1.MetricMetadata
        {
            Type = V1.MetricMetadata.Types.MetricType.Counter,
            MetricFamilyName = "prometheus_http_requests_total",
            Help = "Counter of HTTP requests.",
        });
        request.Metadata.Add(new V1.MetricMetadata { Type = V1.MetricMetadata.Types.MetricType.Gauge, MetricFamilyName = "DCGM_FI_DEV_GPU_UTIL", Help = "GPU utilization (in %).", Unit = "percent" });

        var result = RemoteWriteDecoder.Decode(Snappy(request), V1ContentType);

        Assert.Empty(result.Samples);
        Assert.Equal(0, result.SeriesCount);
        Assert.Equal(2, result.MetadataCount);
        Assert.Equal(new MetricMetadata("prometheus_http_requests_total", "counter", "Counter of HTTP requests.", ""), result.Metadata[0]);
        Assert.Equal(new MetricMetadata("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", "percent"), result.Metadata[1]);
    }

    [Fact]
    public void Series_metadata_of_a_2_0_request_is_returned_once_per_metric_family()
    {
        var result = DecodeV2(GpuFleet());

        Assert.Equal(
            [new MetricMetadata("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", ""), new MetricMetadata("kube_pod_info", "gauge", "Information about pod.", "")],
            result.Metadata);
    }

    [Fact]
    public void Histograms_and_exemplars_are_counted_but_not_decoded_as_samples()
    {
        var request = V2Message([new SomeSeries([("__name__", "vllm:time_to_first_token_seconds")], [])]);
        request.Timeseries[0].Histograms.Add(new V2.Histogram { CountInt = 3, Sum = 0.5, Schema = 3, Timestamp = T0, StartTimestamp = T0 - 60_000 });
        request.Timeseries[0].Exemplars.Add(new V2.Exemplar { Value = 0.2, Timestamp = T0 });

        var result = RemoteWriteDecoder.Decode(Snappy(request), V2ContentType);

        Assert.Empty(result.Samples);
        Assert.Equal((1, 1, 1), (result.SeriesCount, result.HistogramCount, result.ExemplarCount));
    }

    [Fact]
    public void A_2_0_sample_with_a_start_timestamp_and_an_rc3_created_timestamp_decodes()
    {
        var request = V2Message([new SomeSeries([("__name__", "vllm:generation_tokens_total")], [])]);
        request.Timeseries[0].CreatedTimestamp = T0 - 3_600_000; // rc.3 senders (Prometheus 2.54–3.7)
        request.Timeseries[0].Samples.Add(new V2.Sample { Value = 1234, Timestamp = T0, StartTimestamp = T0 - 3_600_000 });

        var sample = Assert.Single(RemoteWriteDecoder.Decode(Snappy(request), V2ContentType).Samples);

        Assert.Equal((T0, 1234d), (sample.TimestampMs, sample.Value));
    }

    [Theory]
    [InlineData(null, RemoteWriteVersion.V1)]
    [InlineData("", RemoteWriteVersion.V1)]
    [InlineData("application/x-protobuf", RemoteWriteVersion.V1)]
    [InlineData("application/x-protobuf;proto=prometheus.WriteRequest", RemoteWriteVersion.V1)]
    [InlineData("application/x-protobuf;proto=io.prometheus.write.v2.Request", RemoteWriteVersion.V2)]
    [InlineData("Application/X-Protobuf; proto=\"io.prometheus.write.v2.Request\"", RemoteWriteVersion.V2)]
    public void The_version_comes_from_the_content_type(string? contentType, RemoteWriteVersion expected)
    {
        Assert.Equal(expected, RemoteWriteDecoder.DetectVersion(contentType));
    }

    [Theory]
    [InlineData("application/x-protobuf;proto=io.prometheus.write.v3.Request", "io.prometheus.write.v3.Request")]
    [InlineData("application/json", "application/json")]
    public void An_unknown_content_type_is_an_unsupported_media_type_naming_it(string contentType, string named)
    {
        var body = Snappy(V2Message(GpuFleet()));

        var ex = Assert.Throws<UnsupportedRemoteWriteTypeException>(() => RemoteWriteDecoder.Decode(body, contentType));

        Assert.Contains(named, ex.Message, StringComparison.Ordinal);
        Assert.Equal(contentType, ex.ContentType);
    }

    [Fact]
    public void A_truncated_snappy_body_is_rejected_as_corrupt_snappy()
    {
        var body = Snappy(V1Message(GpuFleet()));

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(body.AsSpan(0, body.Length / 2), V1ContentType));

        Assert.StartsWith("snappy: corrupt input", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_body_is_rejected_at_byte_0_of_the_snappy_header()
    {
        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode([], V1ContentType));

        Assert.Contains("snappy: corrupt input: the length header ends at byte 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_declared_length_over_the_limit_is_rejected_before_decompressing()
    {
        // varint 0x80 0x80 0x80 0x20 = 64 MiB + ... : 0x20 << 21 = 67,108,864 = the limit exactly; 0x21 is over it.
        byte[] atLimit = [0x80, 0x80, 0x80, 0x20, 0x00];
        byte[] overLimit = [0x80, 0x80, 0x80, 0x21, 0x00];

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(overLimit, V1ContentType));
        Assert.Equal("snappy: declared uncompressed length 69206016 bytes exceeds the limit of 67108864 bytes", ex.Message);

        var small = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(Snappy(V1Message(GpuFleet())), V1ContentType, maxDecompressedBytes: 100));
        Assert.Contains("exceeds the limit of 100 bytes", small.Message, StringComparison.Ordinal);

        // At the limit, the header passes and the (absent) data is what fails.
        var corrupt = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(atLimit, V1ContentType));
        Assert.StartsWith("snappy: corrupt input", corrupt.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(RemoteWriteRequests.V1ContentType, "prometheus.WriteRequest")]
    [InlineData(RemoteWriteRequests.V2ContentType, "io.prometheus.write.v2.Request")]
    public void Garbage_protobuf_is_rejected_naming_the_message(string contentType, string message)
    {
        // Field 1 / field 5, length-delimited, declaring 2^28 bytes that are not there.
        byte[] garbage = contentType == V1ContentType ? [0x0A, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01] : [0x2A, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01];

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(Snappy(garbage), contentType));

        Assert.StartsWith($"protobuf: cannot decode {message}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_2_0_label_ref_outside_the_symbols_table_is_rejected_naming_the_series_and_ref()
    {
        var request = V2Message(GpuFleet());
        request.Timeseries[1].LabelsRefs[3] = 999;

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(Snappy(request), V2ContentType));

        Assert.Equal($"remote write 2.0: series 1 labels_refs[3] = 999 is outside the symbols table ({request.Symbols.Count} symbols)", ex.Message);
    }

    [Fact]
    public void A_2_0_series_with_an_odd_number_of_label_refs_is_rejected_naming_the_series()
    {
        var request = V2Message(GpuFleet());
        request.Timeseries[2].LabelsRefs.Add(1);

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(Snappy(request), V2ContentType));

        Assert.Contains("series 2 has an odd number of labels_refs (15)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_2_0_metadata_help_ref_outside_the_symbols_table_is_rejected()
    {
        var request = V2Message(GpuFleet());
        request.Timeseries[0].Metadata.HelpRef = 5000;

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(Snappy(request), V2ContentType));

        Assert.Contains("series 0 metadata.help_ref = 5000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_2_0_message_sent_as_1_0_decodes_to_nothing_rather_than_to_wrong_samples()
    {
        // Request reserves fields 1-3, so a 1.0 decoder sees an empty message (the "broken 1.0 receiver" case).
        var result = RemoteWriteDecoder.Decode(Snappy(V2Message(GpuFleet())), V1ContentType);

        Assert.Empty(result.Samples);
        Assert.Equal(0, result.SeriesCount);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Decoded_samples_match_the_generated_protobuf_parser_on_random_requests(int seed)
    {
        var random = new Random(seed);
        var data = Enumerable.Range(0, 200).Select(i => new SomeSeries(
            Enumerable.Range(0, random.Next(1, 8)).Select(l => ($"l{random.Next(20)}_{l}", random.Next(3) == 0 ? "" : $"v{random.Next(50)}é"))
                .Prepend(("__name__", $"m{random.Next(10)}")).ToArray(),
            Enumerable.Range(0, random.Next(0, 4)).Select(_ => ((long)random.NextInt64(-1L << 40, 1L << 45), BitConverter.Int64BitsToDouble(random.NextInt64()))).ToArray()))
            .ToArray();
        var v1 = V1Message(data);
        var v2 = V2Message(data);

        // The reference: Google.Protobuf's generated parser, labels sorted here.
        var expected = V1.WriteRequest.Parser.ParseFrom(v1.ToByteArray()).Timeseries.SelectMany(ts => ts.Samples.Select(s =>
            "{" + string.Join(",", ts.Labels.OrderBy(l => l.Name, StringComparer.Ordinal).Select(l => $"{l.Name}=\"{l.Value}\"")) + "} "
            + s.Timestamp + " " + BitConverter.DoubleToInt64Bits(s.Value).ToString("x16", System.Globalization.CultureInfo.InvariantCulture))).ToList();

        Assert.Equal(expected, RemoteWriteDecoder.Decode(Snappy(v1), V1ContentType).Samples.Select(Describe));
        Assert.Equal(expected, RemoteWriteDecoder.Decode(Snappy(v2), V2ContentType).Samples.Select(Describe));
    }

    [Fact]
    public void A_1_0_series_whose_labels_follow_its_samples_on_the_wire_keeps_its_labels()
    {
        // Concatenated encodings of one message merge (protobuf encoding spec), so this is one series, samples first.
        var samplesFirst = new V1.TimeSeries { Samples = { new V1.Sample { Timestamp = T0, Value = 42 } } }.ToByteArray()
            .Concat(new V1.TimeSeries { Labels = { new V1.Label { Name = "__name__", Value = "up" }, new V1.Label { Name = "job", Value = "dcgm" } } }.ToByteArray())
            .ToArray();
        var request = new byte[] { 0x0A, (byte)samplesFirst.Length }.Concat(samplesFirst).ToArray();

        var sample = Assert.Single(RemoteWriteDecoder.Decode(Snappy(request), V1ContentType).Samples);

        Assert.Equal(("up", "dcgm", T0, 42d), (sample.Name, sample.Get("job"), sample.TimestampMs, sample.Value));
    }

    [Fact]
    public void Unpacked_2_0_label_refs_decode_like_packed_ones()
    {
        // symbols ["", "__name__", "up"]; series: labels_refs 1, 2 as two varint fields, one sample (value 1, ts 5).
        byte[] request =
        [
            0x22, 0x00, 0x22, 0x08, .. "__name__"u8, 0x22, 0x02, .. "up"u8,
            0x2A, 0x11, 0x08, 0x01, 0x08, 0x02, 0x12, 0x0B, 0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x10, 0x05,
        ];

        var sample = Assert.Single(RemoteWriteDecoder.Decode(Snappy(request), V2ContentType).Samples);

        Assert.Equal(("up", 5L, 1d), (sample.Name, sample.TimestampMs, sample.Value));
    }

    [Fact]
    public void A_label_that_is_not_utf8_is_rejected_naming_its_byte_offset()
    {
        // WriteRequest { timeseries { labels { name: 0xFF } samples { } } }
        byte[] request = [0x0A, 0x07, 0x0A, 0x03, 0x0A, 0x01, 0xFF, 0x12, 0x00];

        var ex = Assert.Throws<InvalidTelemetryException>(() => RemoteWriteDecoder.Decode(Snappy(request), V1ContentType));

        Assert.Equal("protobuf: cannot decode prometheus.WriteRequest: invalid UTF-8 in a label name at byte 6", ex.Message);
    }

    [Theory]
    [InlineData(RemoteWriteRequests.V1ContentType)]
    [InlineData(RemoteWriteRequests.V2ContentType)]
    public void An_empty_message_decodes_to_nothing(string contentType)
    {
        // An empty protobuf message is zero bytes; Snappy makes it the single length byte 0x00.
        var result = RemoteWriteDecoder.Decode(Snappy(Array.Empty<byte>()), contentType);

        Assert.Equal((0, 0, 0), (result.SampleCount, result.SeriesCount, result.MetadataCount));
    }
    [Fact]
    public void A_series_sent_again_decodes_to_the_same_samples_through_the_series_cache_sharing_one_label_array()
    {
        var cache = new RemoteWriteSeriesCache();
        var body = Snappy(V1Message(SortedGpuFleet()));

        var first = RemoteWriteDecoder.Decode(body, V1ContentType, seriesCache: cache);
        var second = RemoteWriteDecoder.Decode(body, V1ContentType, seriesCache: cache);

        Assert.Equal(DecodeV1(GpuFleet()).Samples.Select(Describe), first.Samples.Select(Describe));
        Assert.Equal(first.Samples.Select(Describe), second.Samples.Select(Describe));
        Assert.Same(first.Samples[0].Labels, second.Samples[0].Labels);
        Assert.Equal((3, 3L, 3L), (cache.Count, cache.Misses, cache.Hits));
    }

    [Fact]
    public void A_series_whose_label_bytes_differ_in_one_value_is_not_taken_from_the_cache()
    {
        var cache = new RemoteWriteSeriesCache();
        RemoteWriteDecoder.Decode(Snappy(V1Message(SortedGpuFleet())), V1ContentType, seriesCache: cache);
        var moved = SortedGpuFleet().Select(s => s with { Labels = [.. s.Labels.Select(l => l.Name == "pod" ? (l.Name, "train-1") : l)] }).ToArray();

        var result = RemoteWriteDecoder.Decode(Snappy(V1Message(moved)), V1ContentType, seriesCache: cache);

        Assert.Equal(DecodeV1(moved).Samples.Select(Describe), result.Samples.Select(Describe));
        Assert.All(result.Samples, s => Assert.Equal("train-1", s.Get("pod")));
        Assert.Equal(0L, cache.Hits);
    }

    /// <summary>The test fleet with each series' labels sorted by name, as Prometheus sends them.</summary>
    private static SomeSeries[] SortedGpuFleet() =>
        [.. GpuFleet().Select(s => s with { Labels = [.. s.Labels.OrderBy(l => l.Name, StringComparer.Ordinal)] })];

    [Fact]
    public void A_cache_entry_under_a_colliding_hash_is_checked_against_the_bytes_and_not_used()
    {
        var a = new SomeSeries([("__name__", "up"), ("job", "a")], [(T0, 1)]);
        var b = new SomeSeries([("__name__", "up"), ("job", "b")], [(T0, 2)]);
        // The label fields of a TimeSeries without samples are exactly its encoding.
        var bFields = V1Message([b with { Samples = [] }]).Timeseries[0].ToByteArray();
        var aFields = V1Message([a with { Samples = [] }]).Timeseries[0].ToByteArray();
        var cache = new RemoteWriteSeriesCache();
        cache.Add(aFields, RemoteWriteSeriesCache.Hash(bFields), DecodeV1([a]).Samples[0].Labels);

        var sample = Assert.Single(RemoteWriteDecoder.Decode(Snappy(V1Message([b])), V1ContentType, seriesCache: cache).Samples);

        Assert.Equal(("b", 2d), (sample.Get("job"), sample.Value));
        Assert.Equal((0L, 1L), (cache.Hits, cache.Misses));
    }

    [Fact]
    public void Unsorted_and_non_ascii_series_are_cached_and_decode_the_same()
    {
        var cache = new RemoteWriteSeriesCache();
        SomeSeries[] data =
        [
            new([("pod", "train-0"), ("__name__", "up")], [(T0, 1)]),
            new([("__name__", "up"), ("team", "forsøg")], [(T0, 2)]),
        ];

        for (var i = 0; i < 2; i++)
            Assert.Equal(DecodeV1(data).Samples.Select(Describe), RemoteWriteDecoder.Decode(Snappy(V1Message(data)), V1ContentType, seriesCache: cache).Samples.Select(Describe));

        Assert.Equal((2, 2L), (cache.Count, cache.Hits));
    }

    [Fact]
    public void The_series_cache_never_holds_more_than_its_byte_bound()
    {
        var data = Enumerable.Range(0, 5).Select(i => new SomeSeries([("__name__", "up"), ("job", $"j{i}")], [(T0, i)])).ToArray();
        var entry = V1Message([data[0] with { Samples = [] }]).Timeseries[0].CalculateSize() + 96;
        var cache = new RemoteWriteSeriesCache(maxBytes: 2 * entry);

        for (var round = 0; round < 3; round++)
        {
            var result = RemoteWriteDecoder.Decode(Snappy(V1Message(data)), V1ContentType, seriesCache: cache);
            Assert.Equal(DecodeV1(data).Samples.Select(Describe), result.Samples.Select(Describe));
            Assert.InRange(cache.Bytes, entry, 2 * entry);
            Assert.InRange(cache.Count, 1, 2);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public void Random_requests_decoded_twice_through_one_cache_match_the_generated_parser(int seed)
    {
        var random = new Random(seed);
        var cache = new RemoteWriteSeriesCache();
        for (var request = 0; request < 3; request++)
        {
            // Few distinct values, so series repeat within and across requests.
            var data = Enumerable.Range(0, 100).Select(i => new SomeSeries(
                Enumerable.Range(0, random.Next(1, 6)).Select(l => ($"l{l}", $"v{random.Next(4)}"))
                    .Prepend(("__name__", $"m{random.Next(3)}")).OrderBy(l => l.Item1, StringComparer.Ordinal).ToArray(),
                Enumerable.Range(0, random.Next(0, 3)).Select(_ => (random.NextInt64(1L << 40), (double)random.Next())).ToArray()))
                .ToArray();
            var v1 = V1Message(data);
            var expected = V1.WriteRequest.Parser.ParseFrom(v1.ToByteArray()).Timeseries.SelectMany(ts => ts.Samples.Select(s =>
                "{" + string.Join(",", ts.Labels.Select(l => $"{l.Name}=\"{l.Value}\"")) + "} "
                + s.Timestamp + " " + BitConverter.DoubleToInt64Bits(s.Value).ToString("x16", System.Globalization.CultureInfo.InvariantCulture))).ToList();

            for (var pass = 0; pass < 2; pass++)
                Assert.Equal(expected, RemoteWriteDecoder.Decode(Snappy(v1), V1ContentType, seriesCache: cache).Samples.Select(Describe));
        }
        Assert.True(cache.Hits > cache.Misses, $"{cache.Hits} hits, {cache.Misses} misses");
    }
}
