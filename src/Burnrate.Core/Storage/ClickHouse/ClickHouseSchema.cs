namespace Burnrate.Storage.ClickHouse;

/// <summary>One table of the ClickHouse store: its columns, sort key, partitioning and the key that picks its shard.</summary>
/// <param name="Name">The name readers and writers use (the <c>Distributed</c> table in a cluster).</param>
/// <param name="Columns">Column definitions.</param>
/// <param name="OrderBy">The sort key; for versioned tables also the key that a newer version replaces on merge.</param>
/// <param name="PartitionBy">The partition expression, or null.</param>
/// <param name="ShardBy">The sharding expression of the <c>Distributed</c> table.</param>
/// <param name="Versioned">Whether rows carry a <c>version</c> and the engine keeps only the newest per sort key.</param>
internal sealed record ClickHouseTable(string Name, string Columns, string OrderBy, string? PartitionBy, string ShardBy, bool Versioned = true);

/// <summary>
/// The tables of the ClickHouse store, in SQL that Debian's ClickHouse 18.16 and current servers both accept
/// (no <c>Map</c>, <c>Bool</c>, <c>DateTime64</c>, TTL or codecs; no <c>LowCardinality</c>, which 18.16 allows only
/// with a server-side setting).
/// </summary>
/// <remarks>
/// <para>
/// Replacing without deletes: 18.16 has no synchronous delete (<c>ALTER ... DELETE</c> is an asynchronous
/// mutation), so every write appends rows stamped with a new, larger <c>version</c>, and readers take, for each
/// (minute, resource) of the ledger or (hour/day, resource) of a rollup, only the rows of its newest version —
/// a subquery <c>(minute, resource_id, version) IN (SELECT minute, resource_id, max(version) ...)</c>. A
/// re-rated minute that now has other row keys (idle became a workload) thus hides every old row, and a replayed
/// batch only adds a newer copy of the same rows. <c>ReplacingMergeTree(version)</c> drops the older copies of
/// identical keys when parts merge, so replays do not grow the tables for long.
/// </para>
/// <para>
/// Sharding: the ledger and both rollups are sharded by <c>resource_id</c>, so every version of a (minute,
/// resource) lives on one shard and the newest-version subquery reads each shard's local table. Workloads and work
/// counters are read with <c>argMax(..., version)</c> grouped by their key, which is right across shards.
/// </para>
/// <para>
/// Rollups are recomputed by the writer (an <c>INSERT ... SELECT</c> over the minutes of the (hour, resource)
/// pairs a batch touched), not by materialized views: a view sees every inserted row, so a re-rated minute would
/// be counted twice.
/// </para>
/// </remarks>
internal static class ClickHouseSchema
{
    /// <summary>The schema version this build writes and reads (recorded per server in <c>schema_version</c>).</summary>
    internal const int CurrentVersion = 2;

    internal const string DimensionColumns = Storage.DuckDb.DuckDbSchema.DimensionColumns;

    private const string DimensionDefinitions = """
            provider       String,
            region         String,
            instance_type  String,
            capacity       String,
            gpu_model      String,
            cluster        String,
            orchestrator   String,
            team           String,
            project        String,
            user_name      String,
            workload_id    String,
            component      String,
            resource_id    String,
            is_idle        UInt8,
        """;

    private const string RollupMeasures = """
            cost_nanos       Int64,
            idle_cost_nanos  Int64,
            gpu_seconds      Decimal(38, 6),
            line_count       Int64,
            version          UInt64
        """;

    internal static readonly ClickHouseTable CostMinutes = new("cost_minutes", $"""
            minute               DateTime,
            segment_start        Int32,
            seconds              Int32,
            gpu_index            Int32,
        {DimensionDefinitions}
            rate_nanos_per_hour  Int64,
            share_ppm            Int32,
            quantity             Decimal(38, 6),
            cost_nanos           Int64,
            price_source         String,
            version              UInt64
        """, "(minute, resource_id, gpu_index, workload_id, component, segment_start)", "toYYYYMM(minute)", "sipHash64(resource_id)");

    internal static readonly ClickHouseTable CostHourly = new("cost_hourly",
        $"hour DateTime, {DimensionDefinitions} {RollupMeasures}", $"(hour, {DimensionColumns})", "toYYYYMM(hour)", "sipHash64(resource_id)");

    internal static readonly ClickHouseTable CostDaily = new("cost_daily",
        $"day DateTime, {DimensionDefinitions} {RollupMeasures}", $"(day, {DimensionColumns})", "toYear(day)", "sipHash64(resource_id)");

    // Times that DuckDB keeps to the microsecond are Int64 microseconds since the epoch here (DateTime is whole seconds
    // and DateTime64 is unknown to 18.16); absent values are flags, since argMax skips NULLs.
    internal static readonly ClickHouseTable Workloads = new("workloads", """
            id                 String,
            orchestrator       String,
            name               String,
            user_name          String,
            team               String,
            project            String,
            model              String,
            labels             String,
            started_us         Int64,
            ended_us           Int64,
            has_ended          UInt8,
            estimate_per_hour  Decimal(38, 9),
            has_estimate       UInt8,
            version            UInt64
        """, "id", null, "sipHash64(id)");

    internal static readonly ClickHouseTable WorkMinutes = new("work_minutes", """
            minute       DateTime,
            workload_id  String,
            metric       String,
            increase     Float64,
            version      UInt64
        """, "(minute, workload_id, metric)", "toYYYYMM(minute)", "sipHash64(workload_id)");

    internal static readonly ClickHouseTable ActionAudit = new("action_audit", """
            audited_at_us  Int64,
            rule           String,
            fingerprint    String,
            what           String,
            why            String,
            outcome        String,
            code           Nullable(Int32),
            detail         String
        """, "audited_at_us", null, "rand()", Versioned: false);

    // Amounts keep 12 decimals and quantities 15, as in the embedded store.
    internal static readonly ClickHouseTable BillingLines = new("billing_lines", """
            source_file             String,
            source_row              Int64,
            provider                String,
            billing_account_id      String,
            sub_account_id          Nullable(String),
            resource_id             Nullable(String),
            resource_name           Nullable(String),
            resource_type           Nullable(String),
            region_id               Nullable(String),
            availability_zone       Nullable(String),
            service_name            String,
            service_category        Nullable(String),
            sku_id                  Nullable(String),
            charge_category         String,
            pricing_category        Nullable(String),
            charge_description      Nullable(String),
            charge_period_start_us  Int64,
            charge_period_end_us    Int64,
            billed_cost             Decimal(38, 12),
            effective_cost          Decimal(38, 12),
            list_cost               Nullable(Decimal(38, 12)),
            contracted_cost         Nullable(Decimal(38, 12)),
            consumed_quantity       Nullable(Decimal(38, 15)),
            consumed_unit           Nullable(String),
            billing_currency        String,
            tags                    Nullable(String),
            version                 UInt64
        """, "(source_file, source_row)", null, "sipHash64(source_file)");

    // What reconciliations learned: read with argMax(..., version) per key, so a newer factor for a key replaces the
    // old one on every shard layout. Times are Int64 microseconds, as in the other tables.
    internal static readonly ClickHouseTable CalibrationFactors = new("calibration_factors", """
            provider        String,
            usage           String,
            instance_type   String,
            capacity        String,
            factor          Decimal(38, 18),
            estimated       Decimal(38, 12),
            effective       Decimal(38, 12),
            period_from_us  Int64,
            period_to_us    Int64,
            learned_at_us   Int64,
            version         UInt64
        """, "(provider, usage, instance_type, capacity)", null, "sipHash64(provider)");

    internal static readonly ClickHouseTable ReconciledPeriods = new("reconciled_periods", """
            provider          String,
            period_from_us    Int64,
            period_to_us      Int64,
            estimated         Decimal(38, 12),
            effective         Decimal(38, 12),
            reconciled_at_us  Int64,
            version           UInt64
        """, "(provider, period_from_us)", null, "sipHash64(provider)");

    // The alert rulers' beats: version is the beat's time in microseconds, so a merge keeps each ruler's newest beat.
    // Created where missing on every open, as every table here, so a database of schema version 2 gains them.
    internal static readonly ClickHouseTable RulerHeartbeats = new("ruler_heartbeats", """
            ruler_id    String,
            started_us  Int64,
            version     UInt64
        """, "ruler_id", null, "sipHash64(ruler_id)");

    // The leading ruler's checkpoint (one key, id 1): version is the cursor in microseconds, so a merge keeps the one that
    // evaluated furthest and a late save by a ruler that lost the lead never moves it back.
    internal static readonly ClickHouseTable RulerCheckpoint = new("ruler_checkpoint", """
            id        UInt8,
            alerts    String,
            ruler_id  String,
            saved_us  Int64,
            version   UInt64
        """, "id", null, "id");

    internal static IReadOnlyList<ClickHouseTable> Tables { get; } =
        [CostMinutes, CostHourly, CostDaily, Workloads, WorkMinutes, ActionAudit, BillingLines, CalibrationFactors, ReconciledPeriods, RulerHeartbeats, RulerCheckpoint];

    /// <summary>The statements that create <paramref name="table"/> on one server (local table, then the Distributed one).</summary>
    internal static IEnumerable<string> Create(ClickHouseTable table, ClickHouseOptions options)
    {
        var db = options.Database;
        var local = options.Cluster is null ? table.Name : table.Name + "_local";
        string engine;
        if (options.Replicated)
        {
            var path = "'/clickhouse/tables/{shard}/" + db + "/" + local + "', '{replica}'";
            engine = table.Versioned ? $"ReplicatedReplacingMergeTree({path}, version)" : $"ReplicatedMergeTree({path})";
        }
        else
        {
            engine = table.Versioned ? "ReplacingMergeTree(version)" : "MergeTree";
        }
        var partition = table.PartitionBy is null ? "" : $" PARTITION BY {table.PartitionBy}";
        yield return $"CREATE TABLE IF NOT EXISTS {db}.{local} ({table.Columns}) ENGINE = {engine}{partition} ORDER BY {table.OrderBy}";
        if (options.Cluster is { } cluster)
            yield return $"CREATE TABLE IF NOT EXISTS {db}.{table.Name} AS {db}.{local} ENGINE = Distributed({cluster}, {db}, {local}, {table.ShardBy})";
    }
}
