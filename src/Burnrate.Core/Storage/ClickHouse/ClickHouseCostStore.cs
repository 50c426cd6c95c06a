using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Attribution;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Storage.DuckDb;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Storage.ClickHouse;

/// <summary>
/// The scale-out cost store: the same ledger, rollups, workloads, work counters, audit log and bill lines as the
/// embedded store, in ClickHouse (one server, or a cluster with <c>Distributed</c> tables), over its HTTP interface.
/// </summary>
/// <remarks>
/// <para>
/// Semantics match <see cref="DuckDbCostStore"/> to the nano-dollar: a (minute, resource) is written whole and a
/// replayed or re-rated minute replaces the old one. Instead of deleting (18.16 has no synchronous delete), each write
/// stamps its rows with a new version and readers keep only the newest version of each (minute, resource) — see
/// <see cref="ClickHouseSchema"/>. Rollups of the (hour, resource) and (day, resource) pairs a batch touched are
/// recomputed from the newest minutes before <see cref="WriteAsync"/> returns.
/// </para>
/// <para>
/// Thread safety: writes from one store object are serialized (one at a time, as in the embedded store); reads run
/// concurrently with them and may see a batch's minutes a moment before its rollups. Several processes may write
/// the same ledger as long as each (minute, resource) is written by one of them — an ingester rates the nodes whose
/// series it receives.
/// </para>
/// </remarks>
public sealed partial class ClickHouseCostStore : ICostStore, IActionAuditLog, IFocusImportStore
{
    private static readonly JsonSerializerOptions s_json = new();
    private static readonly string s_dimensions = ClickHouseSchema.DimensionColumns;

    private readonly ClickHouseHttp _client;
    private readonly ClickHouseOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writes = new(1, 1);
    private readonly string _db;
    private long _lastVersion;
    private bool _disposed;

    private ClickHouseCostStore(ClickHouseOptions options, ILogger logger, TimeProvider time, HttpMessageHandler? handler)
    {
        _options = options;
        _logger = logger;
        Time = time;
        _db = options.Database;
        _client = new ClickHouseHttp(options.Urls, options.Database, options.User, options.Password, options.Timeout, handler, time);
    }

    /// <summary>The clock whose ticks seed write versions and stamp migrations.</summary>
    internal TimeProvider Time { get; }

    /// <summary>The options the store was opened with.</summary>
    public ClickHouseOptions Options => _options;

    /// <summary>
    /// Connects to ClickHouse, creates the database and tables where missing (on every server of
    /// <see cref="ClickHouseOptions.Urls"/>) and reads the newest version written so far.
    /// </summary>
    /// <exception cref="ArgumentException">The options name an invalid database or cluster.</exception>
    /// <exception cref="ClickHouseException">A server refused a statement or none could be reached.</exception>
    /// <exception cref="InvalidOperationException">A server holds a schema written by a newer Burnrate.</exception>
    public static async Task<ClickHouseCostStore> OpenAsync(ClickHouseOptions options, ILogger? logger = null, TimeProvider? time = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var store = new ClickHouseCostStore(options, logger ?? NullLogger.Instance, time ?? TimeProvider.System, handler: null);
        try
        {
            await store.MigrateAsync(ct).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (var server in _client.Servers)
        {
            await _client.ExecuteAsync($"CREATE DATABASE IF NOT EXISTS {_db}", cancellationToken, server, useDatabase: false).ConfigureAwait(false);
            await _client.ExecuteAsync($"CREATE TABLE IF NOT EXISTS {_db}.schema_version (version UInt32, description String, applied_at DateTime) ENGINE = MergeTree ORDER BY version", cancellationToken, server).ConfigureAwait(false);
            var rows = await _client.QueryAsync($"SELECT max(version) FROM {_db}.schema_version", cancellationToken, server).ConfigureAwait(false);
            var current = rows.Count == 0 ? 0 : int.Parse(rows[0][0]!, CultureInfo.InvariantCulture);
            if (current > ClickHouseSchema.CurrentVersion)
            {
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"The ClickHouse database {_db} at {server} is at schema version {current}, but this build of Burnrate only knows versions up to {ClickHouseSchema.CurrentVersion}. It was written by a newer Burnrate: upgrade Burnrate, or use another database. Nothing was changed."));
            }
            foreach (var table in ClickHouseSchema.Tables)
            {
                foreach (var statement in ClickHouseSchema.Create(table, _options))
                    await _client.ExecuteAsync(statement, cancellationToken, server).ConfigureAwait(false);
            }
            if (current < ClickHouseSchema.CurrentVersion)
            {
                var applied = Time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
                await _client.ExecuteAsync(string.Create(CultureInfo.InvariantCulture,
                    $"INSERT INTO {_db}.schema_version VALUES ({ClickHouseSchema.CurrentVersion}, 'ledger, rollups, workloads, work counters, audit log, bill lines, calibration', '{applied}')"),
                    cancellationToken, server).ConfigureAwait(false);
                Log.Migrated(_logger, server, _db, current, ClickHouseSchema.CurrentVersion);
            }
        }
        // Versions only grow: start above everything already written, whatever this machine's clock says.
        var newest = await _client.QueryAsync(
            $"SELECT greatest(greatest((SELECT max(version) FROM {_db}.cost_minutes), (SELECT max(version) FROM {_db}.workloads)), greatest((SELECT max(version) FROM {_db}.work_minutes), (SELECT max(version) FROM {_db}.billing_lines)))",
            cancellationToken).ConfigureAwait(false);
        var stored = (long)ulong.Parse(newest[0][0]!, CultureInfo.InvariantCulture);
        InterlockedMax(ref _lastVersion, stored);
    }

    /// <summary>The schema version recorded on the first server.</summary>
    internal async Task<int> GetSchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        var rows = await _client.QueryAsync($"SELECT max(version) FROM {_db}.schema_version", cancellationToken, _client.Servers[0]).ConfigureAwait(false);
        return int.Parse(rows[0][0]!, CultureInfo.InvariantCulture);
    }

    /// <summary>A version larger than any this store has written or read: the clock's ticks, or one more than the last.</summary>
    private long NextVersion()
    {
        var now = Time.GetUtcNow().UtcTicks;
        while (true)
        {
            var last = Interlocked.Read(ref _lastVersion);
            var next = Math.Max(now, last + 1);
            if (Interlocked.CompareExchange(ref _lastVersion, next, last) == last)
                return next;
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        while (true)
        {
            var current = Interlocked.Read(ref target);
            if (value <= current || Interlocked.CompareExchange(ref target, value, current) == current)
                return;
        }
    }

    /// <inheritdoc />
    public async Task WriteAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lines);
        lines = Retained(lines);
        if (lines.Count == 0)
            return;

        // Within one batch the last line with a key wins, as if the lines had been written one by one.
        var latest = new Dictionary<LedgerKey, int>(lines.Count);
        var hourPairs = new HashSet<(DateTime Hour, string Resource)>();
        var dayPairs = new HashSet<(DateTime Day, string Resource)>();
        for (var i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            var minute = line.Minute.UtcDateTime;
            latest[new LedgerKey(minute, line.ResourceId, line.GpuIndex, line.WorkloadId, line.Component, line.SegmentStart)] = i;
            hourPairs.Add((CostQueryPlan.FloorTo(minute, TimeSpan.TicksPerHour), line.ResourceId));
            dayPairs.Add((CostQueryPlan.FloorTo(minute, TimeSpan.TicksPerDay), line.ResourceId));
        }

        var started = Stopwatch.GetTimestamp();
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = NextVersion();
            var body = new RowBinaryWriter(latest.Count * 200);
            foreach (var index in latest.Values)
                WriteRow(body, lines[index], version);
            await _client.InsertAsync($"INSERT INTO {_db}.cost_minutes FORMAT RowBinary", body.Buffer, body.Length, cancellationToken).ConfigureAwait(false);
            await RebuildRollupsCoreAsync(hourPairs, dayPairs, version, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writes.Release();
        }
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            var milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Log.Wrote(_logger, latest.Count, hourPairs.Count, milliseconds);
        }
    }

    /// <summary>
    /// Inserts ledger lines without touching the rollups (bulk loads and the writer benchmark's baseline); follow with
    /// <see cref="RebuildRollupsAsync"/>. The lines must not repeat a (minute, resource) already stored.
    /// </summary>
    internal async Task InsertMinutesOnlyAsync(IReadOnlyList<CostLine> lines, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = NextVersion();
            var body = new RowBinaryWriter(lines.Count * 200);
            foreach (var line in lines)
                WriteRow(body, line, version);
            await _client.InsertAsync($"INSERT INTO {_db}.cost_minutes FORMAT RowBinary", body.Buffer, body.Length, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writes.Release();
        }
    }

    /// <summary>Recomputes the rollups of every resource for the whole days that overlap [<paramref name="from"/>, <paramref name="to"/>), a day per statement.</summary>
    internal async Task RebuildRollupsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (var day = CostQueryPlan.FloorTo(from.UtcDateTime, TimeSpan.TicksPerDay); day < to.UtcDateTime; day = day.AddDays(1))
            {
                var v = NextVersion().ToString(CultureInfo.InvariantCulture);
                var minutes = $"minute >= {ClickHouseQueryPlan.Time(day)} AND minute < {ClickHouseQueryPlan.Time(day.AddDays(1))}";
                await _client.ExecuteAsync($"""
                    INSERT INTO {_db}.cost_hourly
                    SELECT toStartOfHour(minute) AS h, {s_dimensions},
                           sum(cost_nanos), sum(if(is_idle, cost_nanos, toInt64(0))), sumIf(quantity, component = 'gpu'), toInt64(count()), {v}
                    FROM {_db}.cost_minutes
                    WHERE {minutes}{ClickHouseQueryPlan.Newest(_db, "cost_minutes", _options.Cluster, "minute", minutes)}
                    GROUP BY h, {s_dimensions}
                    """, cancellationToken, settings: "insert_distributed_sync=1").ConfigureAwait(false);
                var hours = $"hour >= {ClickHouseQueryPlan.Time(day)} AND hour < {ClickHouseQueryPlan.Time(day.AddDays(1))}";
                await _client.ExecuteAsync($"""
                    INSERT INTO {_db}.cost_daily
                    SELECT toStartOfDay(hour) AS d, {s_dimensions},
                           sum(cost_nanos), sum(idle_cost_nanos), sum(gpu_seconds), sum(line_count), {v}
                    FROM {_db}.cost_hourly
                    WHERE {hours}{ClickHouseQueryPlan.Newest(_db, "cost_hourly", _options.Cluster, "hour", hours)}
                    GROUP BY d, {s_dimensions}
                    """, cancellationToken, settings: "insert_distributed_sync=1").ConfigureAwait(false);
            }
        }
        finally
        {
            _writes.Release();
        }
    }

    // Recomputes the hourly rows of each (hour, resource) from its newest minutes, then the daily rows of each
    // (day, resource) from its newest hours, all stamped with the batch's version.
    private async Task RebuildRollupsCoreAsync(HashSet<(DateTime Hour, string Resource)> hourPairs, HashSet<(DateTime Day, string Resource)> dayPairs, long version, CancellationToken cancellationToken)
    {
        var v = version.ToString(CultureInfo.InvariantCulture);
        foreach (var chunk in hourPairs.OrderBy(p => p.Hour).Chunk(2_000))
        {
            var range = $"minute >= {ClickHouseQueryPlan.Time(chunk[0].Hour)} AND minute < {ClickHouseQueryPlan.Time(chunk[^1].Hour.AddHours(1))} AND (toUInt32(toStartOfHour(minute)), resource_id) IN ({Pairs(chunk)})";
            await _client.ExecuteAsync($"""
                INSERT INTO {_db}.cost_hourly
                SELECT toStartOfHour(minute) AS h, {s_dimensions},
                       sum(cost_nanos), sum(if(is_idle, cost_nanos, toInt64(0))), sumIf(quantity, component = 'gpu'), toInt64(count()), {v}
                FROM {_db}.cost_minutes
                WHERE {range}{ClickHouseQueryPlan.Newest(_db, "cost_minutes", _options.Cluster, "minute", range)}
                GROUP BY h, {s_dimensions}
                """, cancellationToken, settings: "insert_distributed_sync=1").ConfigureAwait(false);
        }
        foreach (var chunk in dayPairs.OrderBy(p => p.Day).Chunk(2_000))
        {
            var range = $"hour >= {ClickHouseQueryPlan.Time(chunk[0].Day)} AND hour < {ClickHouseQueryPlan.Time(chunk[^1].Day.AddDays(1))} AND (toUInt32(toStartOfDay(hour)), resource_id) IN ({Pairs(chunk)})";
            await _client.ExecuteAsync($"""
                INSERT INTO {_db}.cost_daily
                SELECT toStartOfDay(hour) AS d, {s_dimensions},
                       sum(cost_nanos), sum(idle_cost_nanos), sum(gpu_seconds), sum(line_count), {v}
                FROM {_db}.cost_hourly
                WHERE {range}{ClickHouseQueryPlan.Newest(_db, "cost_hourly", _options.Cluster, "hour", range)}
                GROUP BY d, {s_dimensions}
                """, cancellationToken, settings: "insert_distributed_sync=1").ConfigureAwait(false);
        }
    }

    private static string Pairs(IEnumerable<(DateTime Start, string Resource)> pairs)
    {
        var sb = new StringBuilder();
        foreach (var (start, resource) in pairs)
        {
            if (sb.Length > 0)
                sb.Append(", ");
            sb.Append('(').Append(new DateTimeOffset(start).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)).Append(", ").Append(ClickHouseHttp.Literal(resource)).Append(')');
        }
        return sb.ToString();
    }

    // Column order follows ClickHouseSchema.CostMinutes.
    private static void WriteRow(RowBinaryWriter w, CostLine line, long version)
    {
        w.UInt32((uint)new DateTimeOffset(line.Minute.UtcDateTime).ToUnixTimeSeconds());
        w.Int32(line.SegmentStart);
        w.Int32(line.Seconds);
        w.Int32(line.GpuIndex);
        w.String(line.Provider);
        w.String(line.Region);
        w.String(line.InstanceType);
        w.String(line.Capacity.ToName());
        w.String(line.GpuModel);
        w.String(line.Cluster);
        w.String(line.Orchestrator);
        w.String(line.Team);
        w.String(line.Project);
        w.String(line.User);
        w.String(line.WorkloadId);
        w.String(DuckDbCostStore.ComponentName(line.Component));
        w.String(line.ResourceId);
        w.Byte(line.IsIdle ? (byte)1 : (byte)0);
        w.Int64(line.Rate.NanosPerHour);
        w.Int32(line.SharePpm);
        w.Decimal128(line.Quantity, 6);
        w.Int64(line.Cost.Nanos);
        w.String(line.PriceSource);
        w.UInt64((ulong)version);
    }

    /// <inheritdoc />
    public async Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workloads);
        if (workloads.Count == 0)
            return;
        var latest = new Dictionary<string, WorkloadRecord>(StringComparer.Ordinal);
        foreach (var w in workloads)
            latest[w.Workload.Id] = w;

        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = NextVersion().ToString(CultureInfo.InvariantCulture);
            var tsv = new StringBuilder();
            foreach (var record in latest.Values)
            {
                var w = record.Workload;
                // The earliest start is kept by the reader (min over every version), as the embedded store's least().
                Tsv(tsv, w.Id, w.Orchestrator, w.Name, w.User, w.Team, w.Project, w.Model,
                    JsonSerializer.Serialize(w.Labels ?? new Dictionary<string, string>(), s_json),
                    Micros(record.Started),
                    record.Ended is { } e ? Micros(e) : "0",
                    record.Ended is null ? "0" : "1",
                    record.EstimatePerHour is { } d ? DecimalText(d, 9) : "0",
                    record.EstimatePerHour is null ? "0" : "1",
                    version);
            }
            await InsertTsvAsync("workloads", tsv, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writes.Release();
        }
    }

    /// <inheritdoc />
    public async Task WriteWorkAsync(IReadOnlyList<WorkMinute> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (work.Count == 0)
            return;
        var latest = new Dictionary<(DateTime, string, string), double>();
        foreach (var w in work)
            latest[(w.Minute.UtcDateTime, w.WorkloadId, w.Metric)] = w.Increase;

        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var version = NextVersion().ToString(CultureInfo.InvariantCulture);
            var tsv = new StringBuilder();
            foreach (var ((minute, workloadId, metric), increase) in latest)
                Tsv(tsv, Seconds(minute), workloadId, metric, increase.ToString("R", CultureInfo.InvariantCulture), version);
            await InsertTsvAsync("work_minutes", tsv, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writes.Release();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default) =>
        QueryCostsAsync(query, LedgerGrain.Day, cancellationToken);

    /// <summary>As <see cref="QueryCostsAsync(CostQuery, CancellationToken)"/>, reading no table coarser than <paramref name="coarsest"/>.</summary>
    internal async Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, LedgerGrain coarsest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var result = new List<CostReportRow>();
        if (query.From >= query.To)
            return result;
        var sql = ClickHouseQueryPlan.Build(query, _db, _options.Cluster, coarsest, Held);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var rows = await _client.QueryAsync(sql, cancellationToken).ConfigureAwait(false);
        var keyCount = query.By.Count;
        var hasBucket = query.Step is not null;
        foreach (var row in rows)
        {
            var keys = new string[keyCount];
            for (var i = 0; i < keyCount; i++)
                keys[i] = row[i] ?? "";
            DateTimeOffset? bucket = null;
            if (hasBucket)
                bucket = query.From + (query.Step!.Value * long.Parse(row[keyCount]!, CultureInfo.InvariantCulture));
            var measures = keyCount + (hasBucket ? 1 : 0);
            result.Add(new CostReportRow(
                keys,
                bucket,
                new Money(long.Parse(row[measures]!, CultureInfo.InvariantCulture)),
                new Money(long.Parse(row[measures + 1]!, CultureInfo.InvariantCulture)),
                decimal.Parse(row[measures + 2]!, NumberStyles.Number, CultureInfo.InvariantCulture)));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default)
    {
        var result = new List<WorkloadRecord>();
        if (ids is { Count: 0 })
            return result;
        ObjectDisposedException.ThrowIf(_disposed, this);
        var where = ids is null ? "" : " WHERE id IN (" + string.Join(", ", ids.Select(ClickHouseHttp.Literal)) + ")";
        var rows = await _client.QueryAsync($"""
            SELECT id, argMax(orchestrator, version), argMax(name, version), argMax(user_name, version), argMax(team, version),
                   argMax(project, version), argMax(model, version), argMax(labels, version), min(started_us),
                   argMax(ended_us, version), argMax(has_ended, version), argMax(estimate_per_hour, version), argMax(has_estimate, version)
            FROM {_db}.workloads{where}
            GROUP BY id
            ORDER BY id
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            var labels = JsonSerializer.Deserialize<Dictionary<string, string>>(r[7]!, s_json);
            var info = new WorkloadInfo(r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[6]!, labels is { Count: > 0 } ? labels : null);
            result.Add(new WorkloadRecord(
                info,
                FromMicros(r[8]!),
                r[10] == "1" ? FromMicros(r[9]!) : null,
                r[12] == "1" ? decimal.Parse(r[11]!, NumberStyles.Number, CultureInfo.InvariantCulture) : null));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default)
    {
        var result = new List<WorkTotal>();
        if (from >= to || workloadIds is { Count: 0 })
            return result;
        ObjectDisposedException.ThrowIf(_disposed, this);
        var filter = workloadIds is null ? "" : " AND workload_id IN (" + string.Join(", ", workloadIds.Select(ClickHouseHttp.Literal)) + ")";
        var rows = await _client.QueryAsync($"""
            SELECT workload_id, metric, sum(increase) FROM (
                SELECT workload_id, metric, minute, argMax(increase, version) AS increase
                FROM {_db}.work_minutes
                WHERE minute >= {ClickHouseQueryPlan.Time(from.UtcDateTime)} AND minute < {ClickHouseQueryPlan.Time(to.UtcDateTime)}{filter}
                GROUP BY workload_id, metric, minute)
            GROUP BY workload_id, metric
            ORDER BY workload_id, metric
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
            result.Add(new WorkTotal(r[0]!, r[1]!, ParseDouble(r[2]!)));
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var result = new List<CostLine>();
        if (from >= to)
            return result;
        ObjectDisposedException.ThrowIf(_disposed, this);
        var range = $"minute >= {ClickHouseQueryPlan.Time(from.UtcDateTime)} AND minute < {ClickHouseQueryPlan.Time(to.UtcDateTime)}";
        // The columns of DuckDbCostStore.LineColumns, the minute as epoch seconds and the quantity as exact text.
        var columns = DuckDbCostStore.LineColumns.Replace("minute,", "toUInt32(minute),", StringComparison.Ordinal);
        var rows = await _client.QueryAsync($"""
            SELECT {columns} FROM {_db}.cost_minutes WHERE {range}{ClickHouseQueryPlan.Newest(_db, "cost_minutes", _options.Cluster, "minute", range)}
            ORDER BY minute, resource_id, gpu_index, workload_id, component, segment_start
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            result.Add(DuckDbCostStore.ReadLine(
                DateTimeOffset.FromUnixTimeSeconds(long.Parse(r[0]!, CultureInfo.InvariantCulture)),
                int.Parse(r[1]!, CultureInfo.InvariantCulture), int.Parse(r[2]!, CultureInfo.InvariantCulture), int.Parse(r[3]!, CultureInfo.InvariantCulture),
                i => r[i]!, long.Parse(r[17]!, CultureInfo.InvariantCulture), int.Parse(r[18]!, CultureInfo.InvariantCulture),
                decimal.Parse(r[19]!, NumberStyles.Number, CultureInfo.InvariantCulture), long.Parse(r[20]!, CultureInfo.InvariantCulture)));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // As in the embedded store: where retention dropped the first minutes (or hours), the span starts at the first
        // hour (or day) a rollup still holds.
        var rows = await _client.QueryAsync($"""
            SELECT (SELECT count() FROM {_db}.cost_minutes), (SELECT toUInt32(min(minute)) FROM {_db}.cost_minutes), (SELECT toUInt32(max(minute)) FROM {_db}.cost_minutes),
                   (SELECT count() FROM {_db}.cost_hourly), (SELECT toUInt32(min(hour)) FROM {_db}.cost_hourly), (SELECT toUInt32(max(hour)) FROM {_db}.cost_hourly),
                   (SELECT count() FROM {_db}.cost_daily), (SELECT toUInt32(min(day)) FROM {_db}.cost_daily), (SELECT toUInt32(max(day)) FROM {_db}.cost_daily)
            """, cancellationToken).ConfigureAwait(false);
        long At(int i) => long.Parse(rows[0][i]!, CultureInfo.InvariantCulture);
        var (minutes, hours, days) = (At(0) > 0, At(3) > 0, At(6) > 0);
        if (!minutes && !hours && !days)
            return null;
        long first;
        if (!hours || (days && At(7) + 86_400 <= At(4)))
            first = At(7);
        else
            first = minutes && At(1) < At(4) + 3_600 ? At(1) : At(4);
        var last = minutes && (!hours || At(2) >= At(5)) ? At(2) : hours ? At(5) : At(8);
        return (DateTimeOffset.FromUnixTimeSeconds(first), DateTimeOffset.FromUnixTimeSeconds(last));
    }

    /// <inheritdoc />
    public async Task AppendAuditAsync(ActionAuditEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tsv = new StringBuilder();
        Tsv(tsv, Micros(entry.At), entry.Rule, entry.Fingerprint, entry.What, entry.Why, entry.Outcome,
            entry.Code?.ToString(CultureInfo.InvariantCulture), entry.Detail);
        await InsertTsvAsync("action_audit", tsv, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ActionAuditEntry>> GetAuditAsync(DateTimeOffset? since = null, int limit = 1000, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new List<ActionAuditEntry>();
        if (limit <= 0)
            return result;
        var sinceMicros = since is { } s ? Micros(s) : long.MinValue.ToString(CultureInfo.InvariantCulture);
        var rows = await _client.QueryAsync(string.Create(CultureInfo.InvariantCulture, $"""
            SELECT audited_at_us, rule, fingerprint, what, why, outcome, code, detail FROM {_db}.action_audit
            WHERE audited_at_us >= {sinceMicros} ORDER BY audited_at_us DESC LIMIT {limit}
            """), cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            result.Add(new ActionAuditEntry(FromMicros(r[0]!), r[1]!, r[2]!, r[3]!, r[4]!, r[5]!,
                r[6] is null ? null : int.Parse(r[6]!, CultureInfo.InvariantCulture), r[7]!));
        }
        result.Reverse();
        return result;
    }

    /// <summary>Runs a statement against the store's database (tests, benchmarks).</summary>
    internal Task ExecuteAsync(string sql, CancellationToken cancellationToken = default) => _client.ExecuteAsync(sql, cancellationToken);

    /// <summary>Runs a query and returns its rows as text (tests, benchmarks).</summary>
    internal Task<List<string?[]>> QueryRowsAsync(string sql, CancellationToken cancellationToken = default) => _client.QueryAsync(sql, cancellationToken);

    private async Task InsertTsvAsync(string table, StringBuilder tsv, CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetBytes(tsv.ToString());
        await _client.InsertAsync($"INSERT INTO {_db}.{table} FORMAT TabSeparated", bytes, bytes.Length, cancellationToken).ConfigureAwait(false);
    }

    private static void Tsv(StringBuilder sb, params string?[] fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0)
                sb.Append('\t');
            ClickHouseHttp.AppendTsv(sb, fields[i]);
        }
        sb.Append('\n');
    }

    internal static string Micros(DateTimeOffset value) =>
        ((value.UtcTicks - DateTime.UnixEpoch.Ticks) / 10).ToString(CultureInfo.InvariantCulture);

    internal static DateTimeOffset FromMicros(string value) =>
        new(DateTime.UnixEpoch.Ticks + (long.Parse(value, CultureInfo.InvariantCulture) * 10), TimeSpan.Zero);

    private static string Seconds(DateTime value) =>
        new DateTimeOffset(DateTime.SpecifyKind(value, DateTimeKind.Utc)).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    /// <summary>A decimal as ClickHouse reads it into a column of <paramref name="scale"/> decimals (rounded as the embedded store's cast).</summary>
    internal static string DecimalText(decimal value, int scale) =>
        decimal.Round(value, scale, MidpointRounding.AwayFromZero).ToString("0.###############", CultureInfo.InvariantCulture);

    private static double ParseDouble(string text) => text switch
    {
        "inf" or "+inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        "nan" or "-nan" => double.NaN,
        _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _writes.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_disposed)
        {
            _writes.Release();
            throw new ObjectDisposedException(nameof(ClickHouseCostStore));
        }
    }

    /// <summary>Waits for the write in progress and closes the HTTP client; the data stays in ClickHouse.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        await _writes.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
                return;
            _disposed = true;
            _client.Dispose();
        }
        finally
        {
            _writes.Release();
        }
    }

    private readonly record struct LedgerKey(DateTime Minute, string ResourceId, int GpuIndex, string WorkloadId, CostComponent Component, int SegmentStart);

    /// <summary>Builds a RowBinary body: little-endian numbers, strings as a LEB128 length and UTF-8 bytes.</summary>
    private sealed class RowBinaryWriter(int capacity)
    {
        private byte[] _buffer = new byte[Math.Max(capacity, 256)];

        public byte[] Buffer => _buffer;

        public int Length { get; private set; }

        private Span<byte> Take(int count)
        {
            if (Length + count > _buffer.Length)
                Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + count));
            var span = _buffer.AsSpan(Length, count);
            Length += count;
            return span;
        }

        public void Byte(byte value) => Take(1)[0] = value;

        public void Int32(int value) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), value);

        public void UInt32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), value);

        public void Int64(long value) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), value);

        public void UInt64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);

        /// <summary>Decimal(38, scale): the value times 10^scale as a 128-bit two's-complement integer (rounded like a cast).</summary>
        public void Decimal128(decimal value, int scale)
        {
            var scaled = decimal.Round(value, scale, MidpointRounding.AwayFromZero);
            for (var i = 0; i < scale; i++)
                scaled *= 10m;
            var integer = (Int128)decimal.Truncate(scaled);
            BinaryPrimitives.WriteInt128LittleEndian(Take(16), integer);
        }

        public void String(string value)
        {
            var count = Encoding.UTF8.GetByteCount(value);
            var length = (uint)count;
            while (length >= 0x80)
            {
                Byte((byte)(length | 0x80));
                length >>= 7;
            }
            Byte((byte)length);
            Encoding.UTF8.GetBytes(value, Take(count));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "ClickHouse {Server} database {Database} migrated from schema version {From} to {To}")]
        public static partial void Migrated(ILogger logger, Uri server, string database, int from, int to);

        [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Wrote {Lines} ledger lines touching {Hours} (hour, resource) pairs in {Milliseconds} ms")]
        public static partial void Wrote(ILogger logger, int lines, int hours, double milliseconds);

        [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Skipped {Lines} ledger lines older than the retention horizon {Horizon:yyyy-MM-dd HH:mm} UTC: their minutes are no longer kept (storage.retention.minutes)")]
        public static partial void OlderThanRetention(ILogger logger, int lines, DateTime horizon);
    }
}
