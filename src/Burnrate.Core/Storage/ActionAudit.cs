namespace Burnrate.Storage;

/// <summary>
/// One rule action as it happened: when, which alert, what would run or ran, why, and what came of it.
/// </summary>
/// <param name="At">When the action was decided (and run).</param>
/// <param name="Rule">The rule that declared the action.</param>
/// <param name="Fingerprint">The alert it ran for.</param>
/// <param name="What">The argv (space-joined) or HTTP method and URL, after substitution; the template when refused before substitution.</param>
/// <param name="Why">The alert's state, rule and summary.</param>
/// <param name="Outcome"><c>dry_run</c>, <c>succeeded</c>, <c>failed</c> or <c>refused</c>.</param>
/// <param name="Code">The exit code or HTTP status, when something ran.</param>
/// <param name="Detail">The last 2 KiB of output, or why it was refused or failed.</param>
public sealed record ActionAuditEntry(
    DateTimeOffset At,
    string Rule,
    string Fingerprint,
    string What,
    string Why,
    string Outcome,
    int? Code,
    string Detail);

/// <summary>The audit log of rule actions (table <c>action_audit</c>).</summary>
public interface IActionAuditLog
{
    /// <summary>Appends one entry.</summary>
    Task AppendAuditAsync(ActionAuditEntry entry, CancellationToken cancellationToken = default);

    /// <summary>Entries at or after <paramref name="since"/> (all when null), oldest first, at most <paramref name="limit"/> of the newest.</summary>
    Task<IReadOnlyList<ActionAuditEntry>> GetAuditAsync(DateTimeOffset? since = null, int limit = 1000, CancellationToken cancellationToken = default);
}
