using System.Threading.Channels;
using Burnrate.Protocols.RemoteWrite;
using Burnrate.Rating;
using Burnrate.Telemetry;
using Burnrate.Telemetry.Mapping;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Ingest;

/// <summary>
/// The one path from every receiver to the ledger. A receiver decodes a request (rejecting bad input before anything is
/// kept), then <see cref="TryAccept"/> appends the raw request to the write-ahead log and queues its decoded payload;
/// only then is the request acknowledged. One reader (<see cref="RunAsync"/>) maps samples to fleet events and applies
/// them to the <see cref="CostPipeline"/>; <see cref="RateAsync"/> rates closed minutes, records the checkpoint and
/// frees old log segments. On start, <see cref="ReplayAsync"/> rebuilds the state from the log and rewrites the minutes
/// after the checkpoint, so a crash loses nothing acknowledged and a replay counts nothing twice (docs/ingest.md).
/// </summary>
public sealed partial class IngestPipeline : IDisposable
{
    private readonly CostPipeline _cost;
    private readonly TelemetryMapper _mapper;
    private readonly WriteAheadLog? _wal;
    private readonly IngestOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<QueueItem> _queue = Channel.CreateUnbounded<QueueItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _acceptLock = new();
    private readonly SemaphoreSlim _rating = new(1, 1);
    private long _queued;
    private long _inFlight;
    private int _running;
    private DateTimeOffset? _checkpoint;
    private DateTimeOffset _lastCompaction = DateTimeOffset.MinValue;
    private long _lastLiveEvaluation;
    private int _liveTimerArmed;
    private ITimer? _liveTimer;
    private static readonly TimeSpan s_liveEvaluationSpacing = TimeSpan.FromMilliseconds(100);

    /// <param name="cost">The rating pipeline the events go to.</param>
    /// <param name="mapper">Maps samples to events; used only by the reader.</param>
    /// <param name="wal">The write-ahead log; null keeps everything in memory (tests, the demo).</param>
    /// <param name="options">Queue bound and log retention; defaults when null.</param>
    /// <param name="logger">Where replay and failures are reported.</param>
    public IngestPipeline(CostPipeline cost, TelemetryMapper mapper, WriteAheadLog? wal = null, IngestOptions? options = null, ILogger? logger = null)
    {
        _cost = cost;
        _mapper = mapper;
        _mapper.Prices ??= cost.Prices; // Metaflow steps' launch-time estimates, from the prices the engine rates with
        _wal = wal;
        _options = options ?? new IngestOptions();
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Counters for self-metrics.</summary>
    public IngestStats Stats { get; } = new();

    /// <summary>Label arrays of remote write series already seen, shared by the receiver's requests and the replay.</summary>
    public RemoteWriteSeriesCache RemoteWriteSeries { get; } = new();

    /// <summary>The mapper's counts of samples used and ignored.</summary>
    public MapperStats MapperStats => _mapper.Stats;

    /// <summary>The rating pipeline fed by this ingest.</summary>
    public CostPipeline Cost => _cost;

    /// <summary>The write-ahead log, when there is one.</summary>
    public WriteAheadLog? Wal => _wal;

    /// <summary>Samples and events accepted but not yet applied.</summary>
    public long QueuedItems => Interlocked.Read(ref _queued);

    /// <summary>The most samples and events the queue holds before receivers answer 503.</summary>
    public long QueueCapacity => _options.QueueCapacity;

    /// <summary>The largest remote write or OTLP body the receivers accept, compressed and uncompressed.</summary>
    public int MaxMetricsBodyBytes => _options.MaxMetricsBodyBytes;

    /// <summary>
    /// Keeps an accepted input: appends <paramref name="record"/> to the write-ahead log and queues
    /// <paramref name="payload"/> (what the record decodes to). Returns false, keeping nothing, when the queue is full:
    /// the receiver answers 503 with <c>Retry-After</c> and the client sends again.
    /// </summary>
    /// <exception cref="IOException">The log could not be written (the receiver answers 503; nothing was kept).</exception>
    public bool TryAccept(IngestRecord record, IngestPayload payload)
    {
        ArgumentNullException.ThrowIfNull(record);
        var count = payload.Count;
        lock (_acceptLock)
        {
            var queued = Interlocked.Read(ref _queued);
            if (queued > 0 && queued + count > _options.QueueCapacity)
            {
                Stats.Busy(record.Kind);
                return false;
            }
            // Log, then queue, under one lock: the reader sees inputs in the order the log holds them.
            _wal?.Append(record);
            Interlocked.Add(ref _queued, count);
            Interlocked.Increment(ref _inFlight);
            _queue.Writer.TryWrite(new QueueItem(payload, null, null));
        }
        Stats.Accepted(record.Kind, payload.Samples.Count, payload.Events.Count);
        return true;
    }

    /// <summary>
    /// Applies queued inputs until <paramref name="cancellationToken"/> is cancelled; what is queued then is applied
    /// before returning.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
            throw new InvalidOperationException("the ingest reader is already running");
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                    Process(item);
                EvaluateLiveAlerts();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            while (reader.TryRead(out var rest))
                Process(rest);
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>
    /// The clock live alert evaluation reads: when set, the reader evaluates the live-judged alert rules
    /// (<see cref="CostPipeline.EvaluateLive"/>) each time it has applied what was queued, at most every 100 ms (input
    /// applied sooner is evaluated when the 100 ms are up), so an alert fires as soon as its evidence is applied. Null
    /// (the default) leaves alerts to the rated minutes.
    /// </summary>
    public TimeProvider? LiveAlertClock { get; set; }

    private void EvaluateLiveAlerts()
    {
        if (LiveAlertClock is not { } clock || _cost.Alerts is null)
            return;
        var last = Interlocked.Read(ref _lastLiveEvaluation);
        var elapsed = last == 0 ? TimeSpan.MaxValue : clock.GetElapsedTime(last);
        if (elapsed >= s_liveEvaluationSpacing)
        {
            EvaluateLiveNow(clock);
            return;
        }
        // Evaluated moments ago: once more when the spacing is up (so what was just applied is not left to the 1 s
        // tick), on a timer armed at most once.
        if (Interlocked.Exchange(ref _liveTimerArmed, 1) == 1)
            return;
        _liveTimer?.Dispose();
        _liveTimer = clock.CreateTimer(_ =>
        {
            Volatile.Write(ref _liveTimerArmed, 0);
            EvaluateLiveNow(clock);
        }, null, s_liveEvaluationSpacing - elapsed, Timeout.InfiniteTimeSpan);
    }

    private void EvaluateLiveNow(TimeProvider clock)
    {
        Interlocked.Exchange(ref _lastLiveEvaluation, clock.GetTimestamp());
        try
        {
            _cost.EvaluateLive(clock.GetUtcNow());
        }
#pragma warning disable CA1031 // An alert rule's failure must not stop ingest: what is applied stays applied.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogLiveEvaluationFailed(_logger, e.Message);
        }
    }

    /// <summary>
    /// Applies everything queued now, on the calling thread, and returns how many inputs that was: for a caller that
    /// drives the pipeline itself (the demo's simulator, tests) instead of running <see cref="RunAsync"/>; never both.
    /// </summary>
    public int ApplyQueued()
    {
        var applied = 0;
        while (_queue.Reader.TryRead(out var item))
        {
            Process(item);
            applied++;
        }
        return applied;
    }

    /// <summary>
    /// Queues events produced in this process (the demo's simulator) without a request body to log: only for a pipeline
    /// without a write-ahead log, whose input a restart cannot replay anyway. Returns false when the queue is full.
    /// </summary>
    public bool TryAcceptEvents(IReadOnlyList<FleetEvent> events, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (_wal is not null)
            throw new InvalidOperationException("events without a body cannot be logged; post them as JSON to /api/v1/events");
        return TryAccept(new IngestRecord(IngestKind.Events, receivedAt, "in-process", ReadOnlyMemory<byte>.Empty), IngestPayload.OfEvents(events));
    }

    /// <summary>Waits until everything accepted so far has been applied (for shutdown and tests).</summary>
    public async Task DrainAsync(CancellationToken cancellationToken = default)
    {
        while (Interlocked.Read(ref _inFlight) > 0)
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Replays the write-ahead log into a fresh pipeline before serving: each kept input is decoded and applied in order,
    /// and minutes are rated at exactly the points the reader rated them before (the log's rating marks), so an input
    /// late for its minute lands where it landed before. Minutes before the checkpoint are rated only to rebuild state;
    /// the later ones are written again (the store replaces a minute whole, so a minute that partly landed before the
    /// crash is not doubled). Then rates what is closed at <paramref name="now"/>. Returns the number of inputs replayed.
    /// </summary>
    public async Task<int> ReplayAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (_wal is null)
            return 0;
        _checkpoint = _wal.ReadCheckpoint();
        _cost.DiscardBefore = _checkpoint;
        var replayed = 0;
        var failed = 0;
        try
        {
            foreach (var record in _wal.ReadAll())
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (record.Kind == IngestKind.RatingMark)
                {
                    _cost.RateClosed(record.ReceivedAt);
                    continue;
                }
                IngestPayload payload;
                try
                {
                    payload = IngestDecoder.Decode(record, RemoteWriteSeries);
                }
                catch (Exception e) when (e is InvalidTelemetryException or Protocols.RemoteWrite.UnsupportedRemoteWriteTypeException)
                {
                    failed++; // it decoded when it was accepted; a decoder that changed since is the only way here
                    LogReplayDecodeFailed(_logger, record.Kind, record.ReceivedAt, e.Message);
                    continue;
                }
                Apply(payload);
                replayed++;
            }
            await RateAsync(now, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _cost.DiscardBefore = null;
        }
        Stats.Replayed = replayed;
        if (replayed > 0 || failed > 0 || _checkpoint is not null)
            LogReplayed(_logger, replayed, failed, _checkpoint, _cost.RatedThrough);
        return replayed;
    }

    /// <summary>
    /// Rates the minutes closed at <paramref name="now"/> at this point of the input (a rating mark goes into the log,
    /// and the reader rates when it reaches it), writes them to the store, records the checkpoint and, at most once a
    /// minute, frees log segments older than the retention before it. A store failure propagates; the rows are kept
    /// and written by the next call.
    /// </summary>
    public async Task RateAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await _rating.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var mark = new IngestRecord(IngestKind.RatingMark, now, "", ReadOnlyMemory<byte>.Empty);
            if (Volatile.Read(ref _running) == 1)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (_acceptLock)
                {
                    _wal?.Append(mark);
                    Interlocked.Increment(ref _inFlight);
                    _queue.Writer.TryWrite(new QueueItem(default, now, done));
                }
                await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // Under the accept lock: no input can slip in between the mark and the rating, so replay rates at the
                // same point.
                lock (_acceptLock)
                {
                    _wal?.Append(mark);
                    ApplyQueued();
                    _cost.RateClosed(now);
                }
            }
            var through = await _cost.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (_wal is null || through is null || through == _checkpoint)
                return;
            _wal.WriteCheckpoint(through.Value);
            _checkpoint = through;
            if (now - _lastCompaction < TimeSpan.FromMinutes(1))
                return;
            _lastCompaction = now;
            var freed = _wal.Compact(through.Value - _options.WalRetention, KeepOnCompaction);
            if (freed > 0)
                LogCompacted(_logger, freed, _wal.Bytes);
        }
        finally
        {
            _rating.Release();
        }
    }

    public void Dispose()
    {
        _liveTimer?.Dispose();
        _rating.Dispose();
    }

    private bool KeepOnCompaction(IngestRecord record)
    {
        if (record.Kind != IngestKind.Events)
            return false;
        try
        {
            return _cost.StillMatters(IngestDecoder.Decode(record).Events);
        }
        catch (InvalidTelemetryException)
        {
            return false;
        }
    }

    private void Process(QueueItem item)
    {
        if (item.RateAt is { } now)
        {
            try
            {
                _cost.RateClosed(now);
                item.Done?.TrySetResult();
            }
#pragma warning disable CA1031 // Handed to the caller of RateAsync, which logs it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                item.Done?.TrySetException(e);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
            return;
        }
        var payload = item.Payload;
        try
        {
            Apply(payload);
        }
#pragma warning disable CA1031 // One input that breaks the mapper must not stop ingest for everyone: it is logged and counted.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Stats.ApplyFailed();
            LogApplyFailed(_logger, e);
        }
        finally
        {
            Interlocked.Add(ref _queued, -payload.Count);
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private void Apply(IngestPayload payload)
    {
        if (payload.Samples.Count > 0)
        {
            var events = _mapper.Map(payload.Samples);
            if (events.Count > 0)
                _cost.Apply(events);
        }
        if (payload.Events.Count > 0)
            _cost.Apply(payload.Events);
    }

    /// <summary>An input to apply, or (with <see cref="RateAt"/>) the point to rate at.</summary>
    private readonly record struct QueueItem(IngestPayload Payload, DateTimeOffset? RateAt, TaskCompletionSource? Done);

    [LoggerMessage(Level = LogLevel.Error, Message = "alerts: live evaluation failed: {Reason}")]
    private static partial void LogLiveEvaluationFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "wal: replayed {Records} inputs ({Failed} failed to decode); checkpoint {Checkpoint:O}, now rated through {RatedThrough:O}")]
    private static partial void LogReplayed(ILogger logger, int records, int failed, DateTimeOffset? checkpoint, DateTimeOffset? ratedThrough);

    [LoggerMessage(Level = LogLevel.Warning, Message = "wal: a {Kind} input received {Received:O} no longer decodes and was skipped: {Reason}")]
    private static partial void LogReplayDecodeFailed(ILogger logger, IngestKind kind, DateTimeOffset received, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "wal: freed {Freed} bytes; {Bytes} bytes kept")]
    private static partial void LogCompacted(ILogger logger, long freed, long bytes);

    [LoggerMessage(Level = LogLevel.Error, Message = "ingest: applying an input failed; it was skipped")]
    private static partial void LogApplyFailed(ILogger logger, Exception exception);
}

/// <summary>Settings of the <see cref="IngestPipeline"/> (config section <c>ingest</c>).</summary>
public sealed class IngestOptions
{
    /// <summary>Samples and events accepted but not yet applied before receivers answer 503 (default 2,000,000).</summary>
    public long QueueCapacity { get; init; } = 2_000_000;

    /// <summary>
    /// How long input is kept in the log after the minutes it fed are in the ledger (default 1 hour): a restart rebuilds
    /// node, pod and counter state from this much input. Lifecycle events of things still running are kept longer.
    /// </summary>
    public TimeSpan WalRetention { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The default of <see cref="MaxMetricsBodyBytes"/>: 32 MiB.</summary>
    public const int DefaultMaxMetricsBodyBytes = 32 << 20;

    /// <summary>
    /// The largest remote write or OTLP body accepted, compressed and after decompression (default 32 MiB); a larger one
    /// is refused with 413.
    /// </summary>
    public int MaxMetricsBodyBytes
    {
        get;
        init => field = value is > 0 and <= 1 << 30
            ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "the body limit must be between 1 byte and 1 GiB");
    } = DefaultMaxMetricsBodyBytes;
}
