using Burnrate.Pricing;

namespace Burnrate.Simulation;

/// <summary>How a <see cref="FleetSimulator"/> plays its scenarios. Same options and scenarios ⇒ the same events.</summary>
public sealed class FleetSimulatorOptions
{
    /// <summary>Seeds every jitter (utilization, counters). Changing it changes sample values, never lifecycles.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>The start of virtual time. Defaults to Monday 2025-01-06 00:00 UTC.</summary>
    public DateTimeOffset Epoch { get; init; } = new(2025, 1, 6, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Every live node sends a <see cref="Telemetry.NodeHeartbeat"/> on this grid from <see cref="Epoch"/>.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Every GPU of a live node reports its utilization on this grid (DCGM's default scrape is 15 s).</summary>
    public TimeSpan UtilizationInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Every live workload reports its cumulative work counters on this grid.</summary>
    public TimeSpan CounterInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A transfer spread over a span is reported in chunks this far apart.</summary>
    public TimeSpan TransferChunk { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The n-th scenario given starts n × this after <see cref="Epoch"/>, so a short demo shows each one.</summary>
    public TimeSpan Stagger { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// When true, scenarios that ask for a wall-clock start (<c>starts: friday 17:00</c>) start at their stagger slot
    /// instead, so a demo shows them now rather than at the next Friday.
    /// </summary>
    public bool IgnoreAnchors { get; init; }

    /// <summary>Relative jitter of work-counter increments (±, uniform); the rate itself stays as the file says.</summary>
    public double CounterJitter { get; init; } = 0.05;

    /// <summary>
    /// The catalog price of an instance, when the caller has a price book: a timeline price change with a
    /// <c>multiplier</c> then becomes base × multiplier; without it (or when it answers <c>null</c>) the file's
    /// absolute <c>price_per_hour</c> is used.
    /// </summary>
    public Func<BasePriceKey, decimal?>? BasePrice { get; init; }
}

/// <summary>The key of a base price lookup (see <see cref="FleetSimulatorOptions.BasePrice"/>).</summary>
public readonly record struct BasePriceKey(string Provider, string Region, string Zone, string InstanceType, CapacityType Capacity);

/// <summary>When a scenario starts in a simulator's virtual time.</summary>
/// <param name="Scenario">The scenario.</param>
/// <param name="Start">Its offset zero.</param>
public sealed record ScheduledScenario(Scenario Scenario, DateTimeOffset Start);
