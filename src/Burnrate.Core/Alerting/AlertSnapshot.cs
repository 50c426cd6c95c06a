namespace Burnrate.Alerting;

/// <summary>
/// A pending or firing alert as the ruler persists it (<see cref="AlertEngine.ExportAlerts"/>, <see cref="AlertEngine.RestoreAlerts"/>),
/// so that a restarted or new ruler resolves it once, repeats it on time, and does not fire it again.
/// </summary>
/// <param name="Rule">The rule's name.</param>
/// <param name="Key">The scope value the alert is for (the engine's key).</param>
/// <param name="State"><see cref="AlertState.Pending"/> or <see cref="AlertState.Firing"/>.</param>
/// <param name="StartsAt">When the condition started holding.</param>
/// <param name="LastSent">When it was last sent (firing).</param>
/// <param name="LastEvidence">The evidence time of its last observation.</param>
/// <param name="Observation">What was last observed: the text and numbers its notifications carry.</param>
public sealed record AlertSnapshot(string Rule, string Key, AlertState State, DateTimeOffset StartsAt, DateTimeOffset LastSent, DateTimeOffset LastEvidence, AlertObservation Observation);

/// <summary>The last observation of an alert, as <see cref="AlertSnapshot"/> keeps it (labels as name/value pairs).</summary>
/// <param name="What">The condition in words.</param>
/// <param name="UsdPerHour">The scope's rate, $/h.</param>
/// <param name="CostSoFar">Its cost since first seen, $.</param>
/// <param name="Projected">Projected cost, $.</param>
/// <param name="Owner">Who owns it.</param>
/// <param name="Dashboard">The dashboard link.</param>
/// <param name="ScopeLabels">The scope's labels.</param>
/// <param name="Extra">Extra annotations.</param>
/// <param name="Evidence">The evidence time.</param>
/// <param name="Since">When the condition started, where the rule knows better than the minute.</param>
/// <param name="ExtraLabel">One more identifying label (budget: projected or actual), or null.</param>
/// <param name="GroupLabels">The group's labels (step_change), or null.</param>
public sealed record AlertObservation(string What, double UsdPerHour, double CostSoFar, double Projected, string Owner, string Dashboard,
    IReadOnlyList<string[]> ScopeLabels, IReadOnlyList<string[]> Extra, DateTimeOffset Evidence, DateTimeOffset? Since,
    string[]? ExtraLabel, IReadOnlyList<string[]>? GroupLabels);
