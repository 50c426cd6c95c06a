namespace Burnrate.Alerting;

/// <summary>Where an alert is in its life: a condition holding for less than its rule's <c>for</c> is pending.</summary>
public enum AlertState
{
    /// <summary>The condition does not hold.</summary>
    Inactive,

    /// <summary>The condition holds, for less than the rule's <c>for</c>.</summary>
    Pending,

    /// <summary>The condition has held for the rule's <c>for</c>: notified.</summary>
    Firing,

    /// <summary>A firing alert whose condition stopped holding: notified once more, then forgotten.</summary>
    Resolved,
}

/// <summary>
/// One alert as the alert engine hands it to delivery (Alertmanager, webhook, Slack) and to the rule's action:
/// firing or resolved, with the labels that identify it and the annotations a person needs (current $/h, since when,
/// cost so far, projected cost, owner, a link). The contract between rule evaluation and delivery; docs/alerts.md.
/// </summary>
/// <param name="Rule">The rule's name (also the <c>alertname</c> label).</param>
/// <param name="Fingerprint">Stable identity of this alert (rule + identifying labels): deduplication and delivery keys.</param>
/// <param name="State"><see cref="AlertState.Firing"/> or <see cref="AlertState.Resolved"/>.</param>
/// <param name="Labels">Identifying labels: <c>alertname</c>, <c>severity</c>, the scope (<c>workload</c>, <c>team</c>, ...), the rule's own labels.</param>
/// <param name="Annotations">Human numbers: <c>summary</c>, <c>description</c>, <c>usd_per_hour</c>, <c>since</c>, <c>cost_so_far_usd</c>, <c>projected_usd</c>, <c>owner</c>, <c>dashboard</c>.</param>
/// <param name="StartsAt">When the condition started holding.</param>
/// <param name="EndsAt">When it stopped (resolved), else null.</param>
/// <param name="EvidenceAt">The time of the input (sample or event) that made the condition true or false: latency is measured from it.</param>
/// <param name="Action">The rule's <c>action</c> section as written in the config (null: none); delivery parses and runs it.</param>
public sealed record AlertNotification(
    string Rule,
    string Fingerprint,
    AlertState State,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    DateTimeOffset StartsAt,
    DateTimeOffset? EndsAt,
    DateTimeOffset EvidenceAt,
    IReadOnlyDictionary<string, object>? Action = null);

/// <summary>Receives the alert engine's notifications (delivery: Alertmanager, webhooks, Slack, actions).</summary>
public interface IAlertSink
{
    /// <summary>
    /// Takes notifications in the order they happened. Must not block the caller on the network: delivery queues and
    /// retries on its own.
    /// </summary>
    void Publish(IReadOnlyList<AlertNotification> notifications);
}
