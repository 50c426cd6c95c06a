using System.Globalization;
using System.Text.Json;
using Burnrate.Connectors.Slurm;
using Burnrate.Ingest;
using Burnrate.Protocols.Events;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Connectors.Slurm;

/// <summary>
/// The connector on recorded outputs of the real 22.05 test cluster (a poll mid-run, then one after every job ended):
/// events go through the ingest pipeline and its write-ahead log, jobs are priced at the configured $/GPU-hour to
/// their exact seconds, nothing is reported twice (not even after a restart), and a failing Slurm is reported, not thrown.
/// </summary>
public sealed class SlurmConnectorTests : IAsyncDisposable
{
    // sacct-midrun / squeue-midrun were captured at about 15:06:10; the final outputs after 15:08.
    private static readonly DateTimeOffset s_midrun = new(2026, 11, 22, 15, 6, 10, TimeSpan.Zero);
    private static readonly DateTimeOffset s_final = new(2026, 11, 22, 15, 8, 30, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-slurm-").FullName;
    private readonly FakeTimeProvider _time = new(s_midrun);
    private readonly FakeSlurmCommands _slurm = new();
    private readonly HttpClient _http = new();
    private LiveServer? _server;

    private SlurmOptions Options => new()
    {
        Cluster = "testcluster",
        GpuRates = new Dictionary<string, decimal> { ["fake"] = 3.60m }, // $0.001 per GPU-second
        StateFile = Path.Combine(_dir, "slurm.json"),
    };

    [Fact]
    public async Task Jobs_become_workloads_priced_at_the_gpu_rate_for_their_exact_seconds_through_the_ingest_log()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var connector = new SlurmConnector(_server.Ingest, Options, _slurm, _time);

        _slurm.Midrun();
        var first = await connector.PollOnceAsync(ct);
        _time.SetUtcNow(s_final);
        _slurm.Final();
        var second = await connector.PollOnceAsync(ct);
        Assert.True(first > 0 && second > 0, $"{first} then {second} events");
        Assert.Null(connector.Health.LastError);

        // Rated: 40 s on one GPU = $0.040, 5 s on two = $0.010; the zero-length srun costs nothing.
        await _server.Ingest.RateAsync(s_final.AddMinutes(2), ct);
        var costs = await CostsAsync(_server.Url);
        Assert.Equal("0.040000000", costs["slurm:3"]);
        Assert.Equal("0.010000000", costs["slurm:4"]);
        Assert.False(costs.ContainsKey("slurm:12") && costs["slurm:12"] != "0.000000000");

        // A restart on the same state file reports nothing again.
        var restarted = new SlurmConnector(_server.Ingest, Options, _slurm, _time);
        Assert.Equal(0, await restarted.PollOnceAsync(ct));
        await _server.DisposeAsync();
        _server = null;

        // What the log holds decodes to the events: the node with its price first, job 3 started with GPU 0 mid-run
        // (squeue's gres_detail), and stopped at sacct's exact end in the final poll.
        using var wal = WriteAheadLog.Open(Path.Combine(_dir, "server", "wal"));
        var records = wal.ReadAll().Where(r => r.Kind == IngestKind.Events).ToList();
        Assert.Equal(2, records.Count);
        Assert.All(records, r => Assert.Equal("connector:slurm", r.Source));
        var early = EventsDecoder.Decode(records[0].Body.Span);
        var price = Assert.IsType<PriceChanged>(early[0]);
        Assert.Equal(("onprem", "testcluster", "slurm-fakex2", 7.20m), (price.Provider, price.Region, price.InstanceType, price.PricePerHour));
        var node = Assert.IsType<NodeStarted>(early[1]);
        Assert.Equal(("localhost", 2, "fake"), (node.Node.Id, node.Node.GpuCount, node.Node.GpuModel));
        var started = early.OfType<WorkloadStarted>().Single(w => w.Workload.Id == "slurm:3");
        Assert.Equal(At("15:05:57"), started.Time);
        Assert.Equal(("gpu-one", "root", "physics", "slurm"), (started.Workload.Name, started.Workload.User, started.Workload.Project, started.Workload.Orchestrator));
        Assert.Equal("gpu", started.Workload.Labels!["partition"]);
        var allocated = Assert.Single(early.OfType<GpuAllocated>());
        Assert.Equal(("slurm:3", "localhost", 0), (allocated.WorkloadId, allocated.NodeId, allocated.GpuIndex));
        Assert.DoesNotContain(early.OfType<WorkloadStopped>(), s => s.WorkloadId == "slurm:3");
        var late = EventsDecoder.Decode(records[1].Body.Span);
        Assert.Equal(At("15:06:37"), late.OfType<WorkloadStopped>().Single(s => s.WorkloadId == "slurm:3").Time);
        Assert.Equal([("slurm:4", 0), ("slurm:4", 1), ("slurm:12", 0)], late.OfType<GpuAllocated>().Select(a => (a.WorkloadId, a.GpuIndex)));
        var task = late.OfType<WorkloadStarted>().Single(w => w.Workload.Id == "slurm:7_1");
        Assert.Equal(("7", "1"), (task.Workload.Labels!["slurm_array_job_id"], task.Workload.Labels["slurm_array_task_id"]));
        Assert.DoesNotContain(late.OfType<WorkloadStarted>(), w => w.Workload.Id is "slurm:3" or "slurm:1"); // reported once

    }

    [Fact]
    public async Task Cpu_only_jobs_pay_their_cpus_share_of_the_nodes_non_gpu_part_and_gpu_jobs_pay_as_before()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        // The recorded node (2 CPUs, 2 GPUs) at $3.60/GPU-hour plus $7.20/hour for the rest: $0.004 a second in all,
        // $0.001 a GPU-second, and $0.001 a second for each of its CPUs' half of the non-GPU part.
        var options = new SlurmOptions
        {
            Cluster = "testcluster",
            NodeTypes = [new SlurmNodeType("localhost", "test-node", null, "", 3.60m, 7.20m, null, "", "", "", Burnrate.Pricing.CapacityType.OnDemand)],
            StateFile = Path.Combine(_dir, "slurm.json"),
        };
        var connector = new SlurmConnector(_server.Ingest, options, _slurm, _time);
        _time.SetUtcNow(s_final);
        _slurm.Final();
        await connector.PollOnceAsync(ct);
        await _server.Ingest.RateAsync(s_final.AddMinutes(2), ct);

        var costs = await CostsAsync(_server.Url);
        // GPU jobs as before: job 3, 1 GPU for 40 s = its GPU ($0.040) and half the non-GPU part ($0.040), as half the node.
        Assert.Equal("0.080000000", costs["slurm:3"]);
        Assert.Equal("0.020000000", costs["slurm:4"]); // the whole node for 5 s
        // CPU-only jobs (1 CPU of 2): $0.001 a second out of what GPU jobs leave of the non-GPU part. Job 2's 3 s ran
        // beside job 3 (which left half); job 11's 65 s beside no GPU job; array task 7_0 ran 15:06:40–44, its first
        // 2 s under job 4 (which held the whole node); job 6 ran only under job 4.
        Assert.Equal("0.003000000", costs["slurm:2"]);
        Assert.Equal("0.065000000", costs["slurm:11"]);
        Assert.Equal("0.002000000", costs["slurm:7_0"]);
        Assert.Equal("0.004000000", costs["slurm:7_1"]);
        Assert.False(costs.TryGetValue("slurm:6", out var six) && six != "0.000000000", six);

        // Jobs and idle sum to the node's cost to the nano-dollar: $0.004 a second from the node's start (job 1's, 15:05:55).
        var rated = _server.Ingest.Cost.RatedThrough!.Value;
        var total = costs.Values.Sum(v => decimal.Parse(v, CultureInfo.InvariantCulture));
        Assert.Equal(0.004m * (decimal)(rated - At("15:05:55")).TotalSeconds, total);
        await _server.DisposeAsync();
        _server = null;

        using var wal = WriteAheadLog.Open(Path.Combine(_dir, "server", "wal"));
        var events = wal.ReadAll().Where(r => r.Kind == IngestKind.Events).SelectMany(r => EventsDecoder.Decode(r.Body.Span)).ToList();
        var price = Assert.Single(events.OfType<PriceChanged>());
        Assert.Equal((14.40m, (decimal?)3.60m), (price.PricePerHour, price.GpuPricePerHour));
        var cpu = events.OfType<CpuAllocated>().Single(c => c.WorkloadId == "slurm:2");
        Assert.Equal(("localhost", 1, 2, At("15:05:57")), (cpu.NodeId, cpu.Cpus, cpu.NodeCpus, cpu.Time));
        Assert.DoesNotContain(events.OfType<CpuAllocated>(), c => c.WorkloadId is "slurm:3" or "slurm:4" or "slurm:12");
    }

    [Fact]
    public async Task A_failing_slurm_is_reported_in_health_and_polling_recovers_by_itself()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var connector = new SlurmConnector(_server.Ingest, Options, _slurm, _time);
        _slurm.Midrun();
        _slurm.Fail("sacct --json", 1, "sacct: error: Problem talking to the database: Connection refused");
        _slurm.Fail("sacct -P", 1, "sacct: error: Problem talking to the database: Connection refused");

        await connector.PollOnceAsync(ct);
        var failing = connector.Health;
        Assert.Equal((1L, 1L, (DateTimeOffset?)null), (failing.Polls, failing.Failures, failing.LastSuccess));
        Assert.Contains("sacct exited with 1: sacct: error: Problem talking to the database", failing.LastError, StringComparison.Ordinal);

        _slurm.Midrun();
        _time.Advance(TimeSpan.FromSeconds(15));
        await connector.PollOnceAsync(ct);
        var ok = connector.Health;
        Assert.Null(ok.LastError);
        Assert.Equal(s_midrun.AddSeconds(15), ok.LastSuccess);
        Assert.Equal(TimeSpan.FromSeconds(5), ok.Lag(s_midrun.AddSeconds(20)));
        Assert.Equal("squeue openapi/v0.0.38 sacct openapi/dbv0.0.38", ok.Source); // a database outage is no reason to leave JSON
    }

    [Fact]
    public async Task Without_usable_sacct_json_the_connector_reads_sacct_parsable_output_to_the_same_workloads()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        _time.SetUtcNow(s_final);
        _slurm.Final();
        _slurm.Fail("sacct --json", 1, "sacct: fatal: No openapi plugins found");
        var connector = new SlurmConnector(_server.Ingest, Options, _slurm, _time);

        await connector.PollOnceAsync(ct);
        await _server.Ingest.RateAsync(s_final.AddMinutes(2), ct);

        Assert.Null(connector.Health.LastError);
        Assert.Equal("squeue openapi/v0.0.38 sacct sacct -P", connector.Health.Source);
        var costs = await CostsAsync(_server.Url);
        Assert.Equal("0.040000000", costs["slurm:3"]);
        Assert.Equal("0.010000000", costs["slurm:4"]);
    }

    [Fact]
    public async Task A_node_that_goes_down_or_leaves_scontrol_stops_costing_and_starts_again_when_it_is_back()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var connector = new SlurmConnector(_server.Ingest, Options, _slurm, _time);
        _time.SetUtcNow(s_final);
        _slurm.Final();
        await connector.PollOnceAsync(ct);

        _time.SetUtcNow(s_final.AddMinutes(1));
        _slurm.NodeState("DOWN*+DRAIN");
        Assert.Equal(1, await connector.PollOnceAsync(ct));
        Assert.Equal(0, await connector.PollOnceAsync(ct)); // stopped once
        _time.SetUtcNow(s_final.AddMinutes(2));
        _slurm.NodeState("IDLE+DRAIN"); // drained still runs
        Assert.True(await connector.PollOnceAsync(ct) >= 1);
        _time.SetUtcNow(s_final.AddMinutes(3));
        _slurm.NodeState(null); // gone from the list
        Assert.Equal(1, await connector.PollOnceAsync(ct));
        Assert.Null(connector.Health.LastError);
        await _server.DisposeAsync();
        _server = null;

        using var wal = WriteAheadLog.Open(Path.Combine(_dir, "server", "wal"));
        var events = wal.ReadAll().Where(r => r.Kind == IngestKind.Events).SelectMany(r => EventsDecoder.Decode(r.Body.Span)).ToList();
        var started = events.OfType<NodeStarted>().Select(n => n.Time).ToList();
        Assert.Equal(2, started.Count);
        Assert.Equal(s_final.AddMinutes(2), started[1]);
        Assert.Equal([s_final.AddMinutes(1), s_final.AddMinutes(3)], events.OfType<NodeStopped>().Select(n => n.Time));
        Assert.All(events.OfType<NodeStopped>(), n => Assert.Equal("localhost", n.NodeId));
    }

    [Theory]
    [InlineData("DOWN", true)]
    [InlineData("DOWN*+DRAIN", true)]
    [InlineData("IDLE+POWERED_DOWN", true)]
    [InlineData("FUTURE", true)]
    [InlineData("IDLE+DRAIN", false)]
    [InlineData("MIXED", false)]
    [InlineData("ALLOCATED*", false)]
    public void Down_states_are_read_from_their_parts(string state, bool down) => Assert.Equal(down, SlurmConnector.IsDown(state));

    private static DateTimeOffset At(string time) => DateTimeOffset.Parse("2026-11-22T" + time + "Z", CultureInfo.InvariantCulture);

    private async Task<Dictionary<string, string>> CostsAsync(string url)
    {
        var body = await _http.GetStringAsync(url + "/api/v1/costs?by=workload&from=2026-11-22T15:00:00Z&to=2026-11-22T16:00:00Z", TestContext.Current.CancellationToken);
        return JsonDocument.Parse(body).RootElement.GetProperty("rows").EnumerateArray()
            .ToDictionary(r => r.GetProperty("keys").GetProperty("workload").GetString()!, r => r.GetProperty("cost_usd").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>squeue, sacct and scontrol answering with recorded outputs (or failing as told).</summary>
    private sealed class FakeSlurmCommands : ISlurmCommands
    {
        private readonly Dictionary<string, SlurmCommandResult> _answers = new(StringComparer.Ordinal);

        public void Midrun() => Load("squeue-midrun-22.05.json", "sacct-midrun-22.05.json", "sacct-P-22.05.txt");

        public void Final() => Load("squeue-midrun-22.05.json", "sacct-22.05.json", "sacct-P-22.05.txt");

        private void Load(string squeue, string sacct, string parsable)
        {
            _answers["scontrol"] = Ok(File.ReadAllText(Path.Combine(SlurmReaderTests.TestData, "scontrol-show-nodes-22.05.txt")));
            _answers["squeue"] = Ok(File.ReadAllText(Path.Combine(SlurmReaderTests.TestData, squeue)));
            _answers["sacct --json"] = Ok(File.ReadAllText(Path.Combine(SlurmReaderTests.TestData, sacct)));
            _answers["sacct -P"] = Ok(File.ReadAllText(Path.Combine(SlurmReaderTests.TestData, parsable)));
        }

        public void Fail(string key, int exit, string error) => _answers[key] = new SlurmCommandResult(exit, "", error);

        /// <summary><c>scontrol show nodes -o</c> with the recorded node in <paramref name="state"/>, or no node at all (null).</summary>
        public void NodeState(string? state)
        {
            var text = File.ReadAllText(Path.Combine(SlurmReaderTests.TestData, "scontrol-show-nodes-22.05.txt"));
            _answers["scontrol"] = Ok(state is null ? "" : System.Text.RegularExpressions.Regex.Replace(text, @" State=\S+", " State=" + state));
        }

        private static SlurmCommandResult Ok(string output) => new(0, output, "");

        public Task<SlurmCommandResult> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
        {
            var key = command == "sacct" ? (arguments.Contains("--json") ? "sacct --json" : "sacct -P") : command;
            Assert.True(command != "sacct" || arguments.Contains("-S"), "sacct must be given its window");
            return Task.FromResult(_answers[key]);
        }
    }
}
