using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Burnrate.Attribution;
using Burnrate.Pricing;
using Burnrate.Rating;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Burnrate.Storage.DuckDb;

/// <summary>
/// The embedded cost store: the minute ledger, its hourly and daily rollups, workloads and work counters in one
/// DuckDB file (or in memory with <c>:memory:</c>).
/// </summary>
/// <remarks>
/// <para>
/// Thread safety: writes go through one connection, one at a time (a <see cref="SemaphoreSlim"/>), which avoids
/// DuckDB's optimistic write-write conflicts between connections; each write, its rollup refresh included, is one
/// transaction. Reads (reports, workloads, work totals, the ledger span, the audit log) use a small pool of
/// connections to the same database (<see cref="ReadConnections"/>), so they run beside each other and beside a write
/// instead of queueing behind the minute's ledger write; DuckDB gives each read a snapshot of committed data, so a
/// read never sees half a batch.
/// </para>
/// <para>
/// Idempotency: the ledger's key is (minute, resource, GPU, workload, component, segment). A write deletes the
/// stored rows with its batch's keys and inserts the batch, then recomputes the rollup rows of every hour and day
/// it touched, all in one transaction: writing the same lines twice leaves every table as it was.
/// </para>
/// </remarks>
public sealed partial class DuckDbCostStore : ICostStore, IActionAuditLog, IFocusImportStore
{
    private static readonly JsonSerializerOptions s_json = new();

    /// <summary>Connections kept for reads, beside the one that writes.</summary>
    internal const int ReadConnections = 4;

    private readonly DuckDBConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly SemaphoreSlim _readSlots = new(ReadConnections, ReadConnections);
    private readonly ConcurrentBag<DuckDBConnection> _readers = [];
    private readonly ILogger _logger;
    private readonly string _path;
    private readonly IReadOnlyList<SchemaMigration> _migrations;
    private bool _disposed;

    private DuckDbCostStore(DuckDBConnection connection, string path, ILogger logger, IReadOnlyList<SchemaMigration> migrations)
    {
        _connection = connection;
        _path = path;
        _logger = logger;
        _migrations = migrations;
    }

    /// <summary>
    /// Opens (creating if needed) the store at <paramref name="databasePath"/> and migrates it to this build's schema.
    /// </summary>
    /// <param name="databasePath">A file path, or <c>:memory:</c> for a store that lives as long as the object.</param>
    /// <param name="logger">Where to log opening and writes; nothing is logged when null.</param>
    /// <param name="time">The clock that stamps applied migrations; the system clock by default.</param>
    /// <param name="ct">Cancels opening.</param>
    /// <exception cref="InvalidOperationException">The file was written by a newer Burnrate (a newer schema version).</exception>
    public static Task<DuckDbCostStore> OpenAsync(string databasePath, ILogger? logger = null, TimeProvider? time = null, CancellationToken ct = default) =>
        OpenAsync(databasePath, DuckDbSchema.Migrations, logger, ct, time);

    internal static async Task<DuckDbCostStore> OpenAsync(string databasePath, IReadOnlyList<SchemaMigration> migrations, ILogger? logger, CancellationToken ct, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        if (databasePath != ":memory:")
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(databasePath));
            if (!string.IsNullOrEmpty(directory))
                Directory.CreateDirectory(directory);
        }
        var connection = new DuckDBConnection("Data Source=" + databasePath);
        DuckDbCostStore? store = null;
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            store = new DuckDbCostStore(connection, databasePath, logger ?? NullLogger.Instance, migrations) { Time = time ?? TimeProvider.System };
            await store.MigrateAsync(ct).ConfigureAwait(false);
            await store.LoadDroppedAsync(ct).ConfigureAwait(false);
            for (var i = 0; i < ReadConnections; i++)
            {
                // Same database instance: DuckDB.NET shares a file's database among the process's connections to it;
                // an in-memory database is reached only through its own connection's duplicate.
                var reader = databasePath == ":memory:" ? connection.Duplicate() : new DuckDBConnection("Data Source=" + databasePath);
                store._readers.Add(reader);
                await reader.OpenAsync(ct).ConfigureAwait(false);
            }
            return store;
        }
        catch
        {
            while (store is not null && store._readers.TryTake(out var reader))
                await reader.DisposeAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    /// <summary>The clock that stamps applied migrations (the ledger's own times come from the rows).</summary>
    internal TimeProvider Time { get; private init; } = TimeProvider.System;

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var before = await DuckDbSchema.MigrateAsync(_connection, _migrations, Time, cancellationToken).ConfigureAwait(false);
            var after = _migrations.Count == 0 ? 0 : _migrations[^1].Version;
            if (before != after)
                Log.Migrated(_logger, _path, before, after);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The schema version recorded in the database.</summary>
    internal async Task<int> GetSchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await DuckDbSchema.ReadVersionAsync(_connection, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
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
        var minMinute = DateTime.MaxValue;
        var maxMinute = DateTime.MinValue;
        var hours = new SortedSet<DateTime>();
        for (var i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            var minute = line.Minute.UtcDateTime;
            latest[new LedgerKey(minute, line.ResourceId, line.GpuIndex, line.WorkloadId, line.Component, line.SegmentStart)] = i;
            if (minute < minMinute)
                minMinute = minute;
            if (minute > maxMinute)
                maxMinute = minute;
            hours.Add(CostQueryPlan.FloorTo(minute, TimeSpan.TicksPerHour));
        }

        var started = Stopwatch.GetTimestamp();
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The staging table is ours while we hold the gate; a crash may have left rows behind.
            await ExecuteCoreAsync("DELETE FROM cost_minutes_staging", cancellationToken).ConfigureAwait(false);
            using (var appender = _connection.CreateAppender("cost_minutes_staging"))
            {
                foreach (var index in latest.Values)
                    AppendLine(appender, lines[index]);
            }

            await InTransactionAsync(async () =>
            {
                // A rated (minute, resource) is a whole: re-rating it may split it differently (a late allocation
                // turns idle rows into a workload's rows), so every old row of each (minute, resource) in the batch
                // goes, not only the rows whose full key recurs. The minute bounds let DuckDB skip row groups.
                using (var delete = _connection.CreateCommand())
                {
                    delete.CommandText = """
                        DELETE FROM cost_minutes USING (SELECT DISTINCT minute, resource_id FROM cost_minutes_staging) AS s
                        WHERE cost_minutes.minute >= $lo AND cost_minutes.minute <= $hi
                          AND cost_minutes.minute = s.minute
                          AND cost_minutes.resource_id = s.resource_id
                        """;
                    delete.Parameters.Add(new DuckDBParameter("lo", minMinute));
                    delete.Parameters.Add(new DuckDBParameter("hi", maxMinute));
                    await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                await ExecuteCoreAsync("INSERT INTO cost_minutes SELECT * FROM cost_minutes_staging", cancellationToken).ConfigureAwait(false);
                foreach (var (from, to) in ContiguousRuns(hours, TimeSpan.TicksPerHour))
                    await RebuildRollupsCoreAsync(from, to, cancellationToken).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            await ExecuteCoreAsync("DELETE FROM cost_minutes_staging", cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            var milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Log.Wrote(_logger, latest.Count, hours.Count, milliseconds);
        }
    }

    /// <summary>
    /// Recomputes the hourly rollup of every hour that overlaps [<paramref name="from"/>, <paramref name="to"/>)
    /// from the ledger, and the daily rollup of every day that overlaps it from the hourly one. Used after writes and
    /// after loading minutes straight into <c>cost_minutes</c> (benchmarks, imports).
    /// </summary>
    internal async Task RebuildRollupsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await InTransactionAsync(async () =>
            {
                await RebuildRollupsCoreAsync(
                    CostQueryPlan.FloorTo(from.UtcDateTime, TimeSpan.TicksPerHour),
                    CostQueryPlan.CeilingTo(to.UtcDateTime, TimeSpan.TicksPerHour),
                    cancellationToken).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Runs a statement on the store's connection, under its gate (benchmark data generation, tests).</summary>
    internal async Task ExecuteAsync(string sql, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ExecuteCoreAsync(sql, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Runs a query on the store's connection and returns its first column of its first row.</summary>
    internal async Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    // Hours [hourFrom, hourTo) must be whole hours. Runs inside the caller's transaction.
    private async Task RebuildRollupsCoreAsync(DateTime hourFrom, DateTime hourTo, CancellationToken cancellationToken)
    {
        const string Dimensions = DuckDbSchema.DimensionColumns;
        await ExecuteRangeAsync("DELETE FROM cost_hourly WHERE hour >= $lo AND hour < $hi", hourFrom, hourTo, cancellationToken).ConfigureAwait(false);
        await ExecuteRangeAsync($"""
            INSERT INTO cost_hourly
            SELECT date_trunc('hour', minute), {Dimensions},
                   CAST(SUM(cost_nanos) AS BIGINT),
                   CAST(SUM(CASE WHEN is_idle THEN cost_nanos ELSE 0 END) AS BIGINT),
                   SUM(CASE WHEN component = 'gpu' THEN quantity ELSE 0 END),
                   COUNT(*)
            FROM cost_minutes
            WHERE minute >= $lo AND minute < $hi
            GROUP BY date_trunc('hour', minute), {Dimensions}
            """, hourFrom, hourTo, cancellationToken).ConfigureAwait(false);

        var dayFrom = CostQueryPlan.FloorTo(hourFrom, TimeSpan.TicksPerDay);
        var dayTo = CostQueryPlan.CeilingTo(hourTo, TimeSpan.TicksPerDay);
        await ExecuteRangeAsync("DELETE FROM cost_daily WHERE day >= $lo AND day < $hi", dayFrom, dayTo, cancellationToken).ConfigureAwait(false);
        await ExecuteRangeAsync($"""
            INSERT INTO cost_daily
            SELECT date_trunc('day', hour), {Dimensions},
                   CAST(SUM(cost_nanos) AS BIGINT),
                   CAST(SUM(idle_cost_nanos) AS BIGINT),
                   SUM(gpu_seconds),
                   CAST(SUM(line_count) AS BIGINT)
            FROM cost_hourly
            WHERE hour >= $lo AND hour < $hi
            GROUP BY date_trunc('day', hour), {Dimensions}
            """, dayFrom, dayTo, cancellationToken).ConfigureAwait(false);
    }

    private async Task ExecuteRangeAsync(string sql, DateTime lo, DateTime hi, CancellationToken cancellationToken)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.Add(new DuckDBParameter("lo", lo));
        command.Parameters.Add(new DuckDBParameter("hi", hi));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="body"/> in one transaction (the caller holds the gate): commits, or rolls back and rethrows.</summary>
    private async Task InTransactionAsync(Func<Task> body, CancellationToken cancellationToken)
    {
        await ExecuteCoreAsync("BEGIN TRANSACTION", cancellationToken).ConfigureAwait(false);
        try
        {
            await body().ConfigureAwait(false);
            await ExecuteCoreAsync("COMMIT", cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await ExecuteCoreAsync("ROLLBACK", CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    private async Task ExecuteCoreAsync(string sql, CancellationToken cancellationToken) =>
        await DuckDbSchema.ExecuteAsync(_connection, sql, cancellationToken).ConfigureAwait(false);

    /// <summary>Groups sorted whole periods into [from, to) runs of consecutive periods.</summary>
    private static List<(DateTime From, DateTime To)> ContiguousRuns(SortedSet<DateTime> periods, long width)
    {
        var runs = new List<(DateTime, DateTime)>();
        DateTime? start = null;
        var end = DateTime.MinValue;
        foreach (var p in periods)
        {
            if (start is null)
            {
                start = p;
            }
            else if (p != end)
            {
                runs.Add((start.Value, end));
                start = p;
            }
            end = p.AddTicks(width);
        }
        if (start is not null)
            runs.Add((start.Value, end));
        return runs;
    }

    // Column order follows DuckDbSchema's cost_minutes definition.
    private static void AppendLine(DuckDBAppender appender, CostLine line) =>
        appender.CreateRow()
            .AppendValue(line.Minute.UtcDateTime)
            .AppendValue(line.SegmentStart)
            .AppendValue(line.Seconds)
            .AppendValue(line.GpuIndex)
            .AppendValue(line.Provider)
            .AppendValue(line.Region)
            .AppendValue(line.InstanceType)
            .AppendValue(line.Capacity.ToName())
            .AppendValue(line.GpuModel)
            .AppendValue(line.Cluster)
            .AppendValue(line.Orchestrator)
            .AppendValue(line.Team)
            .AppendValue(line.Project)
            .AppendValue(line.User)
            .AppendValue(line.WorkloadId)
            .AppendValue(ComponentName(line.Component))
            .AppendValue(line.ResourceId)
            .AppendValue(line.IsIdle)
            .AppendValue(line.Rate.NanosPerHour)
            .AppendValue(line.SharePpm)
            .AppendValue(line.Quantity)
            .AppendValue(line.Cost.Nanos)
            .AppendValue(line.PriceSource)
            .EndRow();

    /// <summary>How a component is spelled in the store and in reports.</summary>
    internal static string ComponentName(CostComponent component) => component switch
    {
        CostComponent.Gpu => "gpu",
        CostComponent.Compute => "compute",
        CostComponent.Storage => "storage",
        CostComponent.Network => "network",
        CostComponent.Commitment => "commitment",
        _ => throw new ArgumentOutOfRangeException(nameof(component), component, "Unknown cost component."),
    };

    /// <inheritdoc />
    public async Task UpsertWorkloadsAsync(IReadOnlyList<WorkloadRecord> workloads, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workloads);
        if (workloads.Count == 0)
            return;
        // Last one wins within a batch (but the earliest start is kept: a replay after a restart may see a workload later
        // than it began); DuckDB refuses to update the same key twice in one statement.
        var latest = new Dictionary<string, WorkloadRecord>(StringComparer.Ordinal);
        foreach (var w in workloads)
            latest[w.Workload.Id] = w;

        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await InTransactionAsync(async () =>
            {
                foreach (var record in latest.Values)
                {
                    var w = record.Workload;
                    using var command = _connection.CreateCommand();
                    command.CommandText = """
                        INSERT INTO workloads
                        VALUES ($id, $orchestrator, $name, $user, $team, $project, $model, $labels, $started, $ended, $estimate)
                        ON CONFLICT (id) DO UPDATE SET
                            orchestrator = excluded.orchestrator, name = excluded.name, user_name = excluded.user_name,
                            team = excluded.team, project = excluded.project, model = excluded.model, labels = excluded.labels,
                            started = least(workloads.started, excluded.started), ended = excluded.ended, estimate_per_hour = excluded.estimate_per_hour
                        """;
                    command.Parameters.Add(new DuckDBParameter("id", w.Id));
                    command.Parameters.Add(new DuckDBParameter("orchestrator", w.Orchestrator));
                    command.Parameters.Add(new DuckDBParameter("name", w.Name));
                    command.Parameters.Add(new DuckDBParameter("user", w.User));
                    command.Parameters.Add(new DuckDBParameter("team", w.Team));
                    command.Parameters.Add(new DuckDBParameter("project", w.Project));
                    command.Parameters.Add(new DuckDBParameter("model", w.Model));
                    command.Parameters.Add(new DuckDBParameter("labels", JsonSerializer.Serialize(w.Labels ?? new Dictionary<string, string>(), s_json)));
                    command.Parameters.Add(new DuckDBParameter("started", record.Started.UtcDateTime));
                    command.Parameters.Add(new DuckDBParameter("ended", record.Ended is { } e ? e.UtcDateTime : DBNull.Value));
                    command.Parameters.Add(new DuckDBParameter("estimate", record.EstimatePerHour is { } d ? d : DBNull.Value));
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
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
            await InTransactionAsync(async () =>
            {
                foreach (var ((minute, workloadId, metric), increase) in latest)
                {
                    using var command = _connection.CreateCommand();
                    command.CommandText = "INSERT OR REPLACE INTO work_minutes VALUES ($minute, $workload, $metric, $increase)";
                    command.Parameters.Add(new DuckDBParameter("minute", minute));
                    command.Parameters.Add(new DuckDBParameter("workload", workloadId));
                    command.Parameters.Add(new DuckDBParameter("metric", metric));
                    command.Parameters.Add(new DuckDBParameter("increase", increase));
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, CancellationToken cancellationToken = default) =>
        QueryCostsAsync(query, LedgerGrain.Day, cancellationToken);

    /// <summary>As <see cref="QueryCostsAsync(CostQuery, CancellationToken)"/>, reading no table coarser than <paramref name="coarsest"/>.</summary>
    internal async Task<IReadOnlyList<CostReportRow>> QueryCostsAsync(CostQuery query, LedgerGrain coarsest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var rows = new List<CostReportRow>();
        if (query.From >= query.To)
            return rows;

        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        CostQueryPlan.Build(query, command, coarsest, Held);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var keyCount = query.By.Count;
        var hasBucket = query.Step is not null;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var keys = new string[keyCount];
            for (var i = 0; i < keyCount; i++)
                keys[i] = reader.GetString(i);
            DateTimeOffset? bucket = null;
            if (hasBucket)
                bucket = query.From + (query.Step!.Value * reader.GetInt64(keyCount));
            var measures = keyCount + (hasBucket ? 1 : 0);
            rows.Add(new CostReportRow(
                keys,
                bucket,
                new Money(reader.GetInt64(measures)),
                new Money(reader.GetInt64(measures + 1)),
                reader.GetDecimal(measures + 2)));
        }
        return rows;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WorkloadRecord>> GetWorkloadsAsync(IReadOnlyCollection<string>? ids = null, CancellationToken cancellationToken = default)
    {
        var result = new List<WorkloadRecord>();
        if (ids is { Count: 0 })
            return result;
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        var sql = "SELECT id, orchestrator, name, user_name, team, project, model, labels, started, ended, estimate_per_hour FROM workloads";
        if (ids is not null)
        {
            var names = new List<string>(ids.Count);
            var n = 0;
            foreach (var id in ids)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"id{n++}");
                names.Add("$" + name);
                command.Parameters.Add(new DuckDBParameter(name, id));
            }
            sql += " WHERE id IN (" + string.Join(", ", names) + ")";
        }
        command.CommandText = sql + " ORDER BY id";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var labels = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(7), s_json);
            var info = new WorkloadInfo(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.GetString(4), reader.GetString(5), reader.GetString(6),
                labels is { Count: > 0 } ? labels : null);
            result.Add(new WorkloadRecord(
                info,
                Utc(reader.GetDateTime(8)),
                reader.IsDBNull(9) ? null : Utc(reader.GetDateTime(9)),
                reader.IsDBNull(10) ? null : reader.GetDecimal(10)));
        }
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WorkTotal>> GetWorkTotalsAsync(DateTimeOffset from, DateTimeOffset to, IReadOnlyCollection<string>? workloadIds = null, CancellationToken cancellationToken = default)
    {
        var result = new List<WorkTotal>();
        if (from >= to || workloadIds is { Count: 0 })
            return result;
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        var sql = "SELECT workload_id, metric, SUM(increase) FROM work_minutes WHERE minute >= $from AND minute < $to";
        command.Parameters.Add(new DuckDBParameter("from", from.UtcDateTime));
        command.Parameters.Add(new DuckDBParameter("to", to.UtcDateTime));
        if (workloadIds is not null)
        {
            var names = new List<string>(workloadIds.Count);
            var n = 0;
            foreach (var id in workloadIds)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"id{n++}");
                names.Add("$" + name);
                command.Parameters.Add(new DuckDBParameter(name, id));
            }
            sql += " AND workload_id IN (" + string.Join(", ", names) + ")";
        }
        command.CommandText = sql + " GROUP BY workload_id, metric ORDER BY workload_id, metric";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            result.Add(new WorkTotal(reader.GetString(0), reader.GetString(1), reader.GetDouble(2)));
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CostLine>> GetLinesAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var result = new List<CostLine>();
        if (from >= to)
            return result;
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = $"""
            SELECT {LineColumns} FROM cost_minutes WHERE minute >= $from AND minute < $to
            ORDER BY minute, resource_id, gpu_index, workload_id, component, segment_start
            """;
        command.Parameters.Add(new DuckDBParameter("from", from.UtcDateTime));
        command.Parameters.Add(new DuckDBParameter("to", to.UtcDateTime));
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(ReadLine(
                Utc(reader.GetDateTime(0)), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt32(3),
                i => reader.GetString(i), reader.GetInt64(17), reader.GetInt32(18), reader.GetDecimal(19), reader.GetInt64(20)));
        }
        return result;
    }

    /// <summary>The ledger columns <see cref="ReadLine"/> expects, in its order (both stores select them so).</summary>
    internal const string LineColumns =
        "minute, segment_start, seconds, gpu_index, provider, region, instance_type, capacity, gpu_model, cluster, orchestrator, " +
        "team, project, user_name, workload_id, component, resource_id, rate_nanos_per_hour, share_ppm, quantity, cost_nanos, price_source";

    /// <summary>A ledger row as <see cref="LineColumns"/> selects it: text columns 4 to 16 and 21 through <paramref name="text"/>.</summary>
    internal static CostLine ReadLine(DateTimeOffset minute, int segmentStart, int seconds, int gpuIndex, Func<int, string> text, long rate, int sharePpm, decimal quantity, long cost) => new()
    {
        Minute = minute,
        SegmentStart = segmentStart,
        Seconds = seconds,
        GpuIndex = gpuIndex,
        Provider = text(4),
        Region = text(5),
        InstanceType = text(6),
        Capacity = CapacityTypes.TryParse(text(7), out var capacity) ? capacity : throw new InvalidDataException($"ledger row with unknown capacity '{text(7)}'"),
        GpuModel = text(8),
        Cluster = text(9),
        Orchestrator = text(10),
        Team = text(11),
        Project = text(12),
        User = text(13),
        WorkloadId = text(14),
        Component = ParseComponent(text(15)),
        ResourceId = text(16),
        Rate = new HourlyRate(rate),
        SharePpm = sharePpm,
        Quantity = quantity,
        Cost = new Money(cost),
        PriceSource = text(21),
    };

    /// <summary>The component spelled as <see cref="ComponentName"/> writes it.</summary>
    internal static CostComponent ParseComponent(string name) => name switch
    {
        "gpu" => CostComponent.Gpu,
        "compute" => CostComponent.Compute,
        "storage" => CostComponent.Storage,
        "network" => CostComponent.Network,
        _ => throw new InvalidDataException($"ledger row with unknown component '{name}'"),
    };

    /// <inheritdoc />
    public async Task AppendAuditAsync(ActionAuditEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "INSERT INTO action_audit VALUES ($at, $rule, $fingerprint, $what, $why, $outcome, $code, $detail)";
            command.Parameters.Add(new DuckDBParameter("at", entry.At.UtcDateTime));
            command.Parameters.Add(new DuckDBParameter("rule", entry.Rule));
            command.Parameters.Add(new DuckDBParameter("fingerprint", entry.Fingerprint));
            command.Parameters.Add(new DuckDBParameter("what", entry.What));
            command.Parameters.Add(new DuckDBParameter("why", entry.Why));
            command.Parameters.Add(new DuckDBParameter("outcome", entry.Outcome));
            command.Parameters.Add(new DuckDBParameter("code", entry.Code is { } code ? code : DBNull.Value));
            command.Parameters.Add(new DuckDBParameter("detail", entry.Detail));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ActionAuditEntry>> GetAuditAsync(DateTimeOffset? since = null, int limit = 1000, CancellationToken cancellationToken = default)
    {
        var result = new List<ActionAuditEntry>();
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = "SELECT audited_at, rule, fingerprint, what, why, outcome, code, detail FROM action_audit WHERE audited_at >= $since ORDER BY audited_at DESC LIMIT $limit";
        command.Parameters.Add(new DuckDBParameter("since", (since ?? DateTimeOffset.MinValue).UtcDateTime));
        command.Parameters.Add(new DuckDBParameter("limit", Math.Max(0, limit)));
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(new ActionAuditEntry(
                Utc(reader.GetDateTime(0)), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetInt32(6), reader.GetString(7)));
        }
        result.Reverse();
        return result;
    }

    /// <inheritdoc />
    public async Task<(DateTimeOffset First, DateTimeOffset Last)?> GetLedgerSpanAsync(CancellationToken cancellationToken = default)
    {
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        // Through the hourly rollup (a row for every hour the ledger has minutes in), then only the first and last
        // hour's minutes: a plain MIN/MAX over cost_minutes scans the whole ledger once writes have made DuckDB's
        // column statistics inexact (≈630 ms on 90 days × 2,000 GPUs, docs/performance.md).
        // Where retention dropped the first hour's minutes (or the first day's hours), the span starts at the first
        // hour (or day) a rollup still holds, so "since the beginning" keeps covering every cost still known.
        command.CommandText = """
            WITH h AS (SELECT MIN(hour) AS lo, MAX(hour) AS hi FROM cost_hourly),
                 d AS (SELECT MIN(day) AS lo, MAX(day) AS hi FROM cost_daily)
            SELECT CASE WHEN h.lo IS NULL OR d.lo + INTERVAL 1 DAY <= h.lo THEN d.lo
                        ELSE COALESCE((SELECT MIN(m.minute) FROM cost_minutes m WHERE m.minute >= h.lo AND m.minute < h.lo + INTERVAL 1 HOUR), h.lo) END,
                   COALESCE((SELECT MAX(m.minute) FROM cost_minutes m WHERE m.minute >= h.hi AND m.minute < h.hi + INTERVAL 1 HOUR), h.hi, d.hi)
            FROM h, d
            """;
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false) || reader.IsDBNull(0))
            return null;
        return (Utc(reader.GetDateTime(0)), Utc(reader.GetDateTime(1)));
    }

    /// <summary>Reads every row of a table in a stable order, as text (tests compare tables across writes).</summary>
    internal async Task<IReadOnlyList<string>> DumpTableAsync(string table, CancellationToken cancellationToken = default)
    {
        // Whitelisted: the name is spliced into SQL.
        if (table is not ("cost_minutes" or "cost_hourly" or "cost_daily" or "workloads" or "work_minutes"))
            throw new ArgumentOutOfRangeException(nameof(table), table, "Not a store table.");
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = $"SELECT * FROM {table} ORDER BY ALL";
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var rows = new List<string>();
            var values = new object[reader.FieldCount];
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                reader.GetValues(values);
                rows.Add(string.Join('|', values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture))));
            }
            return rows;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static DateTimeOffset Utc(DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));

    /// <summary>Takes a read connection from the pool (waiting while all are in use); dispose the lease to return it.</summary>
    private async Task<ReadLease> ReadAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _readSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_disposed || !_readers.TryTake(out var connection))
        {
            _readSlots.Release();
            throw new ObjectDisposedException(nameof(DuckDbCostStore));
        }
        return new ReadLease(this, connection);
    }

    private sealed class ReadLease(DuckDbCostStore store, DuckDBConnection connection) : IDisposable
    {
        public DuckDBConnection Connection { get; } = connection;

        public void Dispose()
        {
            store._readers.Add(Connection);
            store._readSlots.Release();
        }
    }

    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_disposed)
        {
            _gate.Release();
            throw new ObjectDisposedException(nameof(DuckDbCostStore));
        }
    }

    /// <summary>Waits for the call in progress, checkpoints the file so it opens without WAL replay, and closes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
                return;
            _disposed = true;
            // Wait for the reads in flight, then close their connections.
            for (var i = 0; i < ReadConnections; i++)
                await _readSlots.WaitAsync().ConfigureAwait(false);
            while (_readers.TryTake(out var reader))
                await reader.DisposeAsync().ConfigureAwait(false);
            // Wake any read waiting for a slot: it finds the store disposed.
            _readSlots.Release(ReadConnections);
            if (_path != ":memory:")
            {
                try
                {
                    await ExecuteCoreAsync("CHECKPOINT", CancellationToken.None).ConfigureAwait(false);
                }
                catch (DuckDBException ex)
                {
                    // The WAL still holds every committed write; the next open replays it.
                    Log.CheckpointFailed(_logger, ex, _path);
                }
            }
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        // The gate is left undisposed: a caller racing DisposeAsync must get ObjectDisposedException, not a crash.
    }

    private readonly record struct LedgerKey(DateTime Minute, string ResourceId, int GpuIndex, string WorkloadId, CostComponent Component, int SegmentStart);

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Cost store {Path} migrated from schema version {From} to {To}")]
        public static partial void Migrated(ILogger logger, string path, int from, int to);

        [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Wrote {Lines} ledger lines touching {Hours} hours in {Milliseconds} ms")]
        public static partial void Wrote(ILogger logger, int lines, int hours, double milliseconds);

        [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Checkpoint of cost store {Path} failed on close")]
        public static partial void CheckpointFailed(ILogger logger, Exception exception, string path);

        [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Skipped {Lines} ledger lines older than the retention horizon {Horizon:yyyy-MM-dd HH:mm} UTC: their minutes are no longer kept (storage.retention.minutes)")]
        public static partial void OlderThanRetention(ILogger logger, int lines, DateTime horizon);
    }
}
