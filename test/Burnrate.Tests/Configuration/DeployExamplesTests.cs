using Burnrate.Configuration;
using Burnrate.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Burnrate.Tests.Configuration;

/// <summary>The example files in <c>deploy/</c> are what a new user copies: they must load as they are.</summary>
public sealed class DeployExamplesTests
{
    [Fact]
    public void The_example_burnrate_config_loads_with_its_scrape_targets_and_ingest_settings()
    {
        var config = BurnrateConfig.Load(Path.Combine(PricingTestPaths.RepoRoot(), "deploy", "burnrate.yaml"));

        var targets = config.ToScrapeTargets();
        Assert.Equal(3, targets.Count);
        Assert.Equal(new Uri("http://10.0.1.23:9400/metrics"), targets[0].Url);
        Assert.Equal("10.0.1.23:9400", targets[0].Instance);
        Assert.Equal(TimeSpan.FromSeconds(30), targets[2].Interval);
        Assert.Equal(TimeSpan.FromHours(1), config.ToIngestOptions().WalRetention);
        Assert.Contains("trainer_global_step", config.ToMapperOptions().StepMetrics);
    }

    [Fact]
    public void The_example_prometheus_snippet_remote_writes_to_the_burnrate_receiver_and_keeps_what_the_mapper_reads()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(PricingTestPaths.RepoRoot(), "deploy", "prometheus-remote-write.yml")))
            yaml.Load(reader);
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var target = (YamlMappingNode)((YamlSequenceNode)root["remote_write"])[0];

        Assert.EndsWith("/api/v1/write", ((YamlScalarNode)target["url"]).Value, StringComparison.Ordinal);
        var keep = (YamlMappingNode)((YamlSequenceNode)target["write_relabel_configs"])[0];
        var regex = new System.Text.RegularExpressions.Regex("^(?:" + ((YamlScalarNode)keep["regex"]).Value + ")$");
        foreach (var name in new[] { "DCGM_FI_DEV_GPU_UTIL", "kube_node_labels", "kube_pod_info", "kube_pod_container_resource_requests", "node_network_transmit_bytes_total", "vllm:generation_tokens_total", "training_steps_total" })
            Assert.Matches(regex, name);
        Assert.DoesNotMatch(regex, "node_cpu_seconds_total");
    }
}
