using System.Globalization;
using Burnrate.Connectors.Slurm;

namespace Burnrate.Tests.Connectors.Slurm;

/// <summary>
/// The readers against real Slurm 22.05 output (captured from the single-node test cluster) and the same jobs written
/// in the 23.11 dialect (data_parser/v0.0.40: numbers as {set, infinite, number}, states as flag arrays, step ids
/// "N.batch", meta.slurm): both must give the same jobs, as must sacct -P.
/// </summary>
public sealed class SlurmReaderTests
{
    internal static readonly string TestData = Path.Combine(AppContext.BaseDirectory, "Connectors", "Slurm", "testdata");

    internal static byte[] Bytes(string file) => File.ReadAllBytes(Path.Combine(TestData, file));

    /// <summary>A job as one comparable line: everything the connector uses.</summary>
    private static string Describe(SlurmJob j) => string.Create(CultureInfo.InvariantCulture,
        $"{j.JobId} raw={j.RawId} array={j.ArrayJobId}/{j.ArrayTaskId} {j.Name} {j.User} {j.Account} {j.Partition} {j.Cluster} {j.State} "
        + $"submit={j.Submit:O} start={j.Start:O} end={j.End:O} nodes={string.Join(',', j.Nodes)} gpus={j.Gpus} type={j.GpuType} "
        + $"idx={string.Join(';', j.GpuIndexes.Select(p => p.Key + ":" + string.Join(',', p.Value)))} steps={string.Join(',', j.Steps)}");

    [Fact]
    public void Sacct_json_of_22_05_gives_each_allocation_with_account_partition_gpus_array_task_steps_and_exact_times()
    {
        var list = SlurmJsonReader.ReadSacct(Bytes("sacct-22.05.json"));

        Assert.Equal(("openapi/dbv0.0.38", "22.05.8"), (list.Dialect, list.SlurmVersion));
        Assert.Equal(["1", "2", "3", "4", "5", "6", "7_2", "9", "11", "12", "7_0", "7_1"], list.Jobs.Select(j => j.JobId));
        var gpuOne = list.Jobs.Single(j => j.JobId == "3");
        Assert.Equal(("gpu-one", "root", "physics", "gpu", "testcluster", "COMPLETED", 1), (gpuOne.Name, gpuOne.User, gpuOne.Account, gpuOne.Partition, gpuOne.Cluster, gpuOne.State, gpuOne.Gpus));
        Assert.Equal(DateTimeOffset.Parse("2026-11-22T15:05:57Z", CultureInfo.InvariantCulture), gpuOne.Start);
        Assert.Equal(DateTimeOffset.Parse("2026-11-22T15:06:37Z", CultureInfo.InvariantCulture), gpuOne.End);
        Assert.Equal(["localhost"], gpuOne.Nodes);
        Assert.Equal(2, list.Jobs.Single(j => j.JobId == "4").Gpus);
        Assert.Equal(["batch", "0", "1"], list.Jobs.Single(j => j.JobId == "6").Steps);
        var task = list.Jobs.Single(j => j.JobId == "7_0");
        Assert.Equal((13L, 7L, (long?)0), (task.RawId, task.ArrayJobId, task.ArrayTaskId));
        Assert.Equal("TIMEOUT", list.Jobs.Single(j => j.JobId == "11").State);
    }

    [Fact]
    public void Sacct_json_of_23_11_parses_to_the_same_jobs_as_the_22_05_json_of_the_same_jobs()
    {
        var old = SlurmJsonReader.ReadSacct(Bytes("sacct-22.05.json"));
        var current = SlurmJsonReader.ReadSacct(Bytes("sacct-23.11.json"));

        Assert.Equal(("data_parser/v0.0.40", "23.11.1"), (current.Dialect, current.SlurmVersion));
        Assert.Equal(12, current.Jobs.Count);
        Assert.Equal(old.Jobs.Select(Describe), current.Jobs.Select(Describe));
    }

    [Fact]
    public void Squeue_json_of_23_11_parses_to_the_same_jobs_as_22_05_with_the_gpu_indexes_a_running_job_holds()
    {
        var old = SlurmJsonReader.ReadSqueue(Bytes("squeue-midrun-22.05.json"));
        var current = SlurmJsonReader.ReadSqueue(Bytes("squeue-midrun-23.11.json"));

        Assert.Equal("openapi/v0.0.38", old.Dialect);
        Assert.Equal("data_parser/v0.0.40", current.Dialect);
        Assert.Equal(old.Jobs.Select(Describe), current.Jobs.Select(Describe));
        var running = old.Jobs.Single(j => j.JobId == "3");
        Assert.Equal("RUNNING", running.State);
        Assert.Null(running.End); // squeue's end_time of a running job is its time limit, not an end
        Assert.Equal([0], running.GpuIndexes["localhost"]);
        Assert.Equal("fake", running.GpuType);
        // Pending jobs, and one cancelled before it ever ran, did not run.
        Assert.All(old.Jobs.Where(j => j.JobId != "1" && j.JobId != "2" && j.JobId != "3"), j => Assert.False(j.Ran, j.JobId));
    }

    [Fact]
    public void Sacct_parsable_output_gives_the_same_allocations_as_sacct_json()
    {
        var json = SlurmJsonReader.ReadSacct(Bytes("sacct-22.05.json"));
        var text = SlurmTextReader.ReadSacctParsable(File.ReadAllText(Path.Combine(TestData, "sacct-P-22.05.txt")));

        // The captured -P run has no array tasks' JobIDRaw nor the Cluster column; the rest must agree.
        static string Core(SlurmJob j) => string.Create(CultureInfo.InvariantCulture,
            $"{j.JobId} {j.Name} {j.User} {j.Account} {j.Partition} {j.State} {j.Start:O} {j.End:O} {string.Join(',', j.Nodes)} gpus={j.Gpus} steps={string.Join(',', j.Steps)}");
        var expected = json.Jobs.Where(j => j.ArrayJobId == 0).Select(Core).Order(StringComparer.Ordinal);
        Assert.Equal(expected, text.Jobs.Where(j => j.ArrayJobId == 0).Select(Core).Order(StringComparer.Ordinal));
        Assert.Equal("sacct -P", text.Dialect);
    }

    [Fact]
    public void A_bad_sacct_parsable_row_is_refused_naming_its_line()
    {
        var e = Assert.Throws<SlurmFormatException>(() => SlurmTextReader.ReadSacctParsable("JobID|Start\n1|2026-11-22T15:05:55\n2|noon\n"));
        Assert.Contains("line 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("'noon'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Slurm_errors_in_the_json_are_reported_not_read_as_no_jobs()
    {
        var e = Assert.Throws<SlurmFormatException>(() => SlurmJsonReader.ReadSacct("""{"meta": {}, "errors": [{"error": "Unable to connect to slurmdbd", "error_number": 7000}], "jobs": []}"""u8));
        Assert.Contains("Unable to connect to slurmdbd", e.Message, StringComparison.Ordinal);
        Assert.Throws<SlurmFormatException>(() => SlurmJsonReader.ReadSqueue("sacct: fatal: no plugin"u8));
    }

    [Fact]
    public void Scontrol_nodes_give_each_nodes_gpu_count_and_type()
    {
        var nodes = SlurmTextReader.ReadNodes(File.ReadAllText(Path.Combine(TestData, "scontrol-show-nodes-22.05.txt")));

        var node = Assert.Single(nodes);
        Assert.Equal(("localhost", 2, "fake"), (node.Name, node.Gpus, node.GpuType));
    }

    [Theory]
    [InlineData("gpu[01-03,07],login1", "gpu01 gpu02 gpu03 gpu07 login1")]
    [InlineData("rack[1-2]-n[08-09]", "rack1-n08 rack1-n09 rack2-n08 rack2-n09")]
    [InlineData("localhost", "localhost")]
    [InlineData("None assigned", "")]
    [InlineData("", "")]
    public void Host_lists_expand_keeping_zero_padding(string list, string expected) =>
        Assert.Equal(expected, string.Join(' ', Hostlist.Expand(list)));

    [Fact]
    public void A_host_list_with_unbalanced_brackets_or_a_huge_range_is_refused()
    {
        Assert.Throws<SlurmFormatException>(() => Hostlist.Expand("gpu[01-03"));
        Assert.Throws<SlurmFormatException>(() => Hostlist.Expand("n[1-99999999]"));
        Assert.True(Hostlist.Matches("gpu[01-16]", "gpu07"));
        Assert.True(Hostlist.Matches("gpu-*", "gpu-a7"));
        Assert.False(Hostlist.Matches("gpu[01-16]", "gpu17"));
    }
}
