namespace Burnrate.Storage;

/// <summary>
/// A store's retention as it stands: the policy in force (and the clock it is read on) and how far each resolution
/// has been dropped. <see cref="Held"/> is where reports may read each resolution from: the later of what was dropped
/// and what the policy would have dropped by now (so a process that only reads plans like the one that drops).
/// </summary>
internal sealed class RetentionState(Func<RetentionPolicy, DateTimeOffset, LedgerHorizons> horizonsAt)
{
    private readonly Lock _lock = new();
    private LedgerHorizons _dropped;
    private TimeProvider? _clock;

    /// <summary>The policy in force, or null for none.</summary>
    public RetentionPolicy? Policy { get; private set; }

    /// <summary>Puts <paramref name="policy"/> in force, its horizons read on <paramref name="time"/>.</summary>
    public void Use(RetentionPolicy? policy, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        policy?.Validate();
        lock (_lock)
        {
            Policy = policy;
            _clock = time;
        }
    }

    /// <summary>From when each resolution is held, <paramref name="fallback"/> being the clock when none was given.</summary>
    public LedgerHorizons Held(TimeProvider fallback)
    {
        LedgerHorizons dropped;
        RetentionPolicy? policy;
        TimeProvider? clock;
        lock (_lock)
            (dropped, policy, clock) = (_dropped, Policy, _clock);
        return policy is not null ? LedgerHorizons.Max(dropped, horizonsAt(policy, (clock ?? fallback).GetUtcNow())) : dropped;
    }

    /// <summary>Records that everything before <paramref name="horizons"/> is (or is about to be) gone.</summary>
    public void Dropped(LedgerHorizons horizons)
    {
        lock (_lock)
            _dropped = LedgerHorizons.Max(_dropped, horizons);
    }
}
