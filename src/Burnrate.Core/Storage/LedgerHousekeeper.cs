using Microsoft.Extensions.Logging;

namespace Burnrate.Storage;

/// <summary>
/// Applies <c>storage.retention</c> to the ledger once at start and then every <see cref="Interval"/> on the injected
/// clock (<c>burnrate serve</c>, roles <c>all</c> and <c>ingest</c>; docs/configuration.md). Idempotent, so several
/// ingesters on one ClickHouse ledger may each run it. A failed run is logged and retried at the next interval.
/// </summary>
public sealed partial class LedgerHousekeeper
{
    /// <summary>How often retention is applied.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    private readonly ILedgerRetention _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _rowsDropped = new(StringComparer.Ordinal);
    private long _partitionsDropped;
    private long _runs;
    private long _failures;
    private DateTimeOffset? _lastRunAt;
    private DateTimeOffset? _lastSuccessAt;
    private RetentionRun? _lastRun;

    /// <summary>A housekeeper for <paramref name="store"/> under <paramref name="policy"/>, which it also sets as the store's <see cref="ILedgerRetention.Retention"/>.</summary>
    public LedgerHousekeeper(ILedgerRetention store, RetentionPolicy policy, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(policy);
        policy.Validate();
        _store = store;
        Policy = policy;
        _time = time ?? TimeProvider.System;
        _logger = logger;
        store.UseRetention(policy, _time);
    }

    /// <summary>The policy applied.</summary>
    public RetentionPolicy Policy { get; }

    /// <summary>What the housekeeper has done so far (for <c>/metrics</c>).</summary>
    public HousekeepingStatus Status
    {
        get
        {
            lock (_lock)
                return new HousekeepingStatus(new Dictionary<string, long>(_rowsDropped, StringComparer.Ordinal), _partitionsDropped, _runs, _failures, _lastRunAt, _lastSuccessAt, _lastRun);
        }
    }

    /// <summary>Applies the policy now and every <see cref="Interval"/> until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await RunOnceAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await Task.Delay(Interval, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Applies the policy once at the clock's now; returns what was dropped, or null when the run failed (logged).</summary>
    public async Task<RetentionRun?> RunOnceAsync(CancellationToken cancellationToken)
    {
        if (!Policy.DropsAnything)
            return null;
        var now = _time.GetUtcNow();
        try
        {
            var run = await _store.ApplyRetentionAsync(Policy, now, cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                foreach (var (table, rows) in run.Rows)
                    _rowsDropped[table] = _rowsDropped.GetValueOrDefault(table) + rows;
                _partitionsDropped += run.Partitions;
                _runs++;
                _lastRunAt = now;
                _lastSuccessAt = now;
                _lastRun = run;
            }
            if (run.TotalRows > 0 || run.Partitions > 0)
                LogDropped(_logger, run.TotalRows, run.Partitions, run.Horizons.Minutes, run.Horizons.Hours);
            return run;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
#pragma warning disable CA1031 // A store that cannot drop now must not stop the server: the next run tries again.
        catch (Exception e)
#pragma warning restore CA1031
        {
            lock (_lock)
            {
                _runs++;
                _failures++;
                _lastRunAt = now;
            }
            LogFailed(_logger, e.Message);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "retention: dropped {Rows} rows ({Partitions} ClickHouse partitions); minutes kept from {Minutes:yyyy-MM-dd HH:mm}, hours from {Hours:yyyy-MM-dd} UTC")]
    private static partial void LogDropped(ILogger logger, long rows, int partitions, DateTime? minutes, DateTime? hours);

    [LoggerMessage(Level = LogLevel.Warning, Message = "retention: applying storage.retention failed, trying again in an hour: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}

/// <summary>What a <see cref="LedgerHousekeeper"/> has dropped since the process started.</summary>
/// <param name="RowsDropped">Rows dropped per table.</param>
/// <param name="PartitionsDropped">ClickHouse partitions dropped.</param>
/// <param name="Runs">Runs, failed ones included.</param>
/// <param name="Failures">Runs that failed.</param>
/// <param name="LastRunAt">When the last run started (the clock's time).</param>
/// <param name="LastSuccessAt">When the last successful run started.</param>
/// <param name="LastRun">What the last successful run dropped and the horizons it left.</param>
public sealed record HousekeepingStatus(
    IReadOnlyDictionary<string, long> RowsDropped,
    long PartitionsDropped,
    long Runs,
    long Failures,
    DateTimeOffset? LastRunAt,
    DateTimeOffset? LastSuccessAt,
    RetentionRun? LastRun);
