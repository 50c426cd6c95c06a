using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Alerting;

/// <summary>How the ruler (<c>serve --role ruler</c>) reads the store.</summary>
public sealed record AlertRulerOptions
{
    /// <summary>How often the ruler looks for minutes that have settled.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long after its end a minute is taken as settled and evaluated, once: long enough for every ingester to have
    /// rated and written it (their <c>rating.grace</c>, a rating tick of 5 s, the write). Default 45 s.
    /// </summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>At most this many minutes are read and evaluated per tick (catching up after an outage goes on next tick).</summary>
    public int MaxMinutesPerTick { get; init; } = 60;
}

/// <summary>
/// The ruler: evaluates the alert rules from the ledger in a shared store, for a fleet whose input several ingesters
/// rate (docs/scale-out.md). Every <see cref="AlertRulerOptions.Interval"/> it reads the minutes that have settled
/// (ended at least <see cref="AlertRulerOptions.Settle"/> ago) and not yet evaluated, in order, each with its ledger
/// rows, work counters and workloads, and feeds each to the same <see cref="AlertEngine"/> the single process uses, so
/// <c>for</c>, repeats, resolves and delivery behave as they do there.
/// </summary>
/// <remarks>
/// <para>
/// Each minute is evaluated exactly once: the ruler keeps the end of what it evaluated and only moves it forward, so
/// ticks that find nothing new evaluate nothing, and a minute is never counted twice into a budget or a baseline. A
/// minute a late ingester writes after it settled is not evaluated again (its cost is in the ledger and the reports,
/// not in the alerts): set the settle time above the ingesters' <c>rating.grace</c> plus their write time.
/// </para>
/// <para>
/// What the store does not hold, the ruler derives from the ledger or does without: capacity changes (spot to
/// on-demand) are read from the capacity of each resource's rows minute by minute; GPU utilization is not stored, so
/// <c>idle_gpu</c> and <c>off_hours_idle</c> count only GPUs billed with no workload on them; live (per-second)
/// evaluation does not exist here, every rule waits for its minute to settle.
/// </para>
/// </remarks>
public sealed partial class AlertRuler
{
    private readonly ICostStore _store;
    private readonly AlertEngine _engine;
    private readonly AlertRulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _needsWork;
    // The capacity each resource's last segment had in the last minute evaluated (the fleet facts derived from the ledger).
    private Dictionary<string, CapacityType> _capacity = new(StringComparer.Ordinal);

    /// <param name="store">The shared store the ingesters write.</param>
    /// <param name="engine">The engine to feed; its sink delivers.</param>
    /// <param name="options">Interval and settle time.</param>
    /// <param name="time">The clock.</param>
    /// <param name="startAt">The first minute to evaluate; null: the newest minute settled at the first tick.</param>
    /// <param name="logger">Where read failures go.</param>
    public AlertRuler(ICostStore store, AlertEngine engine, AlertRulerOptions options, TimeProvider time, DateTimeOffset? startAt = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Interval <= TimeSpan.Zero)
            throw new ArgumentException("ruler.interval must be positive", nameof(options));
        if (options.Settle < TimeSpan.Zero)
            throw new ArgumentException("ruler.settle must not be negative", nameof(options));
        _store = store;
        _engine = engine;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _needsWork = engine.Rules.Any(r => r.Kind == AlertRuleKind.Stall);
        EvaluatedThrough = startAt is { } s ? RatingEngine.Floor(s) : null;
    }

    /// <summary>The end of the minutes evaluated so far (the next minute to evaluate starts here); null before the first tick.</summary>
    public DateTimeOffset? EvaluatedThrough { get; private set; }

    /// <summary>How many minutes have been evaluated.</summary>
    public long MinutesEvaluated { get; private set; }

    /// <summary>The end of the settled minutes at <paramref name="now"/>: every minute before it ended at least the settle time ago.</summary>
    public DateTimeOffset SettledThrough(DateTimeOffset now) => RatingEngine.Floor(now - _options.Settle);

    /// <summary>
    /// Evaluates, in order, the settled minutes not evaluated yet (at most <see cref="AlertRulerOptions.MaxMinutesPerTick"/>);
    /// returns how many. A store error propagates and leaves <see cref="EvaluatedThrough"/> where it was, so the same
    /// minutes are read again on the next tick.
    /// </summary>
    public async Task<int> TickAsync(CancellationToken cancellationToken = default)
    {
        var settled = SettledThrough(_time.GetUtcNow());
        var from = EvaluatedThrough ??= settled.AddMinutes(-1);
        if (from >= settled)
            return 0;
        var to = from.AddMinutes(Math.Min(_options.MaxMinutesPerTick, (settled - from).TotalMinutes));
        var lines = await _store.GetLinesAsync(from, to, cancellationToken).ConfigureAwait(false);
        var byMinute = lines.GroupBy(l => l.Minute).ToDictionary(g => g.Key, g => (IReadOnlyList<CostLine>)[.. g]);
        var ids = lines.Where(l => !l.IsIdle).Select(l => l.WorkloadId).ToHashSet(StringComparer.Ordinal);
        var workloads = (await _store.GetWorkloadsAsync(ids, cancellationToken).ConfigureAwait(false))
            .Select(w => new WorkloadSnapshot(w.Workload, w.Started, w.Ended, w.EstimatePerHour)).ToList();
        var minutes = new List<RatedMinute>();
        for (var minute = from; minute < to; minute = minute.AddMinutes(1))
        {
            IReadOnlyList<WorkMinute> work = [];
            if (_needsWork)
            {
                work = [.. (await _store.GetWorkTotalsAsync(minute, minute.AddMinutes(1), cancellationToken: cancellationToken).ConfigureAwait(false))
                    .Select(w => new WorkMinute(minute, w.WorkloadId, w.Metric, w.Increase))];
            }
            minutes.Add(new RatedMinute(minute, byMinute.GetValueOrDefault(minute) ?? [], work));
        }
        // Everything read: now evaluate (nothing below can fail half-way through a read).
        foreach (var minute in minutes)
        {
            ObserveCapacity(minute);
            _engine.Evaluate(minute, workloads);
            EvaluatedThrough = minute.Minute.AddMinutes(1);
            MinutesEvaluated++;
        }
        return minutes.Count;
    }

    /// <summary>Ticks every <see cref="AlertRulerOptions.Interval"/> on the clock until cancelled; a failing tick is logged and retried.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await TickAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // A store outage must not stop the ruler: the same minutes are read on the next tick.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogTickFailed(_logger, EvaluatedThrough, e.Message);
            }
            try
            {
                await Task.Delay(_options.Interval, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Tells the engine the capacity changes the minute's rows show: a resource seen for the first time or on another
    /// capacity than in the minute before (at the segment where it changed), and resources gone since.
    /// </summary>
    private void ObserveCapacity(RatedMinute minute)
    {
        var now = new Dictionary<string, CapacityType>(StringComparer.Ordinal);
        foreach (var resource in minute.Lines.Where(l => l.Component is CostComponent.Gpu or CostComponent.Compute).GroupBy(l => l.ResourceId))
        {
            var segments = resource.Select(l => (l.SegmentStart, l.Capacity)).Distinct().OrderBy(s => s.SegmentStart);
            var last = _capacity.TryGetValue(resource.Key, out var c) ? c : (CapacityType?)null;
            foreach (var (start, capacity) in segments)
            {
                if (capacity != last)
                    _engine.Observe(new CapacityChanged(minute.Minute.AddSeconds(start), resource.Key, capacity));
                last = capacity;
            }
            now[resource.Key] = last!.Value;
        }
        foreach (var gone in _capacity.Keys.Where(k => !now.ContainsKey(k)))
            _engine.Observe(new NodeStopped(minute.Minute, gone));
        _capacity = now;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ruler: reading the store failed (evaluated through {EvaluatedThrough:O}); retrying next tick: {Reason}")]
    private static partial void LogTickFailed(ILogger logger, DateTimeOffset? evaluatedThrough, string reason);
}
