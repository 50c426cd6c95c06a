using Burnrate.Ingest;
using Burnrate.Pricing;
using Burnrate.Rating;
using Burnrate.Simulation;
using Burnrate.Telemetry;

namespace Burnrate.Demo;

/// <summary>
/// Plays a simulated fleet through the production ingest path on a clock: each tick pulls the simulator's events up to
/// the clock's now, queues them in the <see cref="IngestPipeline"/> like any receiver, applies the queue and rates and
/// stores every closed minute. The demo runs it on a
/// <see cref="SimulatorTimeProvider"/>; tests run it on a fake clock.
/// </summary>
public sealed class FleetReplay
{
    private readonly FleetSimulator _simulator;
    private readonly IngestPipeline _ingest;
    private readonly TimeProvider _clock;

    /// <param name="simulator">The fleet.</param>
    /// <param name="ingest">The pipeline, without a write-ahead log and without its <see cref="IngestPipeline.RunAsync"/>
    /// running: the replay applies the queue itself, so a tick's events are in before its minutes are rated.</param>
    /// <param name="clock">Virtual time.</param>
    public FleetReplay(FleetSimulator simulator, IngestPipeline ingest, TimeProvider clock)
    {
        _simulator = simulator;
        _ingest = ingest;
        _clock = clock;
    }

    /// <summary>A replay over a fresh ingest pipeline (default mapper, no log) in front of <paramref name="pipeline"/>.</summary>
    public FleetReplay(FleetSimulator simulator, CostPipeline pipeline, TimeProvider clock)
        : this(simulator, new IngestPipeline(pipeline, new Telemetry.Mapping.TelemetryMapper()), clock)
    {
    }

    /// <summary>The ingest pipeline the replay feeds.</summary>
    public IngestPipeline Ingest => _ingest;

    /// <summary>The base price the simulator multiplies for relative price changes (the price book in force at <paramref name="at"/>).</summary>
    public static Func<BasePriceKey, decimal?> BasePrices(IPriceBook book, DateTimeOffset at) =>
        key => book.Find(key.Provider, key.Region, key.Zone, key.InstanceType, key.Capacity, at)?.PricePerHour;

    /// <summary>Pulls events up to now and rates the minutes that closed. Returns the virtual now.</summary>
    public async Task<DateTimeOffset> TickAsync(DateTimeOffset? end = null, CancellationToken cancellationToken = default)
    {
        var now = _clock.GetUtcNow();
        if (end is { } e && now > e)
            now = e; // a slow tick never simulates past the end
        if (now > _simulator.Now)
            await SubmitAsync(_simulator.AdvanceTo(now), now, cancellationToken);
        await _ingest.RateAsync(now, cancellationToken);
        return now;
    }

    /// <summary>
    /// Ends the replay at <paramref name="end"/>: applies the events up to it and rates every whole minute before it,
    /// so the ledger holds exactly the simulated span (no minute past the end is billed).
    /// </summary>
    public async Task FinishAsync(DateTimeOffset end, TimeSpan grace, CancellationToken cancellationToken = default)
    {
        if (end > _simulator.Now)
            await SubmitAsync(_simulator.AdvanceTo(end), end, cancellationToken);
        await _ingest.RateAsync(RatingEngine.Floor(end) + grace, cancellationToken);
    }

    private async Task SubmitAsync(IReadOnlyList<FleetEvent> events, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
            return;
        // A full queue is applied and the batch offered again: the simulator never drops what it produced.
        while (!_ingest.TryAcceptEvents(events, now))
        {
            _ingest.ApplyQueued();
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
        }
        _ingest.ApplyQueued();
    }

    /// <summary>Runs ticks every <paramref name="tick"/> of wall time until the clock passes <paramref name="end"/> or cancellation.</summary>
    public async Task RunAsync(DateTimeOffset end, TimeSpan tick, TimeSpan grace, Action<DateTimeOffset>? onTick = null, CancellationToken cancellationToken = default)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var now = await TickAsync(end, cancellationToken);
                onTick?.Invoke(now);
                if (now >= end)
                    break;
                await Task.Delay(tick, TimeProvider.System, cancellationToken); // wall-clock pacing; virtual time comes from _clock
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Interrupted: still close the books on what was simulated.
        }
        var last = _clock.GetUtcNow();
        await FinishAsync(last < end ? last : end, grace, CancellationToken.None);
    }
}
