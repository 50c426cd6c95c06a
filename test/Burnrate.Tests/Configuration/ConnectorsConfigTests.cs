using Burnrate.Configuration;
using Burnrate.Connectors.Slurm;
using Burnrate.Pricing;

namespace Burnrate.Tests.Configuration;

/// <summary>The <c>connectors.slurm</c> section: what it becomes, and errors that name the key.</summary>
public sealed class ConnectorsConfigTests
{
    [Fact]
    public void The_slurm_section_becomes_options_with_gpu_rates_on_prem_and_cloud_node_types()
    {
        var config = BurnrateConfig.Parse("""
            connectors:
              slurm:
                cluster: hpc1
                interval: 30s
                lookback: 6h
                format: parsable
                bin_dir: /opt/slurm/bin
                account_as: team
                gpu_rates: { A100: "2.10", default: 1.25 }
                node_types:
                  - nodes: "dgx[01-04]"
                    type: dgx-a100
                    gpus: 8
                    gpu_model: A100
                    gpu_hour: "2.40"
                    node_hour: "1.50"
                  - nodes: "aws-*"
                    provider: AWS
                    region: us-east-1
                    instance_type: p4d.24xlarge
                    capacity: spot
            """, "burnrate.yaml");

        var slurm = config.Connectors.ToSlurmOptions("/data/connectors/slurm.json")!;
        Assert.Equal(("hpc1", TimeSpan.FromSeconds(30), TimeSpan.FromHours(6), SlurmFormat.Parsable, "/opt/slurm/bin", "team", "/data/connectors/slurm.json"),
            (slurm.Cluster, slurm.Interval, slurm.Lookback, slurm.Format, slurm.BinDir, slurm.AccountAs, slurm.StateFile));
        Assert.Equal(2.10m, slurm.GpuRate("a100"));
        Assert.Equal(1.25m, slurm.GpuRate("h100")); // default
        var dgx = slurm.TypeOf("dgx03")!;
        Assert.Equal(("dgx-a100", 8, 2.40m, 1.50m, (string?)null), (dgx.Type, dgx.Gpus, dgx.GpuHour, dgx.NodeHour, dgx.Provider));
        var cloud = slurm.TypeOf("aws-gpu-7")!;
        Assert.Equal(("aws", "us-east-1", "p4d.24xlarge", CapacityType.Spot), (cloud.Provider, cloud.Region, cloud.InstanceType, cloud.Capacity));
        Assert.Null(slurm.TypeOf("dgx05"));
    }

    [Fact]
    public void Without_the_section_or_when_disabled_there_is_no_slurm_connector()
    {
        Assert.Null(BurnrateConfig.Parse("rating:\n  grace: 30s\n").Connectors.ToSlurmOptions());
        Assert.Null(BurnrateConfig.Parse("connectors:\n  slurm:\n    enabled: false\n").Connectors.ToSlurmOptions());
        var defaults = BurnrateConfig.Parse("connectors:\n  slurm: {}\n").Connectors.ToSlurmOptions()!;
        Assert.Equal((TimeSpan.FromSeconds(15), SlurmFormat.Auto, "onprem", "project"), (defaults.Interval, defaults.Format, defaults.Provider, defaults.AccountAs));
    }

    [Theory]
    [InlineData("format: xml", "connectors.slurm.format must be auto, json or parsable, got 'xml'")]
    [InlineData("interval: 0s", "connectors.slurm.interval must be positive")]
    [InlineData("gpu_rates: { A100: cheap }", "connectors.slurm.gpu_rates.A100 must be a number >= 0 in dollars")]
    [InlineData("node_types: [{ gpus: 8 }]", "connectors.slurm.node_types[0].nodes is required")]
    [InlineData("node_types: [{ nodes: \"gpu[01-\" }]", "connectors.slurm.node_types[0].nodes: host list 'gpu[01-': unbalanced brackets")]
    [InlineData("node_types: [{ nodes: \"a*\", provider: aws, region: us-east-1 }]", "connectors.slurm.node_types[0]: a cloud node type (provider: aws) needs region and instance_type")]
    [InlineData("node_types: [{ nodes: \"a*\", provider: aws, region: r, instance_type: t, gpu_hour: 1 }]", "not both")]
    [InlineData("account_as: group", "connectors.slurm.account_as must be project, team or none")]
    public void A_bad_value_is_an_error_naming_the_key(string line, string message)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("connectors:\n  slurm:\n    " + line + "\n", "burnrate.yaml"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_complete_example_in_docs_configuration_md_parses_with_its_slurm_connector()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "docs", "configuration.md")))
            dir = dir.Parent;
        Assert.NotNull(dir);
        var text = File.ReadAllText(Path.Combine(dir.FullName, "docs", "configuration.md"));
        var start = text.IndexOf("```yaml\n", StringComparison.Ordinal) + 8;
        var yaml = text[start..text.IndexOf("```", start, StringComparison.Ordinal)];
        // The example names files that exist only on a real installation; the connectors section needs none.
        var config = BurnrateConfig.Parse(yaml.Replace("tls:", "tls_example:", StringComparison.Ordinal).Split("tls_example:")[0]);

        var slurm = config.Connectors.ToSlurmOptions()!;
        Assert.Equal(("hpc1", 2.10m, "dgx-a100", "aws"), (slurm.Cluster, slurm.GpuRate("A100"), slurm.TypeOf("dgx07")!.Type, slurm.TypeOf("aws-1")!.Provider));
    }

    [Fact]
    public void The_skypilot_section_needs_the_api_servers_url_and_reads_its_token_from_the_environment()
    {
        var config = BurnrateConfig.Parse("connectors:\n  skypilot:\n    url: http://127.0.0.1:46580\n    interval: 30s\n    token_env: SKY_TOKEN\n");
        var options = config.Connectors.ToSkyPilotOptions(name => name == "SKY_TOKEN" ? "s3cret" : null)!;
        Assert.Equal(("http://127.0.0.1:46580/", TimeSpan.FromSeconds(30), "s3cret"), (options.Url.ToString(), options.Interval, options.Token));
        var e = Assert.Throws<ArgumentException>(() => config.Connectors.ToSkyPilotOptions(_ => null));
        Assert.Contains("connectors.skypilot.token_env: the environment variable SKY_TOKEN is not set", e.Message, StringComparison.Ordinal);
        var bad = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("connectors:\n  skypilot:\n    url: sky-server\n"));
        Assert.Contains("connectors.skypilot.url must be the API server's http(s) URL", bad.Message, StringComparison.Ordinal);
    }
}
