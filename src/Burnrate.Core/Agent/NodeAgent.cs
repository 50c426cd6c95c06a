using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Agent;

/// <summary>Settings of a <see cref="NodeAgent"/>.</summary>
public sealed class NodeAgentOptions
{
    /// <summary>The Burnrate server (base URL); samples go to <c>{Server}/api/v1/write</c>.</summary>
    public required Uri Server { get; init; }

    /// <summary>The node reported for.</summary>
    public required AgentNode Node { get; init; }

    /// <summary>How often nvidia-smi is read and a round pushed.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The nvidia-smi executable (a path, or a name looked up on <c>PATH</c>).</summary>
    public string NvidiaSmiPath { get; init; } = NvidiaSmi.DefaultPath;

    /// <summary>How long one nvidia-smi run may take before it is stopped and counted as failed.</summary>
    public TimeSpan NvidiaSmiTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The first wait after a failed push; it doubles with each failure in a row up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two tries.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Rounds kept while the server cannot be reached (240 × 15 s = an hour); older ones are dropped, with a warning.</summary>
    public int MaxPendingRounds { get; init; } = 240;

    /// <summary>The User-Agent of the requests.</summary>
    public string UserAgent { get; init; } = "burnrate-agent";
}

/// <summary>One round the agent read: when, how many GPUs, how many samples.</summary>
public sealed record AgentRound(DateTimeOffset At, int Gpus, IReadOnlyList<MetricSample> Samples);

/// <summary>
/// <c>burnrate agent</c>'s work, for a host without DCGM: every <see cref="NodeAgentOptions.Interval"/> it reads
/// nvidia-smi, turns the GPUs into DCGM-named series plus <c>burnrate_node_info</c> (<see cref="AgentSeries"/>) stamped
/// with the injected clock, and pushes them by remote write 1.0. Push failures (5xx, network) are retried with
/// exponential backoff, honouring <c>Retry-After</c>, and rounds that could not be sent wait, oldest first, up to
/// <see cref="NodeAgentOptions.MaxPendingRounds"/>; a 4xx answer drops the round and is logged (Prometheus semantics:
/// it would fail again). nvidia-smi failing on the first round is an error; later it is logged and the node's info is
/// still sent, so the node stays known while its GPUs cannot be read.
/// </summary>
/// <remarks>Not thread-safe: run one of <see cref="RunOnceAsync"/> and <see cref="RunAsync"/> at a time.</remarks>
public sealed partial class NodeAgent
{
    private readonly NodeAgentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<CancellationToken, Task<string>> _readGpus;
    private readonly RemoteWriteClient _client;
    private readonly Queue<AgentRound> _pending = new();
    private readonly HashSet<string> _migNoted = new(StringComparer.Ordinal);
    private TimeSpan _backoff;
    private bool _failing;
    private bool _announced;
    private int _lastGpus;
    private string _lastModel = "";

    /// <param name="options">What to read, where to push.</param>
    /// <param name="http">The client for the pushes (its timeout bounds one request).</param>
    /// <param name="time">The clock of the samples' timestamps, the interval and the backoff.</param>
    /// <param name="logger">Where failures, retries and recoveries are reported.</param>
    /// <param name="readGpus">Returns nvidia-smi's output; by default runs <see cref="NodeAgentOptions.NvidiaSmiPath"/>.</param>
    public NodeAgent(NodeAgentOptions options, HttpClient http, TimeProvider? time = null, ILogger? logger = null, Func<CancellationToken, Task<string>>? readGpus = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(http);
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _readGpus = readGpus ?? (ct => NvidiaSmi.QueryAsync(options.NvidiaSmiPath, options.NvidiaSmiTimeout, _time, ct));
        _client = new RemoteWriteClient(http, WriteEndpoint(options.Server), options.UserAgent, _time);
        _backoff = options.MinBackoff;
    }

    /// <summary>Where the samples go: <c>{server}/api/v1/write</c> (a path in the server URL is kept as a prefix).</summary>
    public Uri Endpoint => _client.Endpoint;

    /// <summary>Rounds read but not yet delivered.</summary>
    public int PendingRounds => _pending.Count;

    /// <summary>The remote write URL of a server base URL.</summary>
    public static Uri WriteEndpoint(Uri server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return new Uri(server.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/api/v1/write");
    }

    /// <summary>
    /// Reads and pushes one round (<c>--once</c>), retrying a failed push until <see cref="NodeAgentOptions.Interval"/>
    /// has passed. Throws <see cref="NvidiaSmiException"/> when nvidia-smi cannot be read, and
    /// <see cref="NodeAgentException"/> when the server rejected the round or could not be reached in time.
    /// </summary>
    public async Task<AgentRound> RunOnceAsync(CancellationToken cancellationToken = default)
    {
        var round = await ReadRoundAsync(first: true, cancellationToken).ConfigureAwait(false);
        _pending.Enqueue(round);
        var outcome = await FlushAsync(_time.GetUtcNow() + _options.Interval, cancellationToken).ConfigureAwait(false);
        if (outcome.Rejected is { } rejected)
            throw new NodeAgentException($"the server at {Endpoint} rejected the samples: {rejected}");
        if (_pending.Count > 0)
        {
            _pending.Clear();
            throw new NodeAgentException($"could not push to {Endpoint} within {_options.Interval.TotalSeconds:0.###} s: {outcome.LastFailure}");
        }
        return round;
    }

    /// <summary>
    /// Reads and pushes a round every interval until <paramref name="cancellationToken"/> is cancelled, then returns.
    /// Throws <see cref="NvidiaSmiException"/> only when the first reading fails.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            var due = _time.GetUtcNow();
            var first = true;
            while (true)
            {
                var round = await ReadRoundAsync(first, cancellationToken).ConfigureAwait(false);
                first = false;
                _pending.Enqueue(round);
                if (_pending.Count > _options.MaxPendingRounds)
                {
                    var dropped = _pending.Dequeue();
                    LogDropped(_logger, _options.MaxPendingRounds, dropped.At);
                }
                due += _options.Interval;
                await FlushAsync(due, cancellationToken).ConfigureAwait(false);
                var now = _time.GetUtcNow();
                if (due > now)
                    await Task.Delay(due - now, _time, cancellationToken).ConfigureAwait(false);
                else
                    due = now; // a round took longer than the interval: go on from now, not in a burst
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task<AgentRound> ReadRoundAsync(bool first, CancellationToken cancellationToken)
    {
        NvidiaSmiReadout readout;
        try
        {
            readout = NvidiaSmiCsv.Parse(await _readGpus(cancellationToken).ConfigureAwait(false));
            foreach (var problem in readout.Problems)
                LogUnreadable(_logger, problem);
            if (readout.Gpus.Count == 0 && readout.Problems.Count > 0)
                throw new NvidiaSmiException("nvidia-smi printed no GPU the agent could read: " + readout.Problems[0]);
        }
        catch (NvidiaSmiException e) when (!first)
        {
            // The node is still billed while its GPUs cannot be read: keep it known with what was last seen.
            LogReadFailed(_logger, e.Message);
            var at = _time.GetUtcNow();
            return new AgentRound(at, 0, [AgentSeries.NodeInfo(_options.Node, _lastGpus, _lastModel, at.ToUnixTimeMilliseconds())]);
        }
        var now = _time.GetUtcNow();
        foreach (var gpu in readout.Gpus)
        {
            if (gpu.MigEnabled == true && _migNoted.Add(gpu.Uuid))
                LogMigMode(_logger, gpu.Index, gpu.Uuid);
        }
        _lastGpus = readout.Gpus.Count;
        _lastModel = readout.Gpus.Count > 0 ? readout.Gpus[0].Name : "";
        return new AgentRound(now, readout.Gpus.Count, AgentSeries.Round(_options.Node, readout.Gpus, now));
    }

    private readonly record struct FlushOutcome(string? Rejected, string? LastFailure);

    /// <summary>Sends the pending rounds oldest first; backs off on failures while the next try would start before <paramref name="deadline"/>.</summary>
    private async Task<FlushOutcome> FlushAsync(DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        string? rejected = null, lastFailure = null;
        while (_pending.TryPeek(out var round))
        {
            var result = await _client.PushAsync(round.Samples, cancellationToken).ConfigureAwait(false);
            switch (result.Status)
            {
                case PushStatus.Sent:
                    _pending.Dequeue();
                    _backoff = _options.MinBackoff;
                    if (_failing)
                        LogRecovered(_logger, Endpoint);
                    else if (!_announced)
                        LogFirstPush(_logger, round.Gpus, _options.Node.Name, Endpoint);
                    _failing = false;
                    _announced = true;
                    continue;
                case PushStatus.Rejected:
                    _pending.Dequeue();
                    rejected = result.Detail;
                    LogRejected(_logger, Endpoint, round.Samples.Count, result.Detail);
                    continue;
            }
            _failing = true;
            lastFailure = result.Detail;
            var wait = result.RetryAfter is { } retryAfter && retryAfter > _backoff ? retryAfter : _backoff;
            if (wait > _options.MaxBackoff)
                wait = _options.MaxBackoff;
            if (_time.GetUtcNow() + wait >= deadline)
            {
                LogRetryNextRound(_logger, Endpoint, result.Detail, _pending.Count);
                break;
            }
            LogRetrying(_logger, Endpoint, result.Detail, wait.TotalSeconds);
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            _backoff = _backoff * 2 < _options.MaxBackoff ? _backoff * 2 : _options.MaxBackoff;
        }
        return new FlushOutcome(rejected, lastFailure);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "agent: pushing {Gpus} GPUs of node {Node} to {Endpoint}")]
    private static partial void LogFirstPush(ILogger logger, int gpus, string node, Uri endpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "agent: push to {Endpoint} failed ({Reason}); retrying in {Seconds} s")]
    private static partial void LogRetrying(ILogger logger, Uri endpoint, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "agent: push to {Endpoint} failed ({Reason}); {Rounds} round(s) kept for the next try")]
    private static partial void LogRetryNextRound(ILogger logger, Uri endpoint, string reason, int rounds);

    [LoggerMessage(Level = LogLevel.Information, Message = "agent: pushing to {Endpoint} again")]
    private static partial void LogRecovered(ILogger logger, Uri endpoint);

    [LoggerMessage(Level = LogLevel.Error, Message = "agent: {Endpoint} rejected {Samples} samples and they are dropped (a 4xx is not retried): {Reason}")]
    private static partial void LogRejected(ILogger logger, Uri endpoint, int samples, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "agent: more than {Rounds} rounds waiting; dropped the oldest, read at {At:O}")]
    private static partial void LogDropped(ILogger logger, int rounds, DateTimeOffset at);

    [LoggerMessage(Level = LogLevel.Warning, Message = "agent: {Reason}; sending the node's info without GPU readings")]
    private static partial void LogReadFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "agent: nvidia-smi: {Problem}")]
    private static partial void LogUnreadable(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "agent: GPU {Index} ({Uuid}) is in MIG mode: nvidia-smi reports no utilization for it, so it is priced but shows no utilization (dcgm-exporter reports MIG slices)")]
    private static partial void LogMigMode(ILogger logger, int index, string uuid);
}

/// <summary>The agent could not deliver a round: the server rejected it, or could not be reached in time.</summary>
public sealed class NodeAgentException : Exception
{
    public NodeAgentException()
    {
    }

    public NodeAgentException(string message)
        : base(message)
    {
    }

    public NodeAgentException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
