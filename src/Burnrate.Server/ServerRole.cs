namespace Burnrate.Server;

/// <summary>
/// Which part of a scaled-out deployment this server plays (<c>serve --role</c>, docs/scale-out.md), when it is not the
/// single process: shown on <c>/metrics</c> as <c>burnrate_role</c> and <c>burnrate_alert_evaluation_enabled</c>.
/// </summary>
/// <param name="Name">The role: <c>ingest</c> or <c>ruler</c>.</param>
/// <param name="EvaluatesAlerts">Whether this process evaluates alert rules and delivers notifications.</param>
public sealed record ServerRole(string Name, bool EvaluatesAlerts);
