namespace Burnrate.Alerting.Delivery;

/// <summary>The kind of a notification target: the wire format Burnrate speaks to it.</summary>
public enum NotifyKind
{
    /// <summary>Alertmanager API v2: <c>POST {url}/api/v2/alerts</c> (docs/alerts.md, "Delivery").</summary>
    Alertmanager,

    /// <summary>Burnrate's generic JSON webhook (docs/alerts.md, "Delivery").</summary>
    Webhook,

    /// <summary>A Slack incoming webhook (<c>{"text": ..., "blocks": [...]}</c>).</summary>
    Slack,
}

/// <summary>One place notifications go. <see cref="Name"/> is what metrics, the API and logs show: never the URL, which may hold a token.</summary>
public sealed record NotifyTarget(string Name, NotifyKind Kind, Uri Url, bool SendResolved = true);

/// <summary>Where notifications go and how hard delivery tries (config <c>notify</c> and <c>delivery</c>).</summary>
public sealed record DeliveryOptions
{
    /// <summary>The targets; every notification goes to each of them.</summary>
    public IReadOnlyList<NotifyTarget> Targets { get; init; } = [];

    /// <summary>Attempts per notification and target, the first included; 5xx, timeouts and network errors are retried, 4xx never.</summary>
    public int Attempts { get; init; } = 5;

    /// <summary>The wait before the first retry; it doubles each retry up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How long one HTTP attempt may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Notifications waiting per target; past it new ones are dropped and counted (publishing never blocks).</summary>
    public int QueueCapacity { get; init; } = 10_000;

    /// <summary>
    /// How often firing alerts are re-posted to Alertmanager targets: Alertmanager resolves an alert it has not heard of
    /// for its <c>resolve_timeout</c> (5m by default), and its docs ask clients to re-send every 30s to 3m.
    /// </summary>
    public TimeSpan ResendInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Base of the <c>generatorURL</c> sent with each alert (Burnrate's own URL as users reach it); null: none.</summary>
    public Uri? ExternalUrl { get; init; }
}

/// <summary>How rule actions run (config <c>actions</c>).</summary>
public sealed record ActionOptions
{
    /// <summary>Commands an exec action may start: its first token must equal one of these exactly (a name looked up on PATH, or a path).</summary>
    public IReadOnlyList<string> Allow { get; init; } = [];

    /// <summary>When true (the default), no action runs anywhere: each is only logged and audited.</summary>
    public bool DryRun { get; init; } = true;

    /// <summary>How long a command or HTTP call may take before it is killed and audited as failed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}
