using Burnrate.Simulation;

namespace Burnrate.Tests.Simulation;

public sealed class ScenarioFileTests
{
    private static readonly string s_minimal = """
        id: custom
        title: t
        signal: s
        nodes:
          - { id: n0, provider: aws, region: us-east-1, instance_type: p4d.24xlarge, gpus: 8, gpu_model: A100 }
        workloads:
          - id: slurm:1
            orchestrator: slurm
            placement: [ { node: n0, gpus: all } ]
        """;

    [Fact]
    public void Every_built_in_scenario_loads_with_a_title_and_an_expected_signal()
    {
        var ids = ScenarioLibrary.BuiltIn.Select(s => s.Id).ToArray();
        Assert.Equal(["baseline", .. Enumerable.Range(1, 13).Select(n => $"s{n}")], ids);
        foreach (var scenario in ScenarioLibrary.BuiltIn)
        {
            Assert.False(string.IsNullOrWhiteSpace(scenario.Info.Title), scenario.Id);
            Assert.False(string.IsNullOrWhiteSpace(scenario.Info.ExpectedSignal), scenario.Id);
            Assert.False(string.IsNullOrWhiteSpace(scenario.Info.Description), scenario.Id);
            Assert.True(scenario.NodeCount > 0, scenario.Id);
        }
    }

    [Fact]
    public void Built_in_nodes_use_only_instance_types_the_price_catalog_guarantees()
    {
        var priced = new HashSet<string>
        {
            "aws/us-east-1/p5.48xlarge", "aws/us-east-1/p4d.24xlarge", "aws/us-east-1/p4de.24xlarge", "aws/us-east-1/p5e.48xlarge",
            "aws/us-east-1/p5en.48xlarge", "aws/us-east-1/g5.2xlarge", "aws/us-east-1/g5.12xlarge", "aws/us-east-1/g6.xlarge",
            "aws/us-east-1/g6e.xlarge", "aws/us-west-2/p4d.24xlarge", "aws/us-west-2/p5.48xlarge", "aws/us-west-2/g5.2xlarge",
            "gcp/us-central1/a3-highgpu-8g", "gcp/us-central1/a2-highgpu-1g", "gcp/us-central1/a2-highgpu-8g",
            "gcp/us-central1/a2-ultragpu-8g", "gcp/us-central1/g2-standard-8",
            "azure/eastus/Standard_ND96isr_H100_v5", "azure/eastus/Standard_ND96asr_v4", "azure/eastus/Standard_NC24ads_A100_v4",
            "azure/eastus/Standard_NC40ads_H100_v5", "azure/eastus/Standard_ND96isr_H200_v5",
            "lambda/us-east-1/gpu_8x_h100_sxm5", "lambda/us-east-1/gpu_1x_h100_pcie", "lambda/us-east-1/gpu_1x_a100_sxm4",
            "lambda/us-east-1/gpu_8x_a100_80gb_sxm4",
            "nebius/eu-north1/gpu-h100-sxm_8gpu-128vcpu-1600gb", "nebius/eu-north1/gpu-h200-sxm_8gpu-128vcpu-1600gb",
            "nebius/eu-north1/gpu-h100-sxm_1gpu-16vcpu-200gb",
            "runpod/US/1x_A100-80GB_SECURE", "runpod/US/8x_H100-80GB_SECURE", "runpod/US/1x_H100-80GB_SECURE",
            "coreweave/US-EAST-04/gd-8xh100ib-i128", "coreweave/US-EAST-04/gd-8xa100-i128",
        };
        var sim = new FleetSimulator(ScenarioLibrary.BuiltIn, new FleetSimulatorOptions { IgnoreAnchors = true });
        var starts = sim.AdvanceTo(sim.Epoch + TimeSpan.FromHours(3)).OfType<Burnrate.Telemetry.NodeStarted>().ToList();
        Assert.NotEmpty(starts);
        foreach (var started in starts)
            Assert.Contains($"{started.Node.Provider}/{started.Node.Region}/{started.Node.InstanceType}", priced);
    }

    [Fact]
    public void A_minimal_custom_file_parses()
    {
        var scenario = ScenarioFile.Parse(s_minimal, "custom.yaml");
        Assert.Equal("custom", scenario.Id);
        Assert.Equal(1, scenario.WorkloadCount);
    }

    [Fact]
    public void A_reference_to_an_unknown_node_names_the_file_and_the_field()
    {
        var yaml = s_minimal.Replace("{ node: n0, gpus: all }", "{ node: n9, gpus: all }", StringComparison.Ordinal);
        var e = Assert.Throws<ScenarioFormatException>(() => ScenarioFile.Parse(yaml, "bad.yaml"));
        Assert.Contains("bad.yaml: workloads[0].placement[0].node: 'n9' is not a node", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_with_its_field_path()
    {
        var yaml = s_minimal
            .Replace("provider: aws", "provider: oracle-cloud", StringComparison.Ordinal)
            .Replace("orchestrator: slurm", "orchestrator: slurm\n    stop: 14x", StringComparison.Ordinal);
        var e = Assert.Throws<ScenarioFormatException>(() => ScenarioFile.Parse(yaml, "bad.yaml"));
        Assert.Contains(e.Problems, p => p.StartsWith("bad.yaml: nodes[0].provider: 'oracle-cloud'", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.StartsWith("bad.yaml: workloads[0].stop: '14x' is not an offset", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unknown_key_names_the_file_the_line_and_the_key()
    {
        var yaml = s_minimal.Replace("gpu_model: A100", "gpu_model: A100, gpu_modle: A100", StringComparison.Ordinal);
        var e = Assert.Throws<ScenarioFormatException>(() => ScenarioFile.Parse(yaml, "typo.yaml"));
        Assert.StartsWith("typo.yaml: line 5", e.Message, StringComparison.Ordinal);
        Assert.Contains("gpu_modle", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_workload_id_must_carry_its_orchestrator_prefix()
    {
        var yaml = s_minimal.Replace("id: slurm:1", "id: job-1", StringComparison.Ordinal);
        var e = Assert.Throws<ScenarioFormatException>(() => ScenarioFile.Parse(yaml, "bad.yaml"));
        Assert.Contains("bad.yaml: workloads[0].id: 'job-1' must start with 'slurm:'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loading_a_file_from_disk_names_it_in_errors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"burnrate-sim-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "id: x\ntitle: t\nsignal: s\nnodes: []\n");
        try
        {
            var e = Assert.Throws<ScenarioFormatException>(() => ScenarioFile.Load(path));
            Assert.Contains($"{Path.GetFileName(path)}: nodes: a scenario needs at least one node", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Resolve_all_is_the_baseline_and_every_scenario_and_an_unknown_id_lists_the_known_ones()
    {
        Assert.Equal(14, ScenarioLibrary.Resolve("all").Count);
        Assert.Equal(["baseline", "s2"], ScenarioLibrary.Resolve("baseline+s2").Select(s => s.Id));
        var e = Assert.Throws<ArgumentException>(() => ScenarioLibrary.Load("s99"));
        Assert.Contains("s13", e.Message, StringComparison.Ordinal);
    }
}
