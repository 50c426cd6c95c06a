using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Burnrate.Protocols.Events;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Protocols;

/// <summary>
/// Metaflow on AWS Batch: the Batch job name parsed into Metaflow's run, step, task and attempt, and Amazon EventBridge
/// <c>Batch Job State Change</c> events posted to <c>/api/v1/events/aws-batch</c> becoming each job's share of its
/// queue's instance, the step's workload with Metaflow's labels, and <c>@resources</c> as the estimate.
/// </summary>
public sealed class AwsBatchEventsTests : IAsyncDisposable
{
    private const decimal OnDemandP4d = 21.957642m;
    private static readonly DateTimeOffset s_start = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-batch-").FullName;
    private readonly FakeTimeProvider _time = new(s_start.AddMinutes(45));
    private readonly HttpClient _http = new();
    private LiveServer? _server;

    [Theory]
    [InlineData("ana-TrainFlow-1234-train-5-0", "ana", "TrainFlow", "1234", "train", "5", 0)]
    [InlineData("jean-luc-TrainFlow-1234-train-5-2", "jean-luc", "TrainFlow", "1234", "train", "5", 2)]
    [InlineData("ana-TrainFlow-sfn-3f2a9c1e-77b0-4d1e-9a3b-2c1d0e5f6a7b-join_step-12-1", "ana", "TrainFlow", "sfn-3f2a9c1e-77b0-4d1e-9a3b-2c1d0e5f6a7b", "join_step", "12", 1)]
    [InlineData("jean-luc-Etl-sfn-run7-start-1-0", "jean-luc", "Etl", "sfn-run7", "start", "1", 0)]
    public void A_Batch_job_name_is_read_from_the_right(string name, string user, string flow, string run, string step, string task, int retry) =>
        Assert.Equal(new MetaflowBatchJob(user, flow, run, step, task, retry), MetaflowBatchJob.Parse(name));

    [Theory]
    [InlineData("nightly-etl")]
    [InlineData("ana-TrainFlow-abc-train-5-0")] // a run id neither numeric nor sfn-
    [InlineData("TrainFlow-1234-train-5-0")] // no user
    [InlineData("ana-TrainFlow-1234-train-x-0")]
    public void Other_job_names_are_not_Metaflow(string name) => Assert.Null(MetaflowBatchJob.Parse(name));

    /// <summary>An EventBridge event as AWS Batch sends it (fields Burnrate does not read trimmed).</summary>
    private static object Change(string jobId, string name, string status, int gpus, DateTimeOffset started, DateTimeOffset? stopped) => new Dictionary<string, object?>
    {
        ["version"] = "0",
        ["id"] = Guid.NewGuid().ToString(),
        ["detail-type"] = "Batch Job State Change",
        ["source"] = "aws.batch",
        ["account"] = "123456789012",
        ["time"] = (stopped ?? started).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        ["region"] = "us-east-1",
        ["resources"] = new[] { "arn:aws:batch:us-east-1:123456789012:job/" + jobId },
        ["detail"] = new Dictionary<string, object?>
        {
            ["jobArn"] = "arn:aws:batch:us-east-1:123456789012:job/" + jobId,
            ["jobName"] = name,
            ["jobId"] = jobId,
            ["jobQueue"] = "arn:aws:batch:us-east-1:123456789012:job-queue/metaflow-gpu",
            ["status"] = status,
            ["attempts"] = stopped is null ? Array.Empty<object>() : new object[] { new Dictionary<string, object> { ["startedAt"] = started.ToUnixTimeMilliseconds(), ["stoppedAt"] = stopped.Value.ToUnixTimeMilliseconds() } },
            ["createdAt"] = started.AddMinutes(-3).ToUnixTimeMilliseconds(),
            ["startedAt"] = started.ToUnixTimeMilliseconds(),
            ["stoppedAt"] = stopped?.ToUnixTimeMilliseconds(),
            ["jobDefinition"] = "arn:aws:batch:us-east-1:123456789012:job-definition/metaflow_4f1b:3",
            ["container"] = new Dictionary<string, object?>
            {
                ["image"] = "python:3.11",
                ["resourceRequirements"] = new[] { new Dictionary<string, string> { ["value"] = gpus.ToString(CultureInfo.InvariantCulture), ["type"] = "GPU" }, new() { ["value"] = "8", ["type"] = "VCPU" }, new() { ["value"] = "61440", ["type"] = "MEMORY" } },
            },
        },
    };

    private async Task<HttpResponseMessage> PostAsync(string query, params object[] events) =>
        await _http.PostAsync($"{_server!.Url}/api/v1/events/aws-batch{query}", new StringContent(JsonSerializer.Serialize(events), Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);

    [Fact]
    public async Task Two_Batch_jobs_of_one_flow_give_cost_per_step_and_per_run_with_resources_as_the_estimate()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        const string Query = "?instance_type=p4d.24xlarge&capacity=on_demand";

        // Run 1234: train on 2 GPUs 12:00–12:30 (RUNNING, then SUCCEEDED), eval on 1 GPU 12:30–12:40 (only its end seen).
        var train = Change("a1b2", "ana-TrainFlow-1234-train-2-0", "RUNNING", 2, s_start, null);
        var waiting = Change("c3d4", "ana-TrainFlow-1234-eval-3-0", "RUNNABLE", 1, s_start, null);
        using (var r = await PostAsync(Query, train, waiting))
            Assert.Equal((HttpStatusCode.Accepted, """{"accepted": 5}"""), (r.StatusCode, (await r.Content.ReadAsStringAsync(ct)).Trim()));
        using (var r = await PostAsync(Query, Change("a1b2", "ana-TrainFlow-1234-train-2-0", "SUCCEEDED", 2, s_start, s_start.AddMinutes(30)),
            Change("c3d4", "ana-TrainFlow-1234-eval-3-0", "SUCCEEDED", 1, s_start.AddMinutes(30), s_start.AddMinutes(40))))
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);

        await _server.Ingest.RateAsync(s_start.AddMinutes(45), ct);
        var body = await _http.GetStringAsync(_server.Url + "/api/v1/costs?by=workload&from=2025-06-15T12:00:00Z&to=2025-06-15T12:45:00Z", ct);
        var costs = JsonDocument.Parse(body).RootElement.GetProperty("rows").EnumerateArray()
            .ToDictionary(r => r.GetProperty("keys").GetProperty("workload").GetString()!, r => decimal.Parse(r.GetProperty("cost_usd").GetString()!, CultureInfo.InvariantCulture));
        // Per step: its GPUs' share of the p4d.24xlarge (8 GPUs) for its exact minutes; per run: the sum of its steps.
        AssertUsd(OnDemandP4d * 2 / 8 * 30 / 60, costs["metaflow:TrainFlow/1234/train"]);
        AssertUsd(OnDemandP4d * 1 / 8 * 10 / 60, costs["metaflow:TrainFlow/1234/eval"]);
        AssertUsd(OnDemandP4d * (2 * 30 + 10) / 8 / 60, costs.Where(c => c.Key.StartsWith("metaflow:TrainFlow/1234/", StringComparison.Ordinal)).Sum(c => c.Value));
        Assert.Equal(2, costs.Count(c => c.Key.StartsWith("metaflow:", StringComparison.Ordinal)));

        // The workload: Metaflow's labels as on Kubernetes, and @resources(gpu=2) at the instance's price as the estimate.
        var workload = JsonDocument.Parse(await _http.GetStringAsync(_server.Url + "/api/v1/workloads/" + Uri.EscapeDataString("metaflow:TrainFlow/1234/train"), ct)).RootElement;
        Assert.Equal((OnDemandP4d * 2 / 8).ToString("0.000000000", CultureInfo.InvariantCulture), workload.GetProperty("estimate_usd_per_hour").GetString());
        Assert.Equal(("ana", "metaflow"), (workload.GetProperty("user").GetString(), workload.GetProperty("orchestrator").GetString()));
        // The labels are those the Kubernetes path gives Metaflow's annotations (step_change groups by them).
        var events = EventsDecoder.Decode(AwsBatchEvents.Translate(JsonSerializer.SerializeToUtf8Bytes(train), "p4d.24xlarge", Burnrate.Pricing.CapacityType.OnDemand, _server.Ingest.Cost.Prices, out var count));
        Assert.Equal(5, count);
        var labels = Assert.Single(events.OfType<Burnrate.Telemetry.WorkloadStarted>()).Workload.Labels!;
        Assert.Equal(("TrainFlow", "1234", "train", "2", "0", "ana"), (labels["metaflow/flow_name"], labels["metaflow/run_id"], labels["metaflow/step_name"], labels["metaflow/task_id"], labels["metaflow/attempt"], labels["metaflow/user"]));
        Assert.Equal(("a1b2", "metaflow-gpu"), (labels["aws_batch_job_id"], labels["aws_batch_job_queue"]));
        var node = Assert.Single(events.OfType<Burnrate.Telemetry.NodeStarted>()).Node;
        Assert.Equal(("aws-batch:a1b2", "p4d.24xlarge/2gpu", 2), (node.Id, node.InstanceType, node.GpuCount));
    }

    [Fact]
    public async Task A_step_stops_when_its_last_running_batch_job_stops_and_starts_again_with_a_new_task()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        const string Query = "?instance_type=p4d.24xlarge";
        const string Step = "metaflow:TrainFlow/1234/train";
        async Task<(string State, string? Ended)> StepAsync()
        {
            await _server.Ingest.DrainAsync(ct);
            var w = JsonDocument.Parse(await _http.GetStringAsync(_server.Url + "/api/v1/workloads/" + Uri.EscapeDataString(Step), ct)).RootElement;
            return (w.GetProperty("state").GetString()!, w.GetProperty("ended").ValueKind == JsonValueKind.Null ? null : w.GetProperty("ended").GetString());
        }
        async Task PostOkAsync(params object[] events)
        {
            using var r = await PostAsync(Query, events);
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        }

        // A foreach: tasks 2 (12:00–12:20) and 3 (12:05–12:30) of the train step.
        await PostOkAsync(Change("j2", "ana-TrainFlow-1234-train-2-0", "RUNNING", 1, s_start, null), Change("j3", "ana-TrainFlow-1234-train-3-0", "RUNNING", 1, s_start.AddMinutes(5), null));
        await PostOkAsync(Change("j2", "ana-TrainFlow-1234-train-2-0", "SUCCEEDED", 1, s_start, s_start.AddMinutes(20)));
        Assert.Equal(("running", (string?)null), await StepAsync()); // task 3 still runs
        // EventBridge may deliver late: task 2's RUNNING again does not make it run (nor cost).
        await PostOkAsync(Change("j2", "ana-TrainFlow-1234-train-2-0", "RUNNING", 1, s_start, null));
        await PostOkAsync(Change("j3", "ana-TrainFlow-1234-train-3-0", "FAILED", 1, s_start.AddMinutes(5), s_start.AddMinutes(30)));
        Assert.Equal(("ended", (string?)"2025-06-15T12:30:00Z"), await StepAsync());

        // A retry (attempt 1 of task 3) at 12:35 starts the step again.
        await PostOkAsync(Change("j4", "ana-TrainFlow-1234-train-3-1", "RUNNING", 1, s_start.AddMinutes(35), null));
        Assert.Equal(("running", (string?)null), await StepAsync());
        await PostOkAsync(Change("j4", "ana-TrainFlow-1234-train-3-1", "SUCCEEDED", 1, s_start.AddMinutes(35), s_start.AddMinutes(40)));
        Assert.Equal(("ended", (string?)"2025-06-15T12:40:00Z"), await StepAsync());

        await _server.Ingest.RateAsync(s_start.AddMinutes(45), ct);
        var body = await _http.GetStringAsync(_server.Url + "/api/v1/costs?by=workload&from=2025-06-15T12:00:00Z&to=2025-06-15T12:45:00Z", ct);
        var cost = JsonDocument.Parse(body).RootElement.GetProperty("rows").EnumerateArray()
            .Single(r => r.GetProperty("keys").GetProperty("workload").GetString() == Step).GetProperty("cost_usd").GetString()!;
        AssertUsd(OnDemandP4d / 8 * (20 + 25 + 5) / 60, decimal.Parse(cost, CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Bad_requests_are_refused_naming_what_is_wrong()
    {
        var ct = TestContext.Current.CancellationToken;
        _server = await LiveServer.StartAsync(Path.Combine(_dir, "server"), _time);
        var job = Change("a1b2", "ana-TrainFlow-1234-train-2-0", "RUNNING", 2, s_start, null);
        async Task<(HttpStatusCode, string)> Problem(string query, object e)
        {
            using var r = await PostAsync(query, e);
            return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("detail").GetString()!);
        }
        var (status, detail) = await Problem("", job);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("instance_type", detail, StringComparison.Ordinal);
        (status, detail) = await Problem("?instance_type=p4d.24xlarge&capacity=cheap", job);
        Assert.Contains("capacity", detail, StringComparison.Ordinal);
        (status, detail) = await Problem("?instance_type=p9.mega", job);
        Assert.Contains("no on_demand price for p9.mega in us-east-1", detail, StringComparison.Ordinal);
        (status, detail) = await Problem("?instance_type=p4d.24xlarge", new Dictionary<string, string> { ["detail-type"] = "EC2 Instance State-change Notification" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("Batch Job State Change", detail, StringComparison.Ordinal);
    }

    private static void AssertUsd(decimal expected, decimal actual) =>
        Assert.InRange(actual, expected - 0.0000001m, expected + 0.0000001m);

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
