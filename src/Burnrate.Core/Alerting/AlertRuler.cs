using System.Security.Cryptography;
using System.Text.Json;
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

    /// <summary>
    /// How long a ruler's last beat keeps it alive for the leader election (several rulers over one store): null is three
    /// <see cref="Interval"/>s. A leader whose beats stop is replaced this long after its last one.
    /// </summary>
    public TimeSpan? Lease { get; init; }

    /// <summary>
    /// The most a ruler that resumes (a restart, a new leader) evaluates of what was not evaluated: minutes further back
    /// than this before the newest settled one are skipped. Default 1 h.
    /// </summary>
    public TimeSpan MaxCatchUp { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How far back the ruler looks, every tick, for evaluated minutes whose ledger rows changed since (written late):
    /// counted, and their cost folded into budget spend. Zero turns it off. Default 10 min.
    /// </summary>
    public TimeSpan LateWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>This ruler's identity in the election; null: the host name, the process id and a random suffix.</summary>
    public string? RulerId { get; init; }

    /// <summary>The lease in force: <see cref="Lease"/>, or three intervals.</summary>
    public TimeSpan EffectiveLease => Lease ?? Interval * 3;
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
/// ticks that find nothing new evaluate nothing, and a minute is never counted twice into a budget or a baseline.
/// </para>
/// <para>
/// Several rulers over one store (a store that is an <see cref="IRulerStateStore"/>): every tick each writes a heartbeat
/// (its id, when it started, now) and reads all of them; the leader is the live ruler (last beat within
/// <see cref="AlertRulerOptions.EffectiveLease"/>) that started first (tie: the lowest id). No compare-and-set is needed:
/// every ruler computes the same answer from the same rows. Only the leader evaluates and delivers; after each tick
/// that evaluated minutes it saves a checkpoint (the cursor and the pending and firing alerts), and a ruler that
/// becomes leader — or finds that another saved since — resumes from it: alerts restored, cursor at most
/// <see cref="AlertRulerOptions.MaxCatchUp"/> behind, budget spend of the period so far read from the ledger.
/// </para>
/// <para>
/// A minute written after it was evaluated (a late ingester): with an <see cref="IRulerStateStore"/>, every tick compares
/// the row count and cost of the minutes evaluated in the last <see cref="AlertRulerOptions.LateWindow"/> with what was
/// evaluated; a minute that changed is counted in <see cref="LateMinutes"/> and the difference in cost goes into the
/// budget spend. Rules are not evaluated again for it (<c>for</c> and resolves cannot go back in time).
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
    private static readonly JsonSerializerOptions s_json = new();
    private readonly ICostStore _store;
    private readonly IRulerStateStore? _state;
    private readonly AlertEngine _engine;
    private readonly AlertRulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _needsWork;
    private readonly bool _hasBudgets;
    private readonly DateTimeOffset? _startAt;
    // The capacity each resource's last segment had in the last minute evaluated (the fleet facts derived from the ledger).
    private Dictionary<string, CapacityType> _capacity = new(StringComparer.Ordinal);
    // The minutes evaluated within the late window: how they stood when evaluated (rows, cost) and their budget spend.
    private readonly SortedDictionary<DateTimeOffset, (MinuteDigest Digest, BudgetMinute Spend)> _evaluated = [];
    private bool _resumed;
    // The checkpoint this ruler last resumed from (saver, cursor): another ruler's newer one means it led meanwhile.
    private (string RulerId, DateTimeOffset Through)? _resumedFrom;

    /// <param name="store">The shared store the ingesters write; when it is an <see cref="IRulerStateStore"/>, rulers elect a leader and persist their state there.</param>
    /// <param name="engine">The engine to feed; its sink delivers.</param>
    /// <param name="options">Interval, settle time, lease, catch-up and late window.</param>
    /// <param name="time">The clock.</param>
    /// <param name="startAt">The first minute to evaluate when no checkpoint is stored; null: the newest minute settled at the first tick.</param>
    /// <param name="logger">Where read failures go.</param>
    public AlertRuler(ICostStore store, AlertEngine engine, AlertRulerOptions options, TimeProvider time, DateTimeOffset? startAt = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        if (options.Interval <= TimeSpan.Zero)
            throw new ArgumentException("ruler.interval must be positive", nameof(options));
        if (options.Settle < TimeSpan.Zero)
            throw new ArgumentException("ruler.settle must not be negative", nameof(options));
        if (options.EffectiveLease <= options.Interval)
            throw new ArgumentException("ruler.lease must be longer than ruler.interval", nameof(options));
        if (options.MaxCatchUp < TimeSpan.FromMinutes(1))
            throw new ArgumentException("ruler.max_catch_up must be at least 1m", nameof(options));
        if (options.LateWindow < TimeSpan.Zero)
            throw new ArgumentException("ruler.late_window must not be negative", nameof(options));
        _store = store;
        _state = store as IRulerStateStore;
        _engine = engine;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _needsWork = engine.Rules.Any(r => r.Kind == AlertRuleKind.Stall);
        _hasBudgets = engine.Rules.Any(r => r.Kind == AlertRuleKind.Budget);
        _startAt = startAt is { } s ? RatingEngine.Floor(s) : null;
        EvaluatedThrough = _startAt;
        Id = options.RulerId ?? $"{Environment.MachineName}-{Environment.ProcessId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";
        StartedAt = time.GetUtcNow();
    }

    /// <summary>This ruler's identity in the election.</summary>
    public string Id { get; }

    /// <summary>When this ruler started (its heartbeat's start: the oldest live ruler leads).</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>Whether this ruler led at its last tick (always, over a store without <see cref="IRulerStateStore"/>, once it ticked).</summary>
    public bool IsLeader { get; private set; }

    /// <summary>The end of the minutes evaluated so far (the next minute to evaluate starts here); null before the first tick.</summary>
    public DateTimeOffset? EvaluatedThrough { get; private set; }

    /// <summary>How many minutes this ruler has evaluated.</summary>
    public long MinutesEvaluated { get; private set; }

    /// <summary>How many evaluated minutes were found written again later (late rows), each time one was.</summary>
    public long LateMinutes { get; private set; }

    /// <summary>The end of the settled minutes at <paramref name="now"/>: every minute before it ended at least the settle time ago.</summary>
    public DateTimeOffset SettledThrough(DateTimeOffset now) => RatingEngine.Floor(now - _options.Settle);

    /// <summary>
    /// Beats and takes part in the election; as the leader, resumes from the checkpoint where needed, folds late minutes
    /// into budgets and evaluates, in order, the settled minutes not evaluated yet (at most
    /// <see cref="AlertRulerOptions.MaxMinutesPerTick"/>); returns how many (0 when not the leader). A store error
    /// propagates and leaves <see cref="EvaluatedThrough"/> where it was, so the same minutes are read again on the next tick.
    /// </summary>
    public async Task<int> TickAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        if (_state is not null)
        {
            await _state.BeatAsync(new RulerHeartbeat(Id, StartedAt, now), cancellationToken).ConfigureAwait(false);
            var beats = await _state.GetHeartbeatsAsync(cancellationToken).ConfigureAwait(false);
            if (Leader(beats, now) != Id)
            {
                if (IsLeader)
                    LogLeadLost(_logger, Id);
                IsLeader = false;
                _resumed = false; // whoever leads now moves the checkpoint on: resume from it if the lead comes back
                return 0;
            }
            var checkpoint = await _state.GetRulerCheckpointAsync(cancellationToken).ConfigureAwait(false);
            var savedByAnother = checkpoint is not null && checkpoint.RulerId != Id && (checkpoint.RulerId, checkpoint.EvaluatedThrough) != _resumedFrom;
            if (!_resumed || savedByAnother || checkpoint?.EvaluatedThrough > EvaluatedThrough)
                await ResumeAsync(checkpoint, now, cancellationToken).ConfigureAwait(false);
            if (!IsLeader)
                LogLeading(_logger, Id, EvaluatedThrough);
            IsLeader = true;
            await FoldLateMinutesAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            if (!_resumed)
                await ResumeAsync(null, now, cancellationToken).ConfigureAwait(false);
            IsLeader = true;
        }
        var evaluated = await EvaluateSettledAsync(now, cancellationToken).ConfigureAwait(false);
        if (evaluated > 0 && _state is not null)
        {
            var alerts = JsonSerializer.Serialize(_engine.ExportAlerts(), s_json);
            await _state.SaveRulerCheckpointAsync(new RulerCheckpoint(EvaluatedThrough!.Value, alerts, Id, now), cancellationToken).ConfigureAwait(false);
        }
        return evaluated;
    }

    /// <summary>The leader among <paramref name="beats"/> at <paramref name="now"/>: the live ruler that started first (tie: lowest id), or null.</summary>
    public string? Leader(IEnumerable<RulerHeartbeat> beats, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(beats);
        return beats.Where(b => now - b.LastBeat <= _options.EffectiveLease)
            .OrderBy(b => b.StartedAt).ThenBy(b => b.RulerId, StringComparer.Ordinal)
            .Select(b => b.RulerId).FirstOrDefault();
    }

    /// <summary>
    /// Starts (again) from the checkpoint, or, without one, from the start given or the newest settled minute: the engine
    /// forgets what it held, takes the checkpoint's alerts, and the budget rules' spend of their period so far is read
    /// from the ledger. The cursor is at most <see cref="AlertRulerOptions.MaxCatchUp"/> behind the newest settled minute.
    /// </summary>
    private async Task ResumeAsync(RulerCheckpoint? checkpoint, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var settled = SettledThrough(now);
        var through = checkpoint?.EvaluatedThrough ?? (_resumed ? EvaluatedThrough : null) ?? _startAt ?? settled.AddMinutes(-1);
        var earliest = RatingEngine.Floor(settled - _options.MaxCatchUp);
        if (through < earliest)
        {
            LogCatchUpBounded(_logger, through, earliest);
            through = earliest;
        }
        var alerts = checkpoint is null ? [] : JsonSerializer.Deserialize<List<AlertSnapshot>>(checkpoint.Alerts, s_json) ?? [];
        // Read everything first: a failed read leaves the ruler as it was, to resume on the next tick.
        var spend = new List<(AlertRule Rule, DateTimeOffset PeriodStart, Dictionary<string, long> Spend)>();
        foreach (var rule in _engine.Rules.Where(r => r.Kind == AlertRuleKind.Budget))
        {
            var periodStart = AlertEngine.BudgetPeriodStart(rule, through);
            spend.Add((rule, periodStart, await BudgetSpendAsync(rule, periodStart, through, cancellationToken).ConfigureAwait(false)));
        }
        var baselines = new List<(AlertRule Rule, SortedDictionary<DateTimeOffset, Dictionary<string, double>> Minutes, DateTimeOffset From)>();
        foreach (var rule in _engine.Rules.Where(r => r.Kind == AlertRuleKind.Baseline))
        {
            var from = RatingEngine.Floor(through - BaselineMemory);
            baselines.Add((rule, await BaselineHistoryAsync(rule, from, through, cancellationToken).ConfigureAwait(false), from));
        }
        _engine.Reset();
        foreach (var (rule, minutes, from) in baselines)
        {
            // Every minute from the first one that burned, so minutes without spend teach a rate of 0 as live evaluation does.
            if (minutes.Count == 0)
                continue;
            IReadOnlyDictionary<string, double> none = new Dictionary<string, double>();
            for (var minute = minutes.Keys.First(); minute < through; minute = minute.AddMinutes(1))
                _engine.LearnBaseline(rule.Name, minute, minutes.TryGetValue(minute, out var rates) ? rates : none);
        }
        _capacity = new(StringComparer.Ordinal);
        _evaluated.Clear();
        var restored = _engine.RestoreAlerts(alerts);
        foreach (var (rule, periodStart, s) in spend)
            _engine.RestoreBudgetSpend(rule.Name, periodStart, s);
        EvaluatedThrough = through;
        _resumed = true;
        _resumedFrom = checkpoint is null ? null : (checkpoint.RulerId, checkpoint.EvaluatedThrough);
        LogResumed(_logger, Id, through, restored, checkpoint?.RulerId ?? "none");
    }

    /// <summary>What a budget rule's scope values spent in [<paramref name="from"/>, <paramref name="to"/>), from the ledger's rollups.</summary>
    private async Task<Dictionary<string, long>> BudgetSpendAsync(AlertRule rule, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var spend = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (_, key, nanos) in await ScopeCostsAsync(rule, from, to, step: null, cancellationToken).ConfigureAwait(false))
            spend[key] = spend.GetValueOrDefault(key) + nanos;
        return spend;
    }

    /// <summary>
    /// The ledger's cost in [<paramref name="from"/>, <paramref name="to"/>) per bucket of <paramref name="step"/> and per
    /// scope value of <paramref name="rule"/>, restricted to the lines its <c>match</c> keeps (as <see cref="AlertEngine"/>
    /// aggregates a minute): one report query, through the rollups.
    /// </summary>
    private async Task<List<(DateTimeOffset Bucket, string Key, long Nanos)>> ScopeCostsAsync(AlertRule rule, DateTimeOffset from, DateTimeOffset to, TimeSpan? step, CancellationToken cancellationToken)
    {
        var result = new List<(DateTimeOffset, string, long)>();
        if (from >= to)
            return result;
        var by = new List<CostDimension> { CostDimension.Idle };
        var scope = ScopeDimension(rule.Scope);
        if (scope is { } d)
            by.Add(d);
        foreach (var name in rule.Match.Keys)
        {
            if (!s_matchDimensions.TryGetValue(name, out var m))
                return result; // a match on what lines do not carry matches nothing (as AlertEngine.Matches)
            if (!by.Contains(m))
                by.Add(m);
        }
        var rows = await _store.QueryCostsAsync(new CostQuery { From = from, To = to, By = by, Step = step }, cancellationToken).ConfigureAwait(false);
        foreach (var row in rows)
        {
            string Key(CostDimension dimension) => row.Keys[by.IndexOf(dimension)];
            if (rule.Scope == AlertScope.Workload && Key(CostDimension.Idle) == "true")
                continue;
            if (rule.Match.Any(m => !string.Equals(Key(s_matchDimensions[m.Key]), m.Value, StringComparison.OrdinalIgnoreCase)))
                continue;
            var key = scope is { } sd ? Key(sd) : "";
            if (key.Length == 0 && rule.Scope != AlertScope.All)
                continue;
            result.Add((row.BucketStart ?? from, key, row.Cost.Nanos));
        }
        return result;
    }

    /// <summary>How far back a starting ruler rebuilds baselines: the week of hours a seasonal baseline compares with, and a day.</summary>
    internal static readonly TimeSpan BaselineMemory = TimeSpan.FromDays(8);

    /// <summary>
    /// A baseline rule's rate per scope value and minute over [<paramref name="from"/>, <paramref name="to"/>): whole hours
    /// from the hourly rollups (the hour's cost as the rate of each of its minutes), the current hour minute by minute.
    /// </summary>
    private async Task<SortedDictionary<DateTimeOffset, Dictionary<string, double>>> BaselineHistoryAsync(AlertRule rule, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var result = new SortedDictionary<DateTimeOffset, Dictionary<string, double>>();
        var hoursFrom = new DateTimeOffset(from.Ticks - (from.Ticks % TimeSpan.TicksPerHour), TimeSpan.Zero).AddHours(1);
        var hoursTo = new DateTimeOffset(to.Ticks - (to.Ticks % TimeSpan.TicksPerHour), TimeSpan.Zero);
        if (hoursFrom < hoursTo)
        {
            foreach (var (bucket, key, nanos) in await ScopeCostsAsync(rule, hoursFrom, hoursTo, TimeSpan.FromHours(1), cancellationToken).ConfigureAwait(false))
            {
                var usdPerHour = nanos / (double)Money.NanosPerDollar;
                for (var m = 0; m < 60; m++)
                    Add(bucket.AddMinutes(m), key, usdPerHour);
            }
        }
        var minutesFrom = hoursFrom < hoursTo ? hoursTo : from;
        if (minutesFrom < to)
        {
            foreach (var (bucket, key, nanos) in await ScopeCostsAsync(rule, minutesFrom, to, TimeSpan.FromMinutes(1), cancellationToken).ConfigureAwait(false))
                Add(bucket, key, nanos * 60 / (double)Money.NanosPerDollar);
        }
        return result;

        void Add(DateTimeOffset minute, string key, double usdPerHour)
        {
            var rates = result.TryGetValue(minute, out var r) ? r : result[minute] = new(StringComparer.Ordinal);
            rates[key] = rates.GetValueOrDefault(key) + usdPerHour;
        }
    }

    private static readonly Dictionary<string, CostDimension> s_matchDimensions = new(StringComparer.Ordinal)
    {
        ["workload"] = CostDimension.Workload,
        ["team"] = CostDimension.Team,
        ["project"] = CostDimension.Project,
        ["user"] = CostDimension.User,
        ["cluster"] = CostDimension.Cluster,
        ["cloud"] = CostDimension.Cloud,
        ["orchestrator"] = CostDimension.Orchestrator,
        ["capacity"] = CostDimension.Capacity,
        ["component"] = CostDimension.Component,
    };

    private static CostDimension? ScopeDimension(AlertScope scope) => scope switch
    {
        AlertScope.Workload => CostDimension.Workload,
        AlertScope.Team => CostDimension.Team,
        AlertScope.User => CostDimension.User,
        AlertScope.Project => CostDimension.Project,
        AlertScope.Cluster => CostDimension.Cluster,
        AlertScope.Cloud => CostDimension.Cloud,
        _ => null,
    };

    /// <summary>
    /// Compares the evaluated minutes of the late window with the ledger now; a minute whose rows or cost changed is
    /// counted and read again, and the difference in its budget spend goes into the budget rules.
    /// </summary>
    private async Task FoldLateMinutesAsync(CancellationToken cancellationToken)
    {
        if (_state is null || EvaluatedThrough is not { } through)
            return;
        var windowStart = through - _options.LateWindow;
        foreach (var old in _evaluated.Keys.Where(m => m < windowStart).ToList())
            _evaluated.Remove(old);
        if (_evaluated.Count == 0)
            return;
        var first = _evaluated.Keys.First();
        var digests = (await _state.GetMinuteDigestsAsync(first, through, cancellationToken).ConfigureAwait(false)).ToDictionary(d => d.Minute);
        foreach (var (minute, (digest, spend)) in _evaluated.ToList())
        {
            var now = digests.GetValueOrDefault(minute) ?? new MinuteDigest(minute, 0, 0);
            if (now == digest)
                continue;
            var after = spend;
            if (_hasBudgets)
            {
                var lines = await _store.GetLinesAsync(minute, minute.AddMinutes(1), cancellationToken).ConfigureAwait(false);
                var workloads = await WorkloadsAsync(lines, cancellationToken).ConfigureAwait(false);
                after = _engine.BudgetSpendOf(new RatedMinute(minute, lines, []), workloads);
                _engine.AddLateSpend(spend, after);
            }
            _evaluated[minute] = (now, after);
            LateMinutes++;
            LogLateMinute(_logger, minute, digest.Rows, now.Rows, now.CostNanos - digest.CostNanos);
        }
    }

    private async Task<List<WorkloadSnapshot>> WorkloadsAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken)
    {
        var ids = lines.Where(l => !l.IsIdle).Select(l => l.WorkloadId).ToHashSet(StringComparer.Ordinal);
        if (ids.Count == 0)
            return [];
        return [.. (await _store.GetWorkloadsAsync(ids, cancellationToken).ConfigureAwait(false))
            .Select(w => new WorkloadSnapshot(w.Workload, w.Started, w.Ended, w.EstimatePerHour))];
    }

    private async Task<int> EvaluateSettledAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var settled = SettledThrough(now);
        var from = EvaluatedThrough ??= settled.AddMinutes(-1);
        if (from >= settled)
            return 0;
        var to = from.AddMinutes(Math.Min(_options.MaxMinutesPerTick, (settled - from).TotalMinutes));
        var lines = await _store.GetLinesAsync(from, to, cancellationToken).ConfigureAwait(false);
        var byMinute = lines.GroupBy(l => l.Minute).ToDictionary(g => g.Key, g => (IReadOnlyList<CostLine>)[.. g]);
        var workloads = await WorkloadsAsync(lines, cancellationToken).ConfigureAwait(false);
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
        var remember = _state is not null && _options.LateWindow > TimeSpan.Zero;
        foreach (var minute in minutes)
        {
            ObserveCapacity(minute);
            _engine.Evaluate(minute, workloads);
            if (remember && minute.Minute >= settled - _options.LateWindow)
            {
                var digest = new MinuteDigest(minute.Minute, minute.Lines.Count, minute.Lines.Sum(l => l.Cost.Nanos));
                _evaluated[minute.Minute] = (digest, _engine.BudgetSpendOf(minute, workloads));
            }
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

    [LoggerMessage(Level = LogLevel.Information, Message = "ruler {Id}: leading; evaluating from {EvaluatedThrough:O}")]
    private static partial void LogLeading(ILogger logger, string id, DateTimeOffset? evaluatedThrough);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ruler {Id}: another ruler leads now; this one evaluates nothing until it leads again")]
    private static partial void LogLeadLost(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Information, Message = "ruler {Id}: resumed at {EvaluatedThrough:O} with {Alerts} pending or firing alerts (checkpoint of ruler {SavedBy})")]
    private static partial void LogResumed(ILogger logger, string id, DateTimeOffset evaluatedThrough, int alerts, string savedBy);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ruler: the minutes from {From:O} to {To:O} are further back than ruler.max_catch_up and are not evaluated")]
    private static partial void LogCatchUpBounded(ILogger logger, DateTimeOffset from, DateTimeOffset to);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ruler: minute {Minute:O} was written after it was evaluated ({Before} rows then, {After} now, {DeltaNanos} nano-dollars more); its cost goes into budgets, its rules are not evaluated again")]
    private static partial void LogLateMinute(ILogger logger, DateTimeOffset minute, long before, long after, long deltaNanos);
}
