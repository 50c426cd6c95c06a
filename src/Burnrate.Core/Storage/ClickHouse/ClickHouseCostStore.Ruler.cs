using System.Globalization;
using System.Text;

namespace Burnrate.Storage.ClickHouse;

public sealed partial class ClickHouseCostStore : IRulerStateStore
{
    /// <inheritdoc />
    public async Task BeatAsync(RulerHeartbeat beat, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(beat);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tsv = new StringBuilder();
        Tsv(tsv, beat.RulerId, Micros(beat.StartedAt), Micros(beat.LastBeat));
        await InsertTsvAsync("ruler_heartbeats", tsv, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RulerHeartbeat>> GetHeartbeatsAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var rows = await _client.QueryAsync($"""
            SELECT ruler_id, argMax(started_us, version), max(version) FROM {_db}.ruler_heartbeats GROUP BY ruler_id
            """, cancellationToken).ConfigureAwait(false);
        return [.. rows.Select(r => new RulerHeartbeat(r[0]!, FromMicros(r[1]!), FromMicros(r[2]!)))
            .OrderBy(b => b.StartedAt).ThenBy(b => b.RulerId, StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    public async Task SaveRulerCheckpointAsync(RulerCheckpoint checkpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tsv = new StringBuilder();
        Tsv(tsv, "1", checkpoint.Alerts, checkpoint.RulerId, Micros(checkpoint.SavedAt), Micros(checkpoint.EvaluatedThrough));
        await InsertTsvAsync("ruler_checkpoint", tsv, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<RulerCheckpoint?> GetRulerCheckpointAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Until parts merge, every save is a row: the furthest cursor wins, then the last saved.
        var rows = await _client.QueryAsync($"""
            SELECT version, alerts, ruler_id, saved_us FROM {_db}.ruler_checkpoint ORDER BY version DESC, saved_us DESC LIMIT 1
            """, cancellationToken).ConfigureAwait(false);
        if (rows.Count == 0)
            return null;
        var r = rows[0];
        return new RulerCheckpoint(FromMicros(r[0]!), r[1]!, r[2]!, FromMicros(r[3]!));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<MinuteDigest>> GetMinuteDigestsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var result = new List<MinuteDigest>();
        if (from >= to)
            return result;
        ObjectDisposedException.ThrowIf(_disposed, this);
        var range = $"minute >= {ClickHouseQueryPlan.Time(from.UtcDateTime)} AND minute < {ClickHouseQueryPlan.Time(to.UtcDateTime)}";
        var rows = await _client.QueryAsync($"""
            SELECT toUInt32(minute), count(), sum(cost_nanos) FROM {_db}.cost_minutes
            WHERE {range}{ClickHouseQueryPlan.Newest(_db, "cost_minutes", _options.Cluster, "minute", range)}
            GROUP BY minute ORDER BY minute
            """, cancellationToken).ConfigureAwait(false);
        foreach (var r in rows)
        {
            result.Add(new MinuteDigest(DateTimeOffset.FromUnixTimeSeconds(long.Parse(r[0]!, CultureInfo.InvariantCulture)),
                long.Parse(r[1]!, CultureInfo.InvariantCulture), long.Parse(r[2]!, CultureInfo.InvariantCulture)));
        }
        return result;
    }
}
