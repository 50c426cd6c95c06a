namespace Burnrate.Pricing.Feeds;

/// <summary>Where one feed stands, as <c>/metrics</c> and <c>GET /api/v1/prices/feeds</c> show it.</summary>
/// <param name="Name">The feed's name.</param>
/// <param name="Kind">What it polls.</param>
/// <param name="Interval">Time between polls after a success.</param>
/// <param name="Up">Whether the last poll succeeded (false before the first).</param>
/// <param name="LastAttemptAt">When the last poll started.</param>
/// <param name="LastSuccessAt">When the last successful poll started: the prices held are from then.</param>
/// <param name="LastError">Why the last failed poll failed (never a secret), or null.</param>
/// <param name="LastErrorAt">When that poll started.</param>
/// <param name="ConsecutiveFailures">Failed polls since the last success.</param>
/// <param name="Polls">Polls since start.</param>
/// <param name="Errors">Failed polls since start.</param>
/// <param name="PricesHeld">Prices the last successful poll read (kept while later polls fail).</param>
/// <param name="SavingsPlanPrices">Savings-plan rates the last successful poll read.</param>
/// <param name="BookChanges">Entries written to the price book since start (a price equal to the one in force writes none).</param>
/// <param name="NextPollAt">When the next poll is due.</param>
public sealed record PriceFeedStatus(
    string Name,
    PriceFeedKind Kind,
    TimeSpan Interval,
    bool Up,
    DateTimeOffset? LastAttemptAt,
    DateTimeOffset? LastSuccessAt,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    int ConsecutiveFailures,
    long Polls,
    long Errors,
    int PricesHeld,
    int SavingsPlanPrices,
    long BookChanges,
    DateTimeOffset NextPollAt);
