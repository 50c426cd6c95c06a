namespace Burnrate.Connectors;

/// <summary>How a connector's polling goes: what <c>GET /api/v1/connectors</c> and <c>/metrics</c> show.</summary>
/// <param name="Name">The connector's name (<c>slurm</c>).</param>
/// <param name="Kind">What it polls (<c>slurm</c>, <c>skypilot</c>).</param>
/// <param name="LastPoll">When the last poll started; null before the first.</param>
/// <param name="LastSuccess">When the last poll that succeeded started; null while none has.</param>
/// <param name="LastError">Why the last poll failed; null when it succeeded.</param>
/// <param name="Polls">Polls so far.</param>
/// <param name="Failures">Polls that failed.</param>
/// <param name="LastDuration">How long the last poll took.</param>
/// <param name="Events">Lifecycle events handed to the ingest pipeline so far.</param>
/// <param name="Tracked">Jobs (and SkyPilot clusters) the connector follows now (started, not yet ended).</param>
/// <param name="Source">How the last successful poll read its source (e.g. <c>squeue+sacct json openapi/dbv0.0.38</c>).</param>
public sealed record ConnectorHealth(
    string Name,
    string Kind,
    DateTimeOffset? LastPoll,
    DateTimeOffset? LastSuccess,
    string? LastError,
    long Polls,
    long Failures,
    TimeSpan LastDuration,
    long Events,
    int Tracked,
    string Source)
{
    /// <summary>How far behind the connector's view is at <paramref name="now"/>: time since the last successful poll (null before one).</summary>
    public TimeSpan? Lag(DateTimeOffset now) => LastSuccess is { } success ? now - success : null;
}

/// <summary>A connector whose health the server reports.</summary>
public interface IConnector
{
    /// <summary>Its health now.</summary>
    ConnectorHealth Health { get; }

    /// <summary>Polls until cancelled; a failing poll is recorded in <see cref="Health"/> and retried, never thrown.</summary>
    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>The connectors <c>burnrate serve</c> runs (empty when none is configured).</summary>
public sealed class ConnectorRegistry(IReadOnlyList<IConnector> connectors)
{
    /// <summary>The connectors, in configuration order.</summary>
    public IReadOnlyList<IConnector> Connectors { get; } = connectors;
}

/// <summary>The polling loop every connector runs.</summary>
public static class ConnectorLoop
{
    /// <summary>
    /// Calls <paramref name="poll"/> every <paramref name="interval"/> on <paramref name="time"/> (measured from the start
    /// of each poll, so a slow poll does not push the schedule back by its own length) until cancelled.
    /// </summary>
    public static async Task RunAsync(Func<CancellationToken, Task> poll, TimeSpan interval, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(poll);
        ArgumentNullException.ThrowIfNull(time);
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = time.GetTimestamp();
            try
            {
                await poll(cancellationToken).ConfigureAwait(false);
                var wait = interval - time.GetElapsedTime(started);
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }
}

/// <summary>The counters behind a connector's <see cref="ConnectorHealth"/>, updated once per poll; thread-safe.</summary>
internal sealed class PollRecord
{
    private readonly Lock _lock = new();
    private DateTimeOffset? _lastPoll;
    private DateTimeOffset? _lastSuccess;
    private string? _lastError;
    private long _polls;
    private long _failures;
    private long _events;
    private TimeSpan _lastDuration;
    private string _source = "";

    /// <summary>
    /// Records a poll that started at <paramref name="started"/>; <paramref name="error"/> is null when it succeeded.
    /// Returns whether the outcome changed (an error appeared, changed or cleared), which the connector logs.
    /// </summary>
    public bool Record(DateTimeOffset started, TimeSpan duration, string? error, int events, string? source = null)
    {
        lock (_lock)
        {
            var changed = error != _lastError;
            _lastPoll = started;
            _lastDuration = duration;
            _lastError = error;
            _polls++;
            _events += events;
            if (error is null)
                _lastSuccess = started;
            else
                _failures++;
            if (source is { Length: > 0 })
                _source = source;
            return changed;
        }
    }

    /// <summary>The health now; <paramref name="tracked"/> counts the jobs followed, <paramref name="source"/> overrides the recorded source.</summary>
    public ConnectorHealth Snapshot(string name, string kind, Func<int> tracked, string? source = null)
    {
        lock (_lock)
            return new ConnectorHealth(name, kind, _lastPoll, _lastSuccess, _lastError, _polls, _failures, _lastDuration, _events, tracked(), source ?? _source);
    }
}
