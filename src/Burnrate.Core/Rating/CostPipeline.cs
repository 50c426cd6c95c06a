using Burnrate.Alerting;
using Burnrate.Pricing;
using Burnrate.Storage;
using Burnrate.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Rating;

/// <summary>
/// Drives the rating engine: takes events, rates each minute once it is closed (its end plus the grace period has
/// passed on the injected clock), writes the minute's ledger rows, work counters and workloads to the store, and
/// keeps running totals and the current burn for live views.
/// </summary>
/// <remarks>Thread-safe: events and rating are serialized through one lock; the store write happens outside it.</remarks>
public sealed partial class CostPipeline : IDisposable
{
    private readonly RatingEngine _engine;
    private readonly ICostStore _store;
    private readonly TimeSpan _grace;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _rating = new(1, 1);
    private readonly Dictionary<string, long> _totalsByWorkload = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _totalsByProvider = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirtyWorkloads = new(StringComparer.Ordinal);
    private readonly CostSeries _series;
    // Rated but not yet stored (the store failed): written first on the next call, so a store outage loses nothing.
    private readonly List<CostLine> _unwrittenLines = [];
    private readonly List<WorkMinute> _unwrittenWork = [];
    private readonly List<WorkloadRecord> _unwrittenWorkloads = [];
    private int _pendingRows;
    private DateTimeOffset? _nextMinute;
    private long _eventCount;
    private long _lineCount;
    private long _totalNanos;

    public CostPipeline(RatingEngine engine, ICostStore store, RatingOptions? options = null, ILogger? logger = null)
    {
        _engine = engine;
        _store = store;
        options ??= new RatingOptions();
        _grace = options.Grace;
        _series = new CostSeries(options.CostSeries);
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// The alert engine evaluated on every rated minute (null: no alerting). Set before the first event. Minutes rated
    /// only to rebuild state (<see cref="DiscardBefore"/>) are not evaluated: they were before the restart.
    /// </summary>
    public AlertEngine? Alerts { get; set; }

    /// <summary>The calibration factors live rating applies (learned from reconciled bills); settable from any thread.</summary>
    public Pricing.Terms.Calibration Calibration
    {
        get => _engine.Calibration;
        set => _engine.Calibration = value;
    }

    /// <summary>The commitments and discounts the engine rates with (reconciliation lists their credits and unused commitment).</summary>
    public Pricing.Terms.PricingTerms Terms => _engine.PricingTerms;

    /// <summary>Each savings plan's commitment ($/h) left unspent by the last minute rated or burn read.</summary>
    public IReadOnlyDictionary<string, decimal> UnspentCommitments
    {
        get
        {
            lock (_lock)
                return new Dictionary<string, decimal>(_engine.UnspentCommitments, StringComparer.Ordinal);
        }
    }

    /// <summary>Events applied so far.</summary>
    public long EventCount => Interlocked.Read(ref _eventCount);

    /// <summary>Rated rows waiting for the store (non-zero only after a failed write).</summary>
    public int PendingRows => Volatile.Read(ref _pendingRows);

    /// <summary>Ledger rows written so far.</summary>
    public long LineCount => Interlocked.Read(ref _lineCount);

    /// <summary>Everything rated so far.</summary>
    public Money Total => new(Interlocked.Read(ref _totalNanos));

    /// <summary>The end of the last minute rated.</summary>
    public DateTimeOffset? RatedThrough
    {
        get
        {
            lock (_lock)
                return _engine.RatedThrough;
        }
    }

    /// <summary>Keys booked at zero because no price was known.</summary>
    public IReadOnlyList<string> Unpriced
    {
        get
        {
            lock (_lock)
                return [.. _engine.Unpriced];
        }
    }

    /// <summary>
    /// Minutes before this instant are rated (to rebuild state) but neither written nor totalled: set while replaying
    /// the write-ahead log, whose checkpoint says the ledger already holds them.
    /// </summary>
    public DateTimeOffset? DiscardBefore { get; set; }

    /// <summary>
    /// Whether any of <paramref name="events"/> is about something the engine still holds (a node, a workload not yet
    /// forgotten, a volume) or is a price: the write-ahead log keeps such lifecycle events when it frees old input.
    /// </summary>
    public bool StillMatters(IReadOnlyList<FleetEvent> events)
    {
        lock (_lock)
            return events.Any(_engine.Refers);
    }

    /// <summary>Applies events (in time order) to the inventory.</summary>
    public void Apply(IReadOnlyList<FleetEvent> events)
    {
        lock (_lock)
        {
            foreach (var e in events)
            {
                _nextMinute ??= RatingEngine.Floor(e.Time);
                _engine.Apply(e);
                Alerts?.Observe(e);
                if (e is WorkloadStarted ws)
                    _dirtyWorkloads.Add(ws.Workload.Id);
                else if (e is WorkloadStopped wst)
                    _dirtyWorkloads.Add(wst.WorkloadId);
            }
            Interlocked.Add(ref _eventCount, events.Count);
        }
    }

    /// <summary>
    /// Rates and stores every minute that is closed at <paramref name="now"/>; returns how many minutes were rated.
    /// When the store fails, the exception propagates and the rated rows are kept and written first on the next call.
    /// </summary>
    public async Task<int> RateClosedMinutesAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var minutes = RateClosed(now);
        await FlushAsync(cancellationToken);
        return minutes;
    }

    /// <summary>
    /// Rates every minute that is closed at <paramref name="now"/> and keeps its rows for <see cref="FlushAsync"/>;
    /// returns how many minutes were rated. Synchronous, so the ingest reader can rate at an exact point between the
    /// inputs it applies (the same point on replay).
    /// </summary>
    public int RateClosed(DateTimeOffset now)
    {
        var minutes = 0;
        var rows = 0;
        lock (_lock)
        {
            while (_nextMinute is { } minute && minute.AddMinutes(1) + _grace <= now)
            {
                var rated = _engine.RateMinute(minute);
                _nextMinute = minute.AddMinutes(1);
                minutes++;
                if (minute.Minute == 59)
                    ForgetEndedWorkloads();
                if (DiscardBefore is { } discard && minute < discard)
                    continue;
                Alerts?.Evaluate(rated, _engine.Workloads);
                foreach (var line in rated.Lines)
                {
                    _unwrittenLines.Add(line);
                    rows++;
                    if (line.Cost.Nanos == 0)
                        continue;
                    _series.Add(line);
                    _totalsByWorkload[line.WorkloadId] = _totalsByWorkload.GetValueOrDefault(line.WorkloadId) + line.Cost.Nanos;
                    _totalsByProvider[line.Provider] = _totalsByProvider.GetValueOrDefault(line.Provider) + line.Cost.Nanos;
                    _totalNanos += line.Cost.Nanos;
                }
                _unwrittenWork.AddRange(rated.Work);
            }
            if (_dirtyWorkloads.Count > 0)
            {
                _unwrittenWorkloads.AddRange(_engine.Workloads.Where(w => _dirtyWorkloads.Contains(w.Info.Id)).Select(w => new WorkloadRecord(w.Info, w.Started, w.Stopped, w.EstimatePerHour)));
                _dirtyWorkloads.Clear();
            }
            Volatile.Write(ref _pendingRows, _unwrittenLines.Count);
        }
        if (minutes > 0)
            LogRated(_logger, minutes, rows);
        return minutes;
    }

    /// <summary>
    /// Writes the rows rated so far to the store and returns the end of the last minute the ledger now holds (null when
    /// nothing was ever rated). When the store fails, the exception propagates and the rows stay for the next call; each
    /// write replaces by key, so retrying a batch that partly landed never doubles anything.
    /// </summary>
    public async Task<DateTimeOffset?> FlushAsync(CancellationToken cancellationToken = default)
    {
        await _rating.WaitAsync(cancellationToken);
        try
        {
            CostLine[] lines;
            WorkMinute[] work;
            WorkloadRecord[] workloads;
            DateTimeOffset? through;
            lock (_lock)
            {
                lines = [.. _unwrittenLines];
                work = [.. _unwrittenWork];
                workloads = [.. _unwrittenWorkloads];
                through = _engine.RatedThrough;
            }
            // Rating only appends, so what was copied is still the front of each list when it is removed.
            if (workloads.Length > 0)
            {
                await _store.UpsertWorkloadsAsync(workloads, cancellationToken);
                lock (_lock)
                    _unwrittenWorkloads.RemoveRange(0, workloads.Length);
            }
            if (lines.Length > 0)
            {
                await _store.WriteAsync(lines, cancellationToken);
                Interlocked.Add(ref _lineCount, lines.Length);
                lock (_lock)
                {
                    _unwrittenLines.RemoveRange(0, lines.Length);
                    Volatile.Write(ref _pendingRows, _unwrittenLines.Count);
                }
            }
            if (work.Length > 0)
            {
                await _store.WriteWorkAsync(work, cancellationToken);
                lock (_lock)
                    _unwrittenWork.RemoveRange(0, work.Length);
            }
            return through;
        }
        finally
        {
            _rating.Release();
        }
    }

    /// <summary>
    /// Evaluates the alert rules that can be judged from the live burn (<see cref="AlertEngine.EvaluateLive"/>) at
    /// <paramref name="now"/>: called after input is applied and on a one-second tick, so such an alert fires within a
    /// second of its evidence rather than when its minute is rated. Does nothing without <see cref="Alerts"/>.
    /// </summary>
    public void EvaluateLive(DateTimeOffset now)
    {
        if (Alerts is not { } alerts)
            return;
        lock (_lock)
            alerts.EvaluateLive(now, _engine.CurrentBurn(now), _engine.Workloads);
    }

    /// <summary>The burn rate right now, by workload, with running totals.</summary>
    public BurnSummary Burn(DateTimeOffset now)
    {
        lock (_lock)
        {
            var lines = _engine.CurrentBurn(now);
            var names = _engine.Workloads.ToDictionary(w => w.Info.Id, w => w.Info, StringComparer.Ordinal);
            var byWorkload = lines
                .GroupBy(l => l.WorkloadId, StringComparer.Ordinal)
                .Select(g =>
                {
                    names.TryGetValue(g.Key, out var info);
                    var first = g.First().Dimensions;
                    return new WorkloadBurn(
                        g.Key,
                        info?.Name ?? "(idle)",
                        info?.Team ?? (g.Key.Length == 0 ? "" : first.Team), // idle spans many owners
                        info?.User ?? (g.Key.Length == 0 ? "" : first.User),
                        string.Join(",", g.Select(l => l.Dimensions.Provider).Distinct().Order()),
                        new HourlyRate(g.Sum(l => l.Rate.NanosPerHour)),
                        new Money(_totalsByWorkload.GetValueOrDefault(g.Key)));
                })
                .OrderByDescending(w => w.Rate.NanosPerHour)
                .ToList();
            var byProvider = lines.GroupBy(l => l.Dimensions.Provider, StringComparer.Ordinal)
                .Select(g => new ProviderBurn(g.Key, new HourlyRate(g.Sum(l => l.Rate.NanosPerHour)), new Money(_totalsByProvider.GetValueOrDefault(g.Key))))
                .ToList();
            foreach (var (provider, total) in _totalsByProvider)
            {
                if (!byProvider.Any(p => p.Provider == provider))
                    byProvider.Add(new ProviderBurn(provider, HourlyRate.Zero, new Money(total)));
            }
            byProvider.Sort((a, b) => b.Total.CompareTo(a.Total));
            return new BurnSummary(now, new HourlyRate(lines.Sum(l => l.Rate.NanosPerHour)), new Money(_totalNanos), byWorkload, byProvider);
        }
    }

    /// <summary>
    /// The cost series for <c>/metrics</c>: totals since start (never forgotten, so counters only rise) and the rate
    /// right now, by the configured label dimensions (<see cref="RatingOptions.CostSeries"/>), with the number of label
    /// sets folded into <see cref="CostSeries.Other"/>.
    /// </summary>
    public CostSeriesSnapshot Series(DateTimeOffset now)
    {
        lock (_lock)
            return new CostSeriesSnapshot(_series.Labels, _series.Snapshot(_engine.CurrentBurn(now)), _series.FoldedLabelSets);
    }

    /// <summary>
    /// What is running right now, read in one consistent step: the running nodes with their GPUs' holders, every line's
    /// current rate, and the workloads the engine knows. For the fleet and workload views.
    /// </summary>
    public LiveSnapshot Snapshot(DateTimeOffset now)
    {
        lock (_lock)
            return new LiveSnapshot(now, _engine.NodesAt(now), _engine.CurrentBurn(now), [.. _engine.Workloads]);
    }

    /// <summary>The price book rating uses (safe for concurrent readers while price events add to it).</summary>
    public IPriceBook Prices => _engine.Prices;

    public void Dispose() => _rating.Dispose();

    // The running totals are for the live view of what is burning; the engine forgets ended workloads hourly and so
    // do we (the ledger keeps their cost).
    private void ForgetEndedWorkloads()
    {
        var known = new HashSet<string>(_engine.Workloads.Select(w => w.Info.Id), StringComparer.Ordinal) { "" };
        foreach (var id in _totalsByWorkload.Keys.Where(id => !known.Contains(id)).ToList())
            _totalsByWorkload.Remove(id);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Rated {Minutes} minute(s): {Lines} ledger rows")]
    private static partial void LogRated(ILogger logger, int minutes, int lines);
}

/// <summary>What is burning right now.</summary>
public sealed record BurnSummary(DateTimeOffset At, HourlyRate Total, Money RatedSoFar, IReadOnlyList<WorkloadBurn> Workloads, IReadOnlyList<ProviderBurn> Providers);

/// <summary>A consistent view of the running fleet at <see cref="At"/>.</summary>
public sealed record LiveSnapshot(DateTimeOffset At, IReadOnlyList<NodeSnapshot> Nodes, IReadOnlyList<BurnLine> Lines, IReadOnlyList<WorkloadSnapshot> Workloads);

/// <summary>One workload's current rate and what it has cost so far (idle has an empty id).</summary>
public sealed record WorkloadBurn(string WorkloadId, string Name, string Team, string User, string Providers, HourlyRate Rate, Money Total);

/// <summary>The cost series at one instant: label dimensions, the series, and how many label sets were folded over the cap.</summary>
public sealed record CostSeriesSnapshot(IReadOnlyList<Storage.CostDimension> Labels, IReadOnlyList<CostSeriesValue> Series, int FoldedLabelSets);

/// <summary>One provider's current rate and its rated total.</summary>
public sealed record ProviderBurn(string Provider, HourlyRate Rate, Money Total);
