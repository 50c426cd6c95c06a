using System.Net;
using Burnrate.Agent;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Agent;

/// <summary>The agent's push loop on a fake clock against a scripted receiver: retries, backoff, 4xx, waiting rounds.</summary>
public sealed class NodeAgentTests : IDisposable
{
    private static readonly DateTimeOffset s_t0 = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    // Two GPUs as the agent's own query prints them (noheader,nounits; telemetry-formats.md §6).
    private const string TwoGpus = """
        0, GPU-a, NVIDIA A100-SXM4-40GB, 00000000:10:1C.0, 87, 35, 19818, 20716, 40960, 301.52, 52, 1410, Disabled
        1, GPU-b, NVIDIA A100-SXM4-40GB, 00000000:10:1D.0, 3, 0, 4, 40530, 40960, 61.2, 33, 210, Disabled
        """;

    private readonly FakeTimeProvider _time = new(s_t0);
    private readonly ScriptedReceiver _receiver;
    private readonly HttpClient _http;
    private readonly ListLogger _log = new();

    public NodeAgentTests()
    {
        _receiver = new ScriptedReceiver(_time);
        _http = new HttpClient(_receiver);
    }

    private NodeAgent Agent(Func<CancellationToken, Task<string>>? readGpus = null) => new(
        new NodeAgentOptions { Server = new Uri("http://burnrate.test:9840/"), Node = new AgentNode("box", "aws", "us-east-1", InstanceType: "p4d.24xlarge") },
        _http, _time, _log, readGpus ?? (_ => Task.FromResult(TwoGpus)));

    /// <summary>Moves the fake clock in small steps until <paramref name="task"/> ends, so every timer the agent waits on fires.</summary>
    private async Task<T> DriveAsync<T>(Task<T> task)
    {
        for (var i = 0; i < 20_000 && !task.IsCompleted; i++)
        {
            await Task.Delay(1, TestContext.Current.CancellationToken);
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        return await task;
    }

    [Fact]
    public async Task A_failed_push_is_retried_with_doubling_backoff_honouring_retry_after_until_it_is_sent()
    {
        _receiver.Answers.Enqueue(HttpStatusCode.InternalServerError);
        _receiver.Answers.Enqueue(HttpStatusCode.ServiceUnavailable); // with Retry-After: 3 s, longer than the 2 s backoff
        var agent = Agent();

        var round = await DriveAsync(agent.RunOnceAsync(TestContext.Current.CancellationToken));

        var requests = _receiver.Requests;
        Assert.Equal([500, 503, 204], requests.Select(r => r.Status));
        Assert.InRange((requests[1].At - requests[0].At).TotalSeconds, 1.0, 1.3);
        Assert.InRange((requests[2].At - requests[1].At).TotalSeconds, 3.0, 3.3);
        Assert.All(requests, r => Assert.Equal(requests[0].Body, r.Body)); // the same round each time
        Assert.Equal(s_t0.ToUnixTimeMilliseconds(), Assert.Single(requests[2].Samples.Select(s => s.TimestampMs).Distinct()));
        Assert.Equal(2, round.Gpus);
        Assert.Equal(0, agent.PendingRounds);
        Assert.Contains(_log.Lines, l => l.StartsWith("Warning: agent: push to http://burnrate.test:9840/api/v1/write failed (500", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_4xx_answer_is_reported_with_the_receivers_reason_and_not_retried()
    {
        _receiver.Answers.Enqueue(HttpStatusCode.BadRequest);
        var agent = Agent();

        var error = await Assert.ThrowsAsync<NodeAgentException>(() => DriveAsync(agent.RunOnceAsync(TestContext.Current.CancellationToken)));

        Assert.Single(_receiver.Requests);
        Assert.Contains("rejected the samples: 400 Bad Request: out of order sample", error.Message, StringComparison.Ordinal);
        Assert.Contains(_log.Lines, l => l.StartsWith("Error: agent: http://burnrate.test:9840/api/v1/write rejected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Once_gives_up_when_the_server_stays_unreachable_for_the_interval()
    {
        for (var i = 0; i < 100; i++)
            _receiver.Answers.Enqueue(HttpStatusCode.BadGateway);
        var agent = Agent();

        var error = await Assert.ThrowsAsync<NodeAgentException>(() => DriveAsync(agent.RunOnceAsync(TestContext.Current.CancellationToken)));

        Assert.Contains("could not push to http://burnrate.test:9840/api/v1/write within 15 s: 502 Bad Gateway", error.Message, StringComparison.Ordinal);
        // Tries at 0, 1, 3 and 7 s; the next (after 8 s) would start at the 15 s interval.
        Assert.Equal(4, _receiver.Requests.Count);
    }

    [Fact]
    public async Task Rounds_the_server_could_not_take_wait_and_are_delivered_oldest_first_when_it_is_back()
    {
        _receiver.DownUntil = s_t0.AddSeconds(40);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var agent = Agent();
        var run = agent.RunAsync(stop.Token);

        await DriveAsync(Until(() => _receiver.Requests.Count(r => r.Status == 204) >= 4));
        await stop.CancelAsync();
        await run; // returns when stopped

        // Rounds at 0, 15, 30 s fail (the receiver is down until 40 s), then the round at 45 s delivers all four in order.
        var delivered = _receiver.Requests.Where(r => r.Status == 204).Take(4).Select(r => r.Samples[0].TimestampMs).ToList();
        Assert.Equal([0, 15_000, 30_000, 45_000], delivered.Select(ms => (ms - s_t0.ToUnixTimeMilliseconds()) / 1000 * 1000));
        Assert.Contains(_log.Lines, l => l.Contains("round(s) kept for the next try", StringComparison.Ordinal));
        Assert.Contains(_log.Lines, l => l == "Information: agent: pushing to http://burnrate.test:9840/api/v1/write again");
    }

    [Fact]
    public async Task When_nvidia_smi_fails_after_the_first_round_the_node_stays_known_by_its_info_alone()
    {
        var reads = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var agent = Agent(_ => ++reads == 1 ? Task.FromResult(TwoGpus) : throw new NvidiaSmiException("nvidia-smi at 'nvidia-smi' failed (exit code 15): GPU is lost"));
        var run = agent.RunAsync(stop.Token);

        await DriveAsync(Until(() => _receiver.Requests.Count >= 2));
        await stop.CancelAsync();
        await run;

        var second = _receiver.Requests[1].Samples;
        var info = Assert.Single(second);
        Assert.Equal((AgentSeries.NodeInfoMetric, "2", "NVIDIA A100-SXM4-40GB"), (info.Name, info.Get("gpus"), info.Get("gpu_model")));
        Assert.Contains(_log.Lines, l => l == "Warning: agent: nvidia-smi at 'nvidia-smi' failed (exit code 15): GPU is lost; sending the node's info without GPU readings");
    }

    [Fact]
    public async Task A_first_nvidia_smi_failure_or_unreadable_output_is_an_error()
    {
        var failing = Agent(_ => throw new NvidiaSmiException("cannot run nvidia-smi at 'nvidia-smi': No such file or directory"));
        var garbage = Agent(_ => Task.FromResult("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"));

        await Assert.ThrowsAsync<NvidiaSmiException>(() => failing.RunAsync(TestContext.Current.CancellationToken));
        var error = await Assert.ThrowsAsync<NvidiaSmiException>(() => garbage.RunOnceAsync(TestContext.Current.CancellationToken));

        Assert.StartsWith("nvidia-smi printed no GPU the agent could read: line 1:", error.Message, StringComparison.Ordinal);
        Assert.Empty(_receiver.Requests);
    }

    [Theory]
    [InlineData("http://10.0.0.5:9840", "http://10.0.0.5:9840/api/v1/write")]
    [InlineData("http://10.0.0.5:9840/", "http://10.0.0.5:9840/api/v1/write")]
    [InlineData("https://proxy.example/burnrate/", "https://proxy.example/burnrate/api/v1/write")]
    public void The_write_endpoint_is_the_servers_url_plus_api_v1_write(string server, string endpoint) =>
        Assert.Equal(endpoint, NodeAgent.WriteEndpoint(new Uri(server)).AbsoluteUri);

    private static async Task<bool> Until(Func<bool> condition)
    {
        while (!condition())
            await Task.Delay(1, TestContext.Current.CancellationToken);
        return true;
    }

    public void Dispose()
    {
        _http.Dispose();
        _receiver.Dispose();
    }

    /// <summary>A remote write receiver that answers from a script (then 204), or 503 while "down"; it records each request.</summary>
    private sealed class ScriptedReceiver(TimeProvider time) : HttpMessageHandler
    {
        private readonly List<Request> _requests = [];

        public Queue<HttpStatusCode> Answers { get; } = new();

        public DateTimeOffset DownUntil { get; set; }

        public List<Request> Requests
        {
            get
            {
                lock (_requests)
                    return [.. _requests];
            }
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Assert.Equal("snappy", Assert.Single(request.Content!.Headers.ContentEncoding));
            Assert.Equal("application/x-protobuf", request.Content.Headers.ContentType!.MediaType);
            Assert.Equal("0.1.0", Assert.Single(request.Headers.GetValues("X-Prometheus-Remote-Write-Version")));
            var body = await request.Content.ReadAsByteArrayAsync(cancellationToken);
            var samples = RemoteWriteDecoder.Decode(body, request.Content.Headers.ContentType.ToString()).Samples;
            var now = time.GetUtcNow();
            HttpStatusCode status;
            lock (_requests)
                status = now < DownUntil ? HttpStatusCode.ServiceUnavailable : Answers.TryDequeue(out var s) ? s : HttpStatusCode.NoContent;
            lock (_requests)
                _requests.Add(new Request(now, (int)status, Convert.ToBase64String(body), [.. samples]));
            var response = new HttpResponseMessage(status);
            if (status == HttpStatusCode.BadRequest)
                response.Content = new StringContent("out of order sample\n");
            if (status == HttpStatusCode.ServiceUnavailable && now >= DownUntil)
                response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(3));
            return response;
        }
    }

    private sealed record Request(DateTimeOffset At, int Status, string Body, List<MetricSample> Samples);

    /// <summary>Collects log lines as "Level: message".</summary>
    private sealed class ListLogger : ILogger
    {
        private readonly List<string> _lines = [];

        public List<string> Lines
        {
            get
            {
                lock (_lines)
                    return [.. _lines];
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines)
                _lines.Add($"{logLevel}: {formatter(state, exception)}");
        }
    }
}
