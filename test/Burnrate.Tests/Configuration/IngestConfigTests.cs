using Burnrate.Configuration;

namespace Burnrate.Tests.Configuration;

/// <summary>The <c>ingest</c>, <c>telemetry</c> and <c>scrape</c> sections: what they become, and errors that name the key.</summary>
public sealed class IngestConfigTests
{
    [Fact]
    public void The_ingest_telemetry_and_scrape_sections_become_options_and_targets()
    {
        var config = BurnrateConfig.Parse("""
            ingest:
              queue_capacity: 5000
              wal_retention: 2h
              wal_fsync: true
            telemetry:
              step_metrics: [trainer_steps_total]
              sample_metrics: [trainer_samples_total, images_seen_total]
              default_provider: GCP
              time_sliced_by_allocation: false
              pod_staleness: 90s
            scrape:
              interval: 30s
              timeout: 5s
              jobs:
                - job: dcgm-exporter
                  targets: ["10.0.1.23:9400", "https://dcgm.example/custom/metrics"]
                - job: vllm
                  targets: [10.244.1.17:8000]
                  metrics_path: stats
                  interval: 1m
                  timeout: 20s
            """, "burnrate.yaml");

        var ingest = config.ToIngestOptions();
        Assert.Equal(5000, ingest.QueueCapacity);
        Assert.Equal(TimeSpan.FromHours(2), ingest.WalRetention);
        Assert.True(config.Ingest.WalFsync);

        var mapper = config.ToMapperOptions();
        Assert.Equal(["trainer_steps_total"], mapper.StepMetrics);
        Assert.Equal(["trainer_samples_total", "images_seen_total"], mapper.SampleMetrics);
        Assert.Equal("gcp", mapper.DefaultProvider);
        Assert.False(mapper.TimeSlicedByAllocation);
        Assert.Equal(TimeSpan.FromSeconds(90), mapper.PodStaleness);

        var targets = config.ToScrapeTargets();
        Assert.Equal(3, targets.Count);
        // A bare host:port gets http:// and the metrics path; a full URL is used as written.
        Assert.Equal(("dcgm-exporter", "http://10.0.1.23:9400/metrics", "10.0.1.23:9400", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5)),
            (targets[0].Job, targets[0].Url.ToString(), targets[0].Instance, targets[0].Interval, targets[0].Timeout));
        Assert.Equal(("https://dcgm.example/custom/metrics", "dcgm.example:443"), (targets[1].Url.ToString(), targets[1].Instance));
        Assert.Equal(("vllm", "http://10.244.1.17:8000/stats", TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(20)),
            (targets[2].Job, targets[2].Url.ToString(), targets[2].Interval, targets[2].Timeout));
    }

    [Fact]
    public void Without_the_sections_the_defaults_apply_and_nothing_is_scraped()
    {
        var config = BurnrateConfig.Parse("rating:\n  grace: 30s\n");

        Assert.Equal(2_000_000, config.ToIngestOptions().QueueCapacity);
        Assert.Equal(TimeSpan.FromHours(1), config.ToIngestOptions().WalRetention);
        Assert.False(config.Ingest.WalFsync);
        Assert.Equal(new Burnrate.Telemetry.Mapping.TelemetryMapperOptions().StepMetrics, config.ToMapperOptions().StepMetrics);
        Assert.Equal("aws", config.ToMapperOptions().DefaultProvider);
        Assert.Empty(config.ToScrapeTargets());
    }

    [Fact]
    public void A_timeout_above_the_interval_is_capped_at_the_interval()
    {
        var config = BurnrateConfig.Parse("""
            scrape:
              interval: 10s
              timeout: 30s
              jobs:
                - job: a
                  targets: ["127.0.0.1:9100"]
                - job: b
                  targets: ["127.0.0.1:9101"]
                  interval: 5s
                  timeout: 1m
            """);

        Assert.Equal([(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10)), (TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5))],
            config.ToScrapeTargets().Select(t => (t.Interval, t.Timeout)));
    }

    [Theory]
    [InlineData("scrape:\n  jobs:\n    - job: dcgm\n      targets: []\n", "scrape.jobs[0].targets is empty")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n    - targets: [\"h:2\"]\n", "scrape.jobs[1].job is required")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n      interval: soon\n", "scrape.jobs[0].interval: 'soon' is not a duration")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n      timeout: 5 parsecs\n", "scrape.jobs[0].timeout: '5 parsecs' is not a duration")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      targets: [\"ftp://h:21/metrics\"]\n", "scrape.jobs[0].targets: 'ftp://h:21/metrics' is not host:port or an http(s) URL")]
    [InlineData("scrape:\n  interval: 1x\n", "scrape.interval: '1x' is not a duration")]
    [InlineData("scrape:\n  timeout: never\n", "scrape.timeout: 'never' is not a duration")]
    [InlineData("ingest:\n  wal_retention: forever\n", "ingest.wal_retention: 'forever' is not a duration")]
    [InlineData("ingest:\n  queue_capacity: 0\n", "ingest.queue_capacity must be at least 1, got 0")]
    [InlineData("telemetry:\n  pod_staleness: 2 minutes\n", "telemetry.pod_staleness: '2 minutes' is not a duration")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n      interval: 0s\n", "scrape.jobs[0].interval must be positive")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n      timeout: 0s\n", "scrape.jobs[0].timeout must be positive")]
    [InlineData("scrape:\n  interval: 0s\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n", "scrape.interval must be positive")]
    [InlineData("scrape:\n  timeout: 0s\n  jobs:\n    - job: a\n      targets: [\"h:1\"]\n", "scrape.timeout must be positive")]
    public void A_bad_value_is_an_error_naming_its_key(string yaml, string message)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml, "burnrate.yaml"));

        Assert.StartsWith("burnrate.yaml: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ingest:\n  queue_size: 10\n", 2, "queue_size")]
    [InlineData("telemetry:\n  step_metric: [x]\n", 2, "step_metric")]
    [InlineData("scrape:\n  jobs:\n    - job: a\n      target: [\"h:1\"]\n", 4, "target")]
    public void An_unknown_key_in_the_new_sections_is_an_error_naming_its_line_and_key(string yaml, int line, string key)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml, "burnrate.yaml"));

        Assert.StartsWith($"burnrate.yaml:{line}:", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{key}'", e.Message, StringComparison.Ordinal);
    }
}
