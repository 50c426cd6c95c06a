using DuckDB.NET.Data;

namespace Burnrate.Storage.DuckDb;

public sealed partial class DuckDbCostStore : IRulerStateStore
{
    /// <inheritdoc />
    public async Task BeatAsync(RulerHeartbeat beat, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(beat);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "INSERT OR REPLACE INTO ruler_heartbeats VALUES ($id, $started, $beat)";
            command.Parameters.Add(new DuckDBParameter("id", beat.RulerId));
            command.Parameters.Add(new DuckDBParameter("started", beat.StartedAt.UtcDateTime));
            command.Parameters.Add(new DuckDBParameter("beat", beat.LastBeat.UtcDateTime));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RulerHeartbeat>> GetHeartbeatsAsync(CancellationToken cancellationToken = default)
    {
        var result = new List<RulerHeartbeat>();
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = "SELECT ruler_id, started_at, last_beat FROM ruler_heartbeats";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            result.Add(new RulerHeartbeat(reader.GetString(0), Utc(reader.GetDateTime(1)), Utc(reader.GetDateTime(2))));
        // Ordinal order by id, whatever the database's collation.
        return [.. result.OrderBy(b => b.StartedAt).ThenBy(b => b.RulerId, StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    public async Task SaveRulerCheckpointAsync(RulerCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = """
                INSERT INTO ruler_checkpoint VALUES (1, $through, $alerts, $id, $saved)
                ON CONFLICT (id) DO UPDATE SET evaluated_through = excluded.evaluated_through, alerts = excluded.alerts,
                    ruler_id = excluded.ruler_id, saved_at = excluded.saved_at
                WHERE excluded.evaluated_through >= ruler_checkpoint.evaluated_through
                """;
            command.Parameters.Add(new DuckDBParameter("through", checkpoint.EvaluatedThrough.UtcDateTime));
            command.Parameters.Add(new DuckDBParameter("alerts", checkpoint.Alerts));
            command.Parameters.Add(new DuckDBParameter("id", checkpoint.RulerId));
            command.Parameters.Add(new DuckDBParameter("saved", checkpoint.SavedAt.UtcDateTime));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<RulerCheckpoint?> GetRulerCheckpointAsync(CancellationToken cancellationToken = default)
    {
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = "SELECT evaluated_through, alerts, ruler_id, saved_at FROM ruler_checkpoint WHERE id = 1";
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            return null;
        return new RulerCheckpoint(Utc(reader.GetDateTime(0)), reader.GetString(1), reader.GetString(2), Utc(reader.GetDateTime(3)));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<MinuteDigest>> GetMinuteDigestsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var result = new List<MinuteDigest>();
        if (from >= to)
            return result;
        using var lease = await ReadAsync(cancellationToken).ConfigureAwait(false);
        using var command = lease.Connection.CreateCommand();
        command.CommandText = """
            SELECT minute, count(*), CAST(sum(cost_nanos) AS BIGINT) FROM cost_minutes WHERE minute >= $from AND minute < $to
            GROUP BY minute ORDER BY minute
            """;
        command.Parameters.Add(new DuckDBParameter("from", from.UtcDateTime));
        command.Parameters.Add(new DuckDBParameter("to", to.UtcDateTime));
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            result.Add(new MinuteDigest(Utc(reader.GetDateTime(0)), reader.GetInt64(1), reader.GetInt64(2)));
        return result;
    }
}
