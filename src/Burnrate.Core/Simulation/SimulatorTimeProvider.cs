namespace Burnrate.Simulation;

/// <summary>
/// Virtual time that starts at an epoch and runs <see cref="Speed"/> times faster than wall time (used by
/// <c>burnrate demo --speed N</c>): clocks read the virtual instant, and timers fire after their virtual due
/// time divided by the speed.
/// </summary>
public sealed class SimulatorTimeProvider : TimeProvider
{
    private readonly TimeProvider _wall;
    private readonly long _wallStart;

    /// <summary>Starts virtual time at <paramref name="epoch"/> now, running <paramref name="speed"/>× wall time.</summary>
    /// <param name="epoch">The virtual instant that corresponds to this moment.</param>
    /// <param name="speed">Virtual seconds per wall second; 1 is real time.</param>
    /// <param name="wall">The wall clock (tests pass a fake one); defaults to <see cref="TimeProvider.System"/>.</param>
    public SimulatorTimeProvider(DateTimeOffset epoch, double speed, TimeProvider? wall = null)
    {
        if (!(speed > 0) || double.IsInfinity(speed))
            throw new ArgumentOutOfRangeException(nameof(speed), speed, "The speed must be a positive number.");
        Epoch = epoch;
        Speed = speed;
        _wall = wall ?? System;
        _wallStart = _wall.GetTimestamp();
    }

    /// <summary>The virtual instant at construction.</summary>
    public DateTimeOffset Epoch { get; }

    /// <summary>Virtual seconds per wall second.</summary>
    public double Speed { get; }

    /// <summary>Virtual time elapsed since <see cref="Epoch"/>.</summary>
    public TimeSpan Elapsed => TimeSpan.FromTicks((long)(_wall.GetElapsedTime(_wallStart).Ticks * Speed));

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => Epoch + Elapsed;

    /// <inheritdoc />
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    // Timestamps count virtual ticks since the epoch, so GetElapsedTime measures virtual time.
    /// <inheritdoc />
    public override long GetTimestamp() => Elapsed.Ticks;

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new ScaledTimer(this, _wall.CreateTimer(callback, state, ToWall(dueTime), ToWall(period)));

    private TimeSpan ToWall(TimeSpan virtualSpan) =>
        virtualSpan == Timeout.InfiniteTimeSpan ? virtualSpan : TimeSpan.FromTicks(Math.Max(virtualSpan == TimeSpan.Zero ? 0 : 1, (long)(virtualSpan.Ticks / Speed)));

    // Keeps Change in virtual time too: the wall timer underneath only ever sees scaled spans.
    private sealed class ScaledTimer(SimulatorTimeProvider owner, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(owner.ToWall(dueTime), owner.ToWall(period));

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
