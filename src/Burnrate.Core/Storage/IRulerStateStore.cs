namespace Burnrate.Storage;

/// <summary>One ruler's sign of life in the shared store (<c>serve --role ruler</c>; docs/scale-out.md, "Several rulers").</summary>
/// <param name="RulerId">The ruler's identity, unique per process.</param>
/// <param name="StartedAt">When that ruler process started: the oldest live ruler leads.</param>
/// <param name="LastBeat">When it last wrote its beat.</param>
public sealed record RulerHeartbeat(string RulerId, DateTimeOffset StartedAt, DateTimeOffset LastBeat);

/// <summary>What the leading ruler evaluated, so that a restarted or new leader resumes from it.</summary>
/// <param name="EvaluatedThrough">The end of the minutes evaluated (the next minute to evaluate starts here).</param>
/// <param name="Alerts">The pending and firing alerts, as <see cref="Alerting.AlertSnapshot"/> JSON (the engine's format).</param>
/// <param name="RulerId">The ruler that saved it.</param>
/// <param name="SavedAt">When it was saved.</param>
public sealed record RulerCheckpoint(DateTimeOffset EvaluatedThrough, string Alerts, string RulerId, DateTimeOffset SavedAt);

/// <summary>How one minute of the ledger stands now: its rows and their cost (the newest rows of each resource).</summary>
/// <param name="Minute">The minute.</param>
/// <param name="Rows">How many ledger rows it has.</param>
/// <param name="CostNanos">Their total cost, nano-dollars.</param>
public sealed record MinuteDigest(DateTimeOffset Minute, long Rows, long CostNanos);

/// <summary>
/// What the alert ruler keeps in the shared store beside the ledger: the rulers' heartbeats (leader election without
/// compare-and-set), the leader's checkpoint (cursor and alerts), and per-minute digests of the ledger (late minutes).
/// Implemented by both stores; the ruler works without it as a single, memory-only ruler.
/// </summary>
public interface IRulerStateStore
{
    /// <summary>Writes <paramref name="beat"/>, replacing the earlier beats of the same ruler.</summary>
    Task BeatAsync(RulerHeartbeat beat, CancellationToken cancellationToken = default);

    /// <summary>The newest beat of every ruler that ever beat, by start, then id (ordinal).</summary>
    Task<IReadOnlyList<RulerHeartbeat>> GetHeartbeatsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Saves the checkpoint. The store keeps the one that evaluated furthest (the largest
    /// <see cref="RulerCheckpoint.EvaluatedThrough"/>; between equal ones, the last saved): a leader that lost its lead
    /// and saves late cannot move the cursor back.
    /// </summary>
    Task SaveRulerCheckpointAsync(RulerCheckpoint checkpoint, CancellationToken cancellationToken = default);

    /// <summary>The checkpoint kept, or null when no ruler saved one.</summary>
    Task<RulerCheckpoint?> GetRulerCheckpointAsync(CancellationToken cancellationToken = default);

    /// <summary>For every minute in [<paramref name="from"/>, <paramref name="to"/>) that has ledger rows, how many and their cost; by minute.</summary>
    Task<IReadOnlyList<MinuteDigest>> GetMinuteDigestsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);
}
