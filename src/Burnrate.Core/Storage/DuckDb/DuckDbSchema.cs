using System.Globalization;
using DuckDB.NET.Data;

namespace Burnrate.Storage.DuckDb;

/// <summary>One step of the schema: the version it brings the database to and the statements that do it.</summary>
internal sealed record SchemaMigration(int Version, string Description, IReadOnlyList<string> Statements);

/// <summary>
/// The versioned schema of the embedded store. Migrations run in order, each in its own transaction, and record
/// themselves in <c>schema_version</c>; a database already at a version is left alone, and one at a version newer
/// than this build knows is refused rather than guessed at.
/// </summary>
/// <remarks>
/// The SQL stays close to what ClickHouse also accepts (plain column types, no DuckDB-only constructs in the
/// tables) so that the scale-out store can mirror the same tables and keys.
/// </remarks>
internal static class DuckDbSchema
{
    /// <summary>The dimension columns shared by the ledger and both rollups, in rollup key order.</summary>
    internal const string DimensionColumns =
        "provider, region, instance_type, capacity, gpu_model, cluster, orchestrator, team, project, user_name, " +
        "workload_id, component, resource_id, is_idle";

    private const string DimensionDefinitions = """
            provider       VARCHAR NOT NULL,
            region         VARCHAR NOT NULL,
            instance_type  VARCHAR NOT NULL,
            capacity       VARCHAR NOT NULL,
            gpu_model      VARCHAR NOT NULL,
            cluster        VARCHAR NOT NULL,
            orchestrator   VARCHAR NOT NULL,
            team           VARCHAR NOT NULL,
            project        VARCHAR NOT NULL,
            user_name      VARCHAR NOT NULL,
            workload_id    VARCHAR NOT NULL,
            component      VARCHAR NOT NULL,
            resource_id    VARCHAR NOT NULL,
            is_idle        BOOLEAN NOT NULL,
        """;

    // The ledger has no PRIMARY KEY on purpose: DuckDB keeps an in-memory ART index per key, which for hundreds
    // of millions of minutes costs gigabytes and slows bulk loads. Uniqueness of the key is kept by the writer
    // instead (delete the batch's keys, then insert, in one transaction); see DuckDbCostStore.WriteAsync.
    private static readonly string s_costMinutesColumns = $"""
            minute               TIMESTAMP NOT NULL,
            segment_start        INTEGER NOT NULL,
            seconds              INTEGER NOT NULL,
            gpu_index            INTEGER NOT NULL,
        {DimensionDefinitions}
            rate_nanos_per_hour  BIGINT NOT NULL,
            share_ppm            INTEGER NOT NULL,
            quantity             DECIMAL(38, 6) NOT NULL,
            cost_nanos           BIGINT NOT NULL,
            price_source         VARCHAR NOT NULL
        """;

    private static readonly string s_rollupMeasures = """
            cost_nanos       BIGINT NOT NULL,
            idle_cost_nanos  BIGINT NOT NULL,
            gpu_seconds      DECIMAL(38, 6) NOT NULL,
            line_count       BIGINT NOT NULL
        """;

    // Amounts keep 12 decimals (FOCUS files carry 10-11; a nano-dollar is 9) so a re-export is the bill as read.
    private const string BillingLineColumns = """
            source_file          VARCHAR NOT NULL,
            source_row           BIGINT NOT NULL,
            provider             VARCHAR NOT NULL,
            billing_account_id   VARCHAR NOT NULL,
            sub_account_id       VARCHAR,
            resource_id          VARCHAR,
            resource_name        VARCHAR,
            resource_type        VARCHAR,
            region_id            VARCHAR,
            availability_zone    VARCHAR,
            service_name         VARCHAR NOT NULL,
            service_category     VARCHAR,
            sku_id               VARCHAR,
            charge_category      VARCHAR NOT NULL,
            pricing_category     VARCHAR,
            charge_description   VARCHAR,
            charge_period_start  TIMESTAMP NOT NULL,
            charge_period_end    TIMESTAMP NOT NULL,
            billed_cost          DECIMAL(38, 12) NOT NULL,
            effective_cost       DECIMAL(38, 12) NOT NULL,
            list_cost            DECIMAL(38, 12),
            contracted_cost      DECIMAL(38, 12),
            consumed_quantity    DECIMAL(38, 15),
            consumed_unit        VARCHAR,
            billing_currency     VARCHAR NOT NULL,
            tags                 VARCHAR
        """;

    /// <summary>Every migration this build knows, in order.</summary>
    internal static IReadOnlyList<SchemaMigration> Migrations { get; } =
    [
        new SchemaMigration(1, "ledger, rollups, workloads, work counters",
        [
            $"CREATE TABLE cost_minutes ({s_costMinutesColumns})",
            // Same shape as the ledger: the writer appends here, then moves the batch in one transaction.
            $"CREATE TABLE cost_minutes_staging ({s_costMinutesColumns})",
            $"CREATE TABLE cost_hourly (hour TIMESTAMP NOT NULL, {DimensionDefinitions} {s_rollupMeasures})",
            $"CREATE TABLE cost_daily (day TIMESTAMP NOT NULL, {DimensionDefinitions} {s_rollupMeasures})",
            """
            CREATE TABLE workloads (
                id                 VARCHAR PRIMARY KEY,
                orchestrator       VARCHAR NOT NULL,
                name               VARCHAR NOT NULL,
                user_name          VARCHAR NOT NULL,
                team               VARCHAR NOT NULL,
                project            VARCHAR NOT NULL,
                model              VARCHAR NOT NULL,
                labels             VARCHAR NOT NULL,
                started            TIMESTAMP NOT NULL,
                ended              TIMESTAMP,
                estimate_per_hour  DECIMAL(38, 9)
            )
            """,
            """
            CREATE TABLE work_minutes (
                minute       TIMESTAMP NOT NULL,
                workload_id  VARCHAR NOT NULL,
                metric       VARCHAR NOT NULL,
                increase     DOUBLE NOT NULL,
                PRIMARY KEY (minute, workload_id, metric)
            )
            """,
        ]),
        new SchemaMigration(2, "rule action audit log",
        [
            """
            CREATE TABLE action_audit (
                audited_at   TIMESTAMP NOT NULL,
                rule         VARCHAR NOT NULL,
                fingerprint  VARCHAR NOT NULL,
                what         VARCHAR NOT NULL,
                why          VARCHAR NOT NULL,
                outcome      VARCHAR NOT NULL,
                code         INTEGER,
                detail       VARCHAR NOT NULL
            )
            """,
        ]),
        new SchemaMigration(3, "imported bill lines (FOCUS)",
        [
            // Keyed by (source_file, source_row) by the writer, as the ledger is: no PRIMARY KEY index.
            $"CREATE TABLE billing_lines ({BillingLineColumns})",
            $"CREATE TABLE billing_lines_staging ({BillingLineColumns})",
        ]),
        new SchemaMigration(4, "calibration factors and reconciled periods",
        [
            """
            CREATE TABLE calibration_factors (
                provider       VARCHAR NOT NULL,
                usage          VARCHAR NOT NULL,
                instance_type  VARCHAR NOT NULL,
                capacity       VARCHAR NOT NULL,
                factor         DECIMAL(38, 18) NOT NULL,
                estimated      DECIMAL(38, 12) NOT NULL,
                effective      DECIMAL(38, 12) NOT NULL,
                period_from    TIMESTAMP NOT NULL,
                period_to      TIMESTAMP NOT NULL,
                learned_at     TIMESTAMP NOT NULL,
                PRIMARY KEY (provider, usage, instance_type, capacity)
            )
            """,
            """
            CREATE TABLE reconciled_periods (
                provider       VARCHAR NOT NULL,
                period_from    TIMESTAMP NOT NULL,
                period_to      TIMESTAMP NOT NULL,
                estimated      DECIMAL(38, 12) NOT NULL,
                effective      DECIMAL(38, 12) NOT NULL,
                reconciled_at  TIMESTAMP NOT NULL,
                PRIMARY KEY (provider, period_from)
            )
            """,
        ]),
        new SchemaMigration(5, "alert ruler heartbeats and checkpoint",
        [
            """
            CREATE TABLE ruler_heartbeats (
                ruler_id    VARCHAR PRIMARY KEY,
                started_at  TIMESTAMP NOT NULL,
                last_beat   TIMESTAMP NOT NULL
            )
            """,
            // One row (id 1): the checkpoint that evaluated furthest.
            """
            CREATE TABLE ruler_checkpoint (
                id                 INTEGER PRIMARY KEY,
                evaluated_through  TIMESTAMP NOT NULL,
                alerts             VARCHAR NOT NULL,
                ruler_id           VARCHAR NOT NULL,
                saved_at           TIMESTAMP NOT NULL
            )
            """,
        ]),
    ];

    /// <summary>The version this build writes and reads.</summary>
    internal static int CurrentVersion => Migrations[^1].Version;

    /// <summary>
    /// Brings the database up to the last of <paramref name="migrations"/>. Returns the version it started at
    /// (0 for an empty database).
    /// </summary>
    /// <exception cref="InvalidOperationException">The database is at a newer version than <paramref name="migrations"/> knows.</exception>
    internal static async Task<int> MigrateAsync(DuckDBConnection connection, IReadOnlyList<SchemaMigration> migrations, TimeProvider time, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)", cancellationToken).ConfigureAwait(false);
        var current = await ReadVersionAsync(connection, cancellationToken).ConfigureAwait(false);
        var known = migrations.Count == 0 ? 0 : migrations[^1].Version;
        if (current > known)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"The cost store's database is at schema version {current}, but this build of Burnrate only knows versions up to {known}. It was written by a newer Burnrate: upgrade Burnrate, or point it at another database file. The file was not changed."));
        }

        foreach (var migration in migrations)
        {
            if (migration.Version <= current)
                continue;
            await ExecuteAsync(connection, "BEGIN TRANSACTION", cancellationToken).ConfigureAwait(false);
            try
            {
                foreach (var statement in migration.Statements)
                    await ExecuteAsync(connection, statement, cancellationToken).ConfigureAwait(false);
                using var record = connection.CreateCommand();
                record.CommandText = "INSERT INTO schema_version VALUES ($version, $description, $applied)";
                record.Parameters.Add(new DuckDBParameter("version", migration.Version));
                record.Parameters.Add(new DuckDBParameter("description", migration.Description));
                record.Parameters.Add(new DuckDBParameter("applied", time.GetUtcNow().UtcDateTime));
                await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, "COMMIT", cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await ExecuteAsync(connection, "ROLLBACK", CancellationToken.None).ConfigureAwait(false);
                throw;
            }
        }
        return current;
    }

    /// <summary>The highest version recorded, or 0 when none is.</summary>
    internal static async Task<int> ReadVersionAsync(DuckDBConnection connection, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return Convert.ToInt32(value, CultureInfo.InvariantCulture);
    }

    internal static async Task ExecuteAsync(DuckDBConnection connection, string sql, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
