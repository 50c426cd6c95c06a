using System.Globalization;
using System.Text;
using Burnrate.Protocols.Exposition;
using Burnrate.Telemetry;

namespace Burnrate.Tests.Protocols;

public sealed class ExpositionParserTests
{
    private const long ScrapeMs = 1_763_823_660_000;

    private static ExpositionResult Parse(string text, bool strict = true) =>
        new ExpositionParser(strict).Parse(Encoding.UTF8.GetBytes(text), ScrapeMs);

    private static ExpositionResult ParseFixture(string name) =>
        new ExpositionParser(strict: true).Parse(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Protocols", "Fixtures", name)), ScrapeMs);

    private static MetricSample Single(ExpositionResult result, string name, params (string Name, string Value)[] match) =>
        Assert.Single(result.Samples, s => s.Name == name && match.All(m => s.Get(m.Name) == m.Value));

    [Fact]
    public void Dcgm_page_of_two_gpus_yields_every_sample_with_its_gpu_identity_and_pod()
    {
        var result = ParseFixture("dcgm-gpus.prom");

        Assert.Equal(18, result.Samples.Count);
        Assert.Equal(9, result.Metadata.Count);
        Assert.Empty(result.Errors);
        var power = Single(result, "DCGM_FI_DEV_POWER_USAGE", ("gpu", "0"));
        Assert.Equal(302.206, power.Value);
        Assert.Equal("GPU-a4f34abc-7715-3560-dcea-7238b9611a45", power.Get("UUID"));
        Assert.Equal("gpu-node-a1", power.Get("Hostname"));
        Assert.Equal("llama-serve-7d9f8c6b5-x2kqp", power.Get("pod"));
        Assert.Equal("550.90.07", power.Get("DCGM_FI_DRIVER_VERSION"));
        Assert.Equal(ScrapeMs, power.TimestampMs);
        Assert.Equal("", Single(result, "DCGM_FI_DEV_GPU_UTIL", ("gpu", "1")).Get("pod"));
        Assert.Equal(new MetricMetadata("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", ""),
            result.Metadata.Single(m => m.MetricFamily == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"));
    }

    [Fact]
    public void Dcgm_not_available_sentinel_passes_through_unchanged()
    {
        var result = ParseFixture("dcgm-gpus.prom");

        Assert.Equal(9223372036854775794d, Single(result, "DCGM_FI_DEV_MEMORY_TEMP", ("gpu", "1")).Value);
        Assert.True(Single(result, "DCGM_FI_DEV_MEMORY_TEMP", ("gpu", "1")).Value >= 9.22e18);
    }

    [Fact]
    public void Dcgm_mig_page_identifies_each_slice_by_parent_uuid_and_instance_id()
    {
        var result = ParseFixture("dcgm-mig.prom");

        Assert.Equal(8, result.Samples.Count);
        var used = Single(result, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", ("GPU_I_ID", "1"));
        Assert.Equal("3g.40gb", used.Get("GPU_I_PROFILE"));
        Assert.Equal("GPU-ed1353d6-52ba-8793-7230-4d5d3eb68167", used.Get("UUID"));
        Assert.Equal("train-resnet-0", used.Get("pod"));
        Assert.Equal(0.734512, used.Value);
        Assert.Equal(40295, Single(result, "DCGM_FI_DEV_FB_FREE", ("GPU_I_PROFILE", "4g.40gb")).Value);
    }

    [Fact]
    public void Kube_state_metrics_page_yields_node_labels_pod_identity_and_gpu_and_mig_requests()
    {
        var result = ParseFixture("kube-state-metrics.prom");

        Assert.Equal(16, result.Samples.Count);
        Assert.Equal(7, result.Metadata.Count);
        Assert.Equal("spot", Single(result, "kube_node_labels", ("node", "ip-10-0-1-23.ec2.internal")).Get("label_karpenter_sh_capacity_type"));
        Assert.Equal("ON_DEMAND", Single(result, "kube_node_labels", ("node", "ip-10-0-2-41.ec2.internal")).Get("label_eks_amazonaws_com_capacity_type"));
        Assert.Equal(1, Single(result, "kube_pod_container_resource_requests", ("pod", "llama-serve-7d9f8c6b5-x2kqp"), ("resource", "nvidia_com_gpu")).Value);
        Assert.Equal(6.8719476736e10, Single(result, "kube_pod_container_resource_requests", ("resource", "memory")).Value);
        Assert.Equal("trainer", Single(result, "kube_pod_container_resource_requests", ("resource", "nvidia_com_mig_3g_40gb")).Get("container"));
        Assert.Equal("ip-10-0-2-41.ec2.internal", Single(result, "kube_pod_info", ("pod", "train-resnet-0")).Get("node"));
        Assert.Equal("search-inference", Single(result, "kube_pod_annotations").Get("annotation_burnrate_io_budget"));
        Assert.Equal("cc-1042", Single(result, "kube_pod_labels", ("pod", "llama-serve-7d9f8c6b5-x2kqp")).Get("label_cost_center"));
        Assert.Equal(1.217623e12, Single(result, "kube_node_status_capacity", ("resource", "memory")).Value);
    }

    [Fact]
    public void Node_exporter_page_yields_network_counters_and_boot_time()
    {
        var result = ParseFixture("node-exporter.prom");

        Assert.Equal(12, result.Samples.Count);
        Assert.Equal(8.73141902217e11, Single(result, "node_network_transmit_bytes_total", ("device", "eth0")).Value);
        var boot = Single(result, "node_boot_time_seconds");
        Assert.Equal(1.763791245e9, boot.Value);
        Assert.Equal([new Label("__name__", "node_boot_time_seconds")], boot.Labels);
        Assert.Equal("counter", result.Metadata.Single(m => m.MetricFamily == "node_network_transmit_bytes_total").Type);
    }

    [Fact]
    public void Vllm_page_yields_token_counters_by_model_and_histogram_series_as_plain_samples()
    {
        var result = ParseFixture("vllm.prom");

        Assert.Equal(17, result.Samples.Count);
        Assert.Equal(1_843_502, Single(result, "vllm:prompt_tokens_total").Value);
        Assert.Equal(27453, Single(result, "vllm:generation_tokens_total").Value);
        Assert.Equal("meta-llama/Llama-3.1-8B-Instruct", Single(result, "vllm:generation_tokens_total").Get("model_name"));
        Assert.Equal(131, Single(result, "vllm:request_success_total", ("finished_reason", "length")).Value);
        Assert.Equal(140, Single(result, "vllm:time_to_first_token_seconds_bucket", ("le", "+Inf")).Value);
        Assert.Equal(97, Single(result, "vllm:time_to_first_token_seconds_bucket", ("le", "0.1")).Value);
        Assert.Equal(140, Single(result, "vllm:time_to_first_token_seconds_count").Value);
        Assert.Equal(9.274310827255249, Single(result, "vllm:time_to_first_token_seconds_sum").Value);
        Assert.Equal("histogram", result.Metadata.Single(m => m.MetricFamily == "vllm:time_to_first_token_seconds").Type);
    }

    [Fact]
    public void Labels_are_sorted_by_name_with_the_metric_name_as_a_label()
    {
        var sample = Assert.Single(Parse("m{zeta=\"1\",alpha=\"2\",Beta=\"3\"} 4\n").Samples);

        Assert.Equal(["Beta", "__name__", "alpha", "zeta"], sample.Labels.Select(l => l.Name));
        Assert.Equal("m", sample.Name);
    }

    [Fact]
    public void Label_value_escapes_are_decoded()
    {
        var sample = Assert.Single(Parse("m{a=\"say \\\"hi\\\"\",b=\"C:\\\\dir\",c=\"two\\nlines\",d=\"keep \\t\"} 1\n").Samples);

        Assert.Equal("say \"hi\"", sample.Get("a"));
        Assert.Equal("C:\\dir", sample.Get("b"));
        Assert.Equal("two\nlines", sample.Get("c"));
        Assert.Equal("keep \\t", sample.Get("d"));
    }

    [Fact]
    public void Help_escapes_are_decoded_and_a_quote_is_kept_as_written()
    {
        var result = Parse("# HELP m A \\\\ backslash,\\na newline and a \\\" quote.\n# TYPE m counter\nm 1\n");

        Assert.Equal(new MetricMetadata("m", "counter", "A \\ backslash,\na newline and a \\\" quote.", ""), Assert.Single(result.Metadata));
    }

    [Fact]
    public void Help_with_no_text_is_empty_and_a_family_without_type_is_untyped()
    {
        var result = Parse("# HELP TEST_METRIC \nTEST_METRIC{gpu=\"0\",pci_bus_id=\"\"} 42\n");

        Assert.Equal(new MetricMetadata("TEST_METRIC", "untyped", "", ""), Assert.Single(result.Metadata));
        Assert.Equal("", Assert.Single(result.Samples).Get("pci_bus_id"));
    }

    [Theory]
    [InlineData("NaN", double.NaN)]
    [InlineData("nan", double.NaN)]
    [InlineData("+Inf", double.PositiveInfinity)]
    [InlineData("-Inf", double.NegativeInfinity)]
    [InlineData("Inf", double.PositiveInfinity)]
    [InlineData("1.5e-3", 0.0015)]
    [InlineData("-2E+09", -2e9)]
    [InlineData("2e+09", 2e9)]
    [InlineData(".5", 0.5)]
    [InlineData("302.206000", 302.206)]
    [InlineData("9223372036854775794", 9223372036854775794d)]
    public void Special_and_scientific_values_parse(string written, double expected)
    {
        Assert.Equal(expected, Assert.Single(Parse($"m {written}\n").Samples).Value);
    }

    [Fact]
    public void A_line_timestamp_wins_over_the_scrape_time()
    {
        var samples = Parse("a 1 1700000000123\nb{x=\"y\"} 2\nc 3 -5\n").Samples;

        Assert.Equal(1_700_000_000_123, samples[0].TimestampMs);
        Assert.Equal(ScrapeMs, samples[1].TimestampMs);
        Assert.Equal(-5, samples[2].TimestampMs);
    }

    [Fact]
    public void Crlf_line_ends_trailing_whitespace_tabs_and_blank_lines_are_accepted()
    {
        var result = Parse("# TYPE m gauge\r\n\r\nm{a=\"1\"} 1 \t\r\n  \r\nm{a=\"2\"}\t2\t1700000000000  \r\n# just a comment\r\nn 3");

        Assert.Equal(3, result.Samples.Count);
        Assert.Equal("1", result.Samples[0].Get("a"));
        Assert.Equal(1_700_000_000_000, result.Samples[1].TimestampMs);
        Assert.Equal(3, result.Samples[2].Value);
        Assert.Equal("gauge", Assert.Single(result.Metadata).Type);
    }

    [Fact]
    public void Trailing_comma_spaces_around_labels_and_an_empty_label_set_are_accepted()
    {
        var samples = Parse("m{gpu=\"0\", UUID=\"GPU-1\",} 1\nn{} 2\no{ a = \"b\" } 3\n").Samples;

        Assert.Equal("GPU-1", samples[0].Get("UUID"));
        Assert.Single(samples[1].Labels);
        Assert.Equal("b", samples[2].Get("a"));
    }

    [Theory]
    [InlineData("m{a=\"1\" 1\n", 9, "expected ',' or '}'")]
    [InlineData("m{a=1} 1\n", 5, "expected '\"' to open the value of label 'a'")]
    [InlineData("m{a=\"1} 1\n", 10, "expected '\"' to close the value of label 'a'")]
    [InlineData("m{1a=\"x\"} 1\n", 3, "expected a label name or '}'")]
    [InlineData("m one\n", 3, "expected a sample value")]
    [InlineData("m 1 12.5\n", 5, "expected a timestamp in integer milliseconds")]
    [InlineData("m 1 2 3\n", 7, "expected the end of the line")]
    [InlineData("m\n", 2, "expected a value after the metric name")]
    [InlineData("0m 1\n", 1, "expected a metric name")]
    [InlineData("m{a=\"1\",a=\"2\"} 1\n", 16, "'a' appears twice")]
    [InlineData("# TYPE m info\n", 10, "expected a metric type")]
    [InlineData("# HELP\n", 7, "expected a metric name after '# HELP'")]
    public void Strict_mode_names_the_line_and_column_of_the_first_bad_line(string badLine, int column, string expected)
    {
        var error = Assert.Throws<InvalidTelemetryException>(() => Parse("# TYPE ok gauge\nok 1\n" + badLine + "ok 2\n"));

        Assert.Contains($"line 3, column {column}: ", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Lenient_mode_keeps_the_good_lines_and_reports_each_bad_one()
    {
        var result = Parse("a 1\nb{x=\"1\" 2\nc 3\nd notanumber\ne 5\n", strict: false);

        Assert.Equal(["a", "c", "e"], result.Samples.Select(s => s.Name));
        Assert.Equal(2, result.SkippedLines);
        Assert.Collection(result.Errors,
            e => Assert.Equal((2, 9), (e.Line, e.Column)),
            e => Assert.Equal((4, 3), (e.Line, e.Column)));
        Assert.Contains("expected a sample value", result.Errors[1].Reason);
    }

    [Fact]
    public void Lenient_mode_lists_a_bounded_number_of_errors_but_counts_them_all()
    {
        var result = Parse(string.Concat(Enumerable.Repeat("garbage{\n", 500)) + "ok 1\n", strict: false);

        Assert.Equal(ExpositionParser.MaxReportedErrors, result.Errors.Count);
        Assert.Equal(500, result.SkippedLines);
        Assert.Single(result.Samples);
    }

    [Fact]
    public void Invalid_utf8_in_a_label_value_is_rejected()
    {
        byte[] page = [.. "m{a=\""u8, 0xFF, 0xFE, .. "\"} 1\n"u8];

        var result = new ExpositionParser().Parse(page, ScrapeMs);

        Assert.Empty(result.Samples);
        Assert.Contains("UTF-8", Assert.Single(result.Errors).Reason);
    }

    [Fact]
    public void Try_read_line_consumes_a_bad_line_whole_so_the_caller_can_step_over_it()
    {
        var parser = new ExpositionParser();
        ReadOnlySpan<byte> page = "m{a=\"1\" 1\r\nn 2\n"u8;

        Assert.False(parser.TryReadLine(page, ScrapeMs, out var bad, out var consumed));
        Assert.Equal(ExpositionLineKind.Invalid, bad.Kind);
        Assert.Equal(11, consumed);
        Assert.True(parser.TryReadLine(page[consumed..], ScrapeMs, out var good, out consumed));
        Assert.Equal("n", good.Sample.Name);
        Assert.Equal(4, consumed);
    }

    [Fact]
    public void Repeated_names_and_values_are_the_same_string_instance()
    {
        var samples = Parse("m{node=\"gpu-node-a1\"} 1\nm{node=\"gpu-node-a1\"} 2\n").Samples;

        Assert.Same(samples[0].Name, samples[1].Name);
        Assert.Same(samples[0].Get("node"), samples[1].Get("node"));
    }

    [Fact]
    public void Random_series_with_nasty_label_values_survive_a_write_and_parse_round_trip()
    {
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var expected = new List<MetricSample>();
            var page = new StringBuilder();
            for (var i = random.Next(1, 20); i > 0; i--)
            {
                var sample = RandomSample(random);
                expected.Add(sample);
                WriteSample(page, sample, random);
            }

            var parsed = new ExpositionParser(strict: true).Parse(Encoding.UTF8.GetBytes(page.ToString()), ScrapeMs).Samples;

            Assert.Equal(expected.Count, parsed.Count);
            for (var i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i].Labels, parsed[i].Labels);
                Assert.Equal(expected[i].TimestampMs, parsed[i].TimestampMs);
                Assert.Equal(expected[i].Value, parsed[i].Value);
            }
        }
    }

    private static readonly string[] s_nastyPieces = ["\"", "\\", "\n", "\\n", "\\\"", ",", "}", "{", "=", " ", "\t", "#", "é", "日本", "🙂", "\r", "le", "+Inf", ""];

    private static MetricSample RandomSample(Random random)
    {
        const string first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
        const string rest = first + "0123456789";
        string Name(string firstChars, string restChars) =>
            firstChars[random.Next(firstChars.Length)] + new string(Enumerable.Range(0, random.Next(0, 12)).Select(_ => restChars[random.Next(restChars.Length)]).ToArray());

        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [MetricSample.NameLabel] = Name(first + ":", rest + ":") };
        for (var i = random.Next(0, 6); i > 0; i--)
        {
            var name = Name(first, rest);
            if (name.StartsWith("__", StringComparison.Ordinal))
                continue;
            labels[name] = string.Concat(Enumerable.Range(0, random.Next(0, 5)).Select(_ => s_nastyPieces[random.Next(s_nastyPieces.Length)]));
        }
        var value = random.Next(8) switch
        {
            0 => double.NaN,
            1 => double.PositiveInfinity,
            2 => double.NegativeInfinity,
            3 => 9223372036854775794d,
            4 => random.Next(-1000, 1000),
            _ => (random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-300, 300)),
        };
        var timestamp = random.Next(2) == 0 ? ScrapeMs : random.NextInt64(-1_000_000_000_000, 4_000_000_000_000);
        return new MetricSample([.. labels.Select(l => new Label(l.Key, l.Value)).OrderBy(l => l.Name, StringComparer.Ordinal)], timestamp, value);
    }

    // A tiny exposition writer: labels in random order, random blanks, a trailing comma sometimes, the timestamp
    // written only when it differs from the scrape time.
    private static void WriteSample(StringBuilder page, MetricSample sample, Random random)
    {
        page.Append(sample.Name);
        var labels = sample.Labels.Where(l => l.Name != MetricSample.NameLabel).OrderBy(_ => random.Next()).ToList();
        if (labels.Count > 0 || random.Next(4) == 0)
        {
            page.Append('{');
            for (var i = 0; i < labels.Count; i++)
            {
                if (i > 0)
                    page.Append(random.Next(3) == 0 ? ", " : ",");
                page.Append(labels[i].Name).Append("=\"")
                    .Append(labels[i].Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal))
                    .Append('"');
            }
            if (labels.Count > 0 && random.Next(4) == 0)
                page.Append(',');
            page.Append('}');
        }
        page.Append(random.Next(3) == 0 ? "\t" : " ");
        page.Append(sample.Value switch
        {
            double.PositiveInfinity => "+Inf",
            double.NegativeInfinity => "-Inf",
            var v when double.IsNaN(v) => "NaN",
            var v => v.ToString("R", CultureInfo.InvariantCulture),
        });
        if (sample.TimestampMs != ScrapeMs)
            page.Append(' ').Append(sample.TimestampMs.ToString(CultureInfo.InvariantCulture));
        page.Append(random.Next(4) == 0 ? " \r\n" : "\n");
    }
}
