using System.Globalization;

namespace Burnrate.Storage;

/// <summary>
/// How long the ledger keeps each resolution (<c>storage.retention</c>, docs/configuration.md): raw per-minute ledger
/// rows, hourly rollups and daily rollups. Null keeps a resolution forever. Reports over a range whose minutes are gone
/// are answered from the hourly rollup, and over a range whose hours are gone from the daily one.
/// </summary>
public sealed record RetentionPolicy
{
    /// <summary>The shortest age a ledger minute may be dropped at: rating, late events and the ruler work on minutes well inside it.</summary>
    public static readonly TimeSpan ShortestMinutes = TimeSpan.FromDays(1);

    /// <summary>Age after which raw ledger minutes are dropped (work counters go with the hourly rollups); null keeps them.</summary>
    public TimeSpan? Minutes { get; init; }

    /// <summary>Age after which hourly rollups (and the per-minute work counters) are dropped; null keeps them.</summary>
    public TimeSpan? Hours { get; init; }

    /// <summary>Age after which daily rollups are dropped; null keeps them.</summary>
    public TimeSpan? Days { get; init; }

    /// <summary>The defaults of <c>storage.retention</c>: minutes for 35 days, hours for 400 days, days forever.</summary>
    public static RetentionPolicy Default { get; } = new() { Minutes = TimeSpan.FromDays(35), Hours = TimeSpan.FromDays(400) };

    /// <summary>Keeps everything (what a store does until told otherwise).</summary>
    public static RetentionPolicy KeepEverything { get; } = new();

    /// <summary>Whether the policy drops anything at all.</summary>
    public bool DropsAnything => Minutes is not null || Hours is not null || Days is not null;

    /// <summary>
    /// Checks that every age is positive, that minutes are kept at least <see cref="ShortestMinutes"/>, and that a
    /// coarser resolution is kept at least as long as a finer one (else a report would find no rollup for a range).
    /// </summary>
    /// <exception cref="ArgumentException">Naming the key (<c>storage.retention.hours</c>) that is wrong.</exception>
    public void Validate()
    {
        if (Minutes is { } m && m < ShortestMinutes)
            throw new ArgumentException($"storage.retention.minutes: {Describe(m)} is shorter than the shortest allowed, {Describe(ShortestMinutes)} (rating, late events and the ruler need recent minutes)");
        if (Hours is { } h && h <= TimeSpan.Zero)
            throw new ArgumentException($"storage.retention.hours: {Describe(h)} must be positive");
        if (Days is { } d && d <= TimeSpan.Zero)
            throw new ArgumentException($"storage.retention.days: {Describe(d)} must be positive");
        if (Longer(Minutes, Hours))
            throw new ArgumentException($"storage.retention.hours ({Describe(Hours)}) must be at least storage.retention.minutes ({Describe(Minutes)}): hourly rollups answer for the minutes that are gone");
        if (Longer(Hours, Days) || Longer(Minutes, Days))
            throw new ArgumentException($"storage.retention.days ({Describe(Days)}) must be at least storage.retention.hours ({Describe(Hours)}) and minutes ({Describe(Minutes)}): daily rollups answer for the hours that are gone");
    }

    /// <summary>
    /// The first instant each resolution is still held at <paramref name="now"/>, cut to whole periods of the store's
    /// tables: <paramref name="cut"/> floors an instant to where the store can drop (an hour or day in DuckDB, a
    /// month or year partition in ClickHouse). The minute horizon is always a whole hour, the hour horizon a whole day.
    /// </summary>
    public LedgerHorizons Horizons(DateTimeOffset now, Func<DateTime, LedgerGrainHint, DateTime> cut)
    {
        ArgumentNullException.ThrowIfNull(cut);
        var at = now.UtcDateTime;
        return new LedgerHorizons(
            Minutes is { } m ? cut(Clamp(at, m), LedgerGrainHint.Minute) : null,
            Hours is { } h ? cut(Clamp(at, h), LedgerGrainHint.Hour) : null,
            Days is { } d ? cut(Clamp(at, d), LedgerGrainHint.Day) : null);
    }

    private static DateTime Clamp(DateTime now, TimeSpan age) =>
        now.Ticks - DateTime.UnixEpoch.Ticks > age.Ticks ? now - age : DateTime.UnixEpoch;

    private static bool Longer(TimeSpan? finer, TimeSpan? coarser) => finer is null ? coarser is not null : coarser is { } c && finer.Value > c;

    private static string Describe(TimeSpan? age) => age is { } a
        ? (a.Ticks % TimeSpan.TicksPerDay == 0 ? string.Create(CultureInfo.InvariantCulture, $"{a.Days}d") : a.ToString("c", CultureInfo.InvariantCulture))
        : "forever";
}

/// <summary>Which table a retention horizon is cut for.</summary>
public enum LedgerGrainHint
{
    /// <summary>The raw per-minute ledger.</summary>
    Minute,
    /// <summary>The hourly rollup.</summary>
    Hour,
    /// <summary>The daily rollup.</summary>
    Day,
}

/// <summary>
/// The first instant (UTC) from which each resolution of the ledger is complete; null where nothing was dropped.
/// <see cref="Minutes"/> is a whole hour, <see cref="Hours"/> a whole day, and <see cref="Hours"/> is never after
/// <see cref="Minutes"/>.
/// </summary>
public readonly record struct LedgerHorizons(DateTime? Minutes, DateTime? Hours, DateTime? Days)
{
    /// <summary>The later of each horizon.</summary>
    public static LedgerHorizons Max(LedgerHorizons a, LedgerHorizons b) =>
        new(Later(a.Minutes, b.Minutes), Later(a.Hours, b.Hours), Later(a.Days, b.Days));

    private static DateTime? Later(DateTime? a, DateTime? b) => a is null ? b : b is null ? a : (a > b ? a : b);
}

/// <summary>What one retention run dropped.</summary>
/// <param name="Horizons">What is held from now on.</param>
/// <param name="Rows">Rows removed per table (for ClickHouse, the rows of the dropped partitions, once per shard).</param>
/// <param name="Partitions">ClickHouse partitions dropped (counted once per shard); 0 for DuckDB.</param>
public sealed record RetentionRun(LedgerHorizons Horizons, IReadOnlyDictionary<string, long> Rows, int Partitions)
{
    /// <summary>Rows removed from every table together.</summary>
    public long TotalRows => Rows.Values.Sum();
}

/// <summary>
/// A store that can drop what its <see cref="RetentionPolicy"/> no longer keeps. Both stores implement it; the
/// housekeeper (<see cref="LedgerHousekeeper"/>) calls it once an hour.
/// </summary>
public interface ILedgerRetention
{
    /// <summary>
    /// The policy the store plans reports and guards writes with, at <see cref="UseRetention"/>'s clock: a report's
    /// range before the minute horizon is read from rollups, and ledger lines older than it are not written (they would
    /// rebuild an hour from minutes that are gone). Null (the default) keeps everything. Processes that share a ledger
    /// should share the policy.
    /// </summary>
    RetentionPolicy? Retention { get; }

    /// <summary>Sets <see cref="Retention"/> and the clock its horizons are taken at (the server's, which may differ from the store's).</summary>
    void UseRetention(RetentionPolicy? policy, TimeProvider time);

    /// <summary>
    /// The horizons the store holds now: the later of what <see cref="Retention"/> gives now and what
    /// <see cref="ApplyRetentionAsync"/> dropped (or, for DuckDB, what the file shows was dropped).
    /// </summary>
    LedgerHorizons Held { get; }

    /// <summary>
    /// Drops what <paramref name="policy"/> no longer keeps at <paramref name="now"/>: ledger minutes, hourly and daily
    /// rollups and per-minute work counters older than their horizons. Workloads, the audit log, bills and calibration
    /// are kept. Idempotent: running it again (or from several processes) drops nothing more.
    /// </summary>
    Task<RetentionRun> ApplyRetentionAsync(RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default);
}
